"""Scanning a frame densely: a patch classifier's ResNet18 runs once over the whole frame per
window side, instead of once per cropped window.

A window of side s is what the classifier sees at its input size S, so the frame is resized by
S / s and the backbone's trunk runs over all of it. ResNet18 steps by 32 px; its last stage
(or its last two) are turned from stride 2 into dilation 2 (the a trous trick), which gives the
same numbers as the strided network shifted by every half step: windows every 16 px (or 8) of
the resized frame, a stride of s/2 (or s/4), at about 1.6x (or 4.6x) the cost of one pass. The
classifier then reads each window's pooled features, exactly as after global pooling.

What differs from cropping: a cropped window sees zero padding beyond its border, a dense one
sees the frame around it. `agreement` measures what that changes for a given model.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lqer.data.annotations import Detection
from lqer.data.transforms import NormalizeRGB, resize
from lqer.errors import LqerError
from lqer.eval.scan import ScanConfig, scan_with

STEP = 32  # ResNet18's output stride


def dilated_trunk(backbone: nn.Module, stages: int = 1) -> nn.Module:
    """A copy of a torchvision ResNet18's convolutional trunk whose last `stages` stages (1 or
    2) keep their resolution and dilate instead: output stride 32 / 2**stages."""
    if not all(hasattr(backbone, name) for name in ("conv1", "layer3", "layer4")):
        raise LqerError("a dense scan needs a ResNet18 backbone (lqer, resnet18 and their kin)")
    net = copy.deepcopy(backbone)
    dilation = 1
    for name in ("layer3", "layer4")[2 - stages :]:
        layer = getattr(net, name)
        first = layer[0]
        first.conv1.stride = (1, 1)
        first.conv1.dilation = first.conv1.padding = (dilation, dilation)
        if first.downsample is not None:
            first.downsample[0].stride = (1, 1)
        dilation *= 2
        convs = [first.conv2] + [c for block in layer[1:] for c in (block.conv1, block.conv2)]
        for conv in convs:
            conv.dilation = conv.padding = (dilation, dilation)
    return nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2,
                         net.layer3, net.layer4)  # fmt: skip


class DenseScanner:
    """Heatmap and candidates of one frame, like `lqer.eval.scan.scan_frame`, with windows at
    a stride of s/2 (`stages=1`) or s/4 (`stages=2`) of their side s."""

    def __init__(
        self, model: nn.Module, image_size: int, cfg: ScanConfig | None = None, stages: int = 1,
        device: torch.device | str = "cpu",
    ):  # fmt: skip
        if image_size % STEP:
            raise LqerError(f"a dense scan needs an input size that is a multiple of {STEP} px, "
                            f"not {image_size}")  # fmt: skip
        self.model = model.eval()
        self.trunk = dilated_trunk(model.backbone, stages).eval().to(device)
        self.size, self.cfg, self.device = image_size, cfg or ScanConfig(), torch.device(device)
        self.step = STEP // 2**stages  # between windows, in resized pixels
        self.normalize = NormalizeRGB()

    @torch.no_grad()
    def window_scores(self, frame: torch.Tensor, side: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, 2) top-left corners in frame pixels of windows of `side`, and their scores."""
        height, width = frame.shape
        ratio = self.size / side
        shape = (max(self.size, round(height * ratio)), max(self.size, round(width * ratio)))
        small = resize(frame[None, None], shape).to(self.device)
        maps = self.trunk(self.normalize(small.float().div(255)))  # (1, 512, h, w)
        cells = self.size // STEP  # per side of a window, at the undilated stride
        spread = STEP // self.step  # dilated cells between two undilated ones
        kernel = torch.full((maps.shape[1], 1, cells, cells), 1 / cells**2, device=self.device)
        pooled = F.conv2d(maps, kernel, dilation=spread, groups=maps.shape[1])[0]
        rows = (shape[0] - self.size) // self.step + 1  # windows that lie inside the frame
        cols = (shape[1] - self.size) // self.step + 1
        features = pooled[:, :rows, :cols].flatten(1).T  # (rows * cols, 512)
        probs = torch.softmax(self.model.classify(features).float(), dim=1)[:, 1].cpu()
        ys, xs = torch.meshgrid(torch.arange(rows), torch.arange(cols), indexing="ij")
        corners = torch.stack([xs.flatten(), ys.flatten()], dim=1) * self.step / ratio
        return corners.round().long(), probs

    def __call__(self, frame: np.ndarray) -> tuple[np.ndarray, list[Detection]]:
        return scan_with(self.window_scores, frame, self.cfg)

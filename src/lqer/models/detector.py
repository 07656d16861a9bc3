"""The detector: torchvision's FCOS on a ResNet18 feature pyramid, whose box classifier may
also read q, the readout of LQER's circuit (or of its classical twin) at every location.

FCOS scores each location of each pyramid level with a 3x3 convolution over its features f.
With a head, the logits are conv(f) + W q with q = head(f): the detector's counterpart of
LQER's linear classifier on [f, q] (`lqer.models.lqer.Classifier`). The circuit head and the
classical head have the same parameter count, so the two detectors are twins.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file
from torch import nn
from torchvision.models.detection import FCOS
from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
from torchvision.ops import nms
from torchvision.ops.feature_pyramid_network import LastLevelP6P7

from lqer.data.annotations import Detection
from lqer.data.transforms import IMAGENET_MEAN, IMAGENET_STD, resize
from lqer.detection_config import DetectionConfig
from lqer.errors import LqerError
from lqer.guarded_yaml import first_line
from lqer.io import atomic_path
from lqer.models.baselines import ClassicalHead
from lqer.models.lqer import QuantumHead
from lqer.models.weights import shipped
from lqer.quantum.ansatz import Circuit
from lqer.quantum.execution import Execution
from lqer.quantum.layer import QuantumLayer

FORMAT = "lqer-detector"
VERSION = 1
PYRAMID = 256  # channels of every feature pyramid level


class FusedLogits(nn.Module):
    """Class logits at every location: `logits(f) + W q`, with q = `head(f)` per location."""

    def __init__(self, logits: nn.Conv2d, head: nn.Module, head_dim: int):
        super().__init__()
        self.logits = logits  # FCOS's own 3x3 convolution, with its prior bias
        self.head = head
        self.read_q = nn.Conv2d(head_dim, logits.out_channels, kernel_size=1, bias=False)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        b, c, h, w = features.shape
        rows = features.permute(0, 2, 3, 1).reshape(-1, c)
        q = self.head(rows).to(features.dtype).reshape(b, h, w, -1).permute(0, 3, 1, 2)
        return self.logits(features) + self.read_q(q)


def box_head(head: str, circuit: Circuit, execution: Execution | None) -> tuple[nn.Module, int]:
    """The f -> q head that the box classifier reads besides f: LQER's circuit or its twin."""
    if head == "lqer":
        quantum = QuantumLayer(circuit, execution)
        return QuantumHead(PYRAMID, quantum), quantum.out_features
    return ClassicalHead(PYRAMID, circuit), circuit.n_qubits


def build_detector(
    *,
    input_size: int = 256,
    head: str = "lqer",
    circuit: Circuit | None = None,
    execution: Execution | None = None,
    backbone_weights: str = "none",
    min_score: float = 0.05,
    max_detections: int = 50,
) -> FCOS:
    """FCOS with two classes (0 background, 1 stenosis) for frames resized to `input_size`.

    head: what the box classifier reads besides f: none, lqer (the circuit) or classical (its
    twin of equal size). backbone_weights: none, shipped weights or a checkpoint's path.
    """
    backbone = resnet_fpn_backbone(
        backbone_name="resnet18", weights=None, trainable_layers=5, returned_layers=[2, 3, 4],
        extra_blocks=LastLevelP6P7(PYRAMID, PYRAMID),
    )  # fmt: skip
    if backbone_weights != "none":
        load_backbone(backbone.body, backbone_weights)
    model = FCOS(
        backbone, num_classes=2, min_size=input_size, max_size=input_size,
        image_mean=list(IMAGENET_MEAN), image_std=list(IMAGENET_STD),
        score_thresh=min_score, detections_per_img=max_detections,
    )  # fmt: skip
    if head != "none":
        classifier = model.head.classification_head
        extra = box_head(head, circuit or Circuit(), execution)
        classifier.cls_logits = FusedLogits(classifier.cls_logits, *extra)
    return model


def load_backbone(body: nn.Module, source: str) -> None:
    """ResNet18 weights for the pyramid's body: shipped weights (`lqer models`), an lqer
    checkpoint's backbone or a ResNet18 state dict."""
    entry = shipped(source)
    path = entry.files[0] if entry is not None else Path(source)
    if not path.is_file():
        raise LqerError(f"model.backbone_weights: neither shipped weights nor a file: {source}")
    try:
        if path.suffix == ".safetensors":
            state = {k: v.float() for k, v in load_file(path).items()}
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        why = type(e).__name__
        raise LqerError(f"model.backbone_weights: cannot read {path} ({why})") from None
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]  # an lqer checkpoint
    if not isinstance(state, dict):
        raise LqerError(f"model.backbone_weights: {path} holds no state dict")
    state = {k.removeprefix("backbone."): v for k, v in state.items()}
    wanted = body.state_dict()
    picked = {k: v for k, v in state.items() if k in wanted and v.shape == wanted[k].shape}
    if len(picked) < len(wanted):
        raise LqerError(
            f"model.backbone_weights: {path} is not a ResNet18 (it fits {len(picked)} of "
            f"{len(wanted)} tensors)"
        )
    body.load_state_dict(picked)


def save_detector(path: Path, model: nn.Module, cfg: DetectionConfig, **extra: Any) -> None:
    state = {"format": FORMAT, "version": VERSION, "config": cfg.to_dict(),
             "model": model.state_dict(), **extra}  # fmt: skip
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def is_detector(state: dict) -> bool:
    return isinstance(state, dict) and state.get("format") == FORMAT


def detector_from(state: dict, where: str) -> tuple[FCOS, DetectionConfig]:
    """The detector (eval mode) and configuration a checkpoint's state describes."""
    if state.get("version") != VERSION:
        raise LqerError(f"{where}: detector format version {state.get('version')}; "
                        f"this lqer reads version {VERSION}")  # fmt: skip
    try:
        cfg = DetectionConfig.from_saved(state["config"])
    except LqerError as e:
        raise LqerError(f"{where}: its configuration is not valid here ({e})") from None
    cfg.model.backbone_weights = "none"  # the state below holds the trained weights
    model = build_detector(**cfg.detector_arguments())
    try:
        model.load_state_dict(state["model"])
    except (RuntimeError, KeyError, TypeError) as e:
        why = first_line(e)
        raise LqerError(f"{where}: weights do not fit the detector it describes ({why})") from None
    return model.eval(), cfg


FLIP_IOU = 0.5  # a mirrored candidate overlapping a plain one this much is the same finding


@torch.no_grad()
def detect(
    model: torch.nn.Module,
    images: torch.Tensor,
    scales: torch.Tensor,
    batch_size: int = 8,
    flip: bool = False,
) -> list[list[Detection]]:
    """Candidates per frame, best first, for uint8 frames (N, S, S) at the detector's input
    size; `scales` (N, 2) maps input pixels back to frame pixels (x, y). `flip`: also run the
    mirrored frames and keep the union, by NMS (`mirror_merged`)."""
    model.eval()
    found = []
    for start in range(0, len(images), batch_size):
        part = images[start : start + batch_size]
        device = next(model.parameters()).device
        inputs = [im.to(device).float().div(255)[None].expand(3, -1, -1) for im in part]
        outputs = forward_frames(model, inputs, flip)
        frame_scales = scales[start : start + batch_size].tolist()
        for output, (sx, sy) in zip(outputs, frame_scales, strict=True):
            boxes, scores = output["boxes"].tolist(), output["scores"].tolist()
            found.append([
                Detection(round(x0 * sx), round(y0 * sy), round((x1 - x0) * sx),
                          round((y1 - y0) * sy), round(s, 6))
                for (x0, y0, x1, y1), s in zip(boxes, scores, strict=True)
            ])  # fmt: skip
    return found


def forward_frames(model: nn.Module, inputs: list[torch.Tensor], flip: bool) -> list[dict]:
    """FCOS's boxes and scores for (3, S, S) inputs in [0, 1]; `flip`: pooled with those of
    their mirror images (`mirror_merged`). Shared by `detect` and the ONNX graph."""
    outputs = model(inputs)
    if not flip:
        return outputs
    mirrored = model([image.flip(-1) for image in inputs])
    return [mirror_merged(o, m, image.shape[-1], model.detections_per_img)
            for o, m, image in zip(outputs, mirrored, inputs, strict=True)]  # fmt: skip


def mirror_merged(plain: dict, mirrored: dict, width: int, limit: int) -> dict:
    """The test-time flip: `mirrored`'s boxes (found on the frame flipped left to right)
    mapped back, pooled with `plain`'s, and NMS at FLIP_IOU; at most `limit`, best first.
    On the hold-out of ARCADE train/ it found more stenoses at 1 false positive per frame than
    either averaging the two scores or the plain frame alone (results/detection)."""
    found = mirrored["boxes"]  # on the model's device, as the constants must be
    back = found[:, [2, 1, 0, 3]] * found.new_tensor([-1.0, 1.0, -1.0, 1.0])
    back = back + found.new_tensor([float(width), 0.0, float(width), 0.0])
    boxes = torch.cat([plain["boxes"], back.to(plain["boxes"].dtype)])
    scores = torch.cat([plain["scores"], mirrored["scores"]])
    keep = nms(boxes, scores, FLIP_IOU)[:limit]  # best first
    return {"boxes": boxes[keep], "scores": scores[keep]}


def detect_frame(model: nn.Module, frame: np.ndarray, cfg: DetectionConfig) -> list[Detection]:
    """Candidates of one (H, W) uint8 frame, resized to the detector's input as in training,
    with the test-time flip if its configuration asks for it."""
    height, width = frame.shape
    size = cfg.data.input_size
    image = resize(torch.from_numpy(np.ascontiguousarray(frame))[None, None], size)[0]
    scales = torch.tensor([[width / size, height / size]])
    return detect(model, image, scales, flip=cfg.model.flip)[0]


def load_detector(source: str | Path) -> tuple[FCOS, DetectionConfig, dict] | None:
    """The detector, its configuration and the rest of the checkpoint (or shipped metadata)
    that `source` names; None where `source` is not a detector (a patch classifier)."""
    entry = shipped(str(source))
    if entry is not None:
        if entry.kind != "detector":
            return None
        model, cfg = detector_from(entry.state(), entry.name)
        return model, cfg, entry.meta
    path = Path(source)
    if not path.is_file():
        return None  # the patch loader says what is wrong
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # not a torch file: the patch loader says so
        return None
    if not is_detector(state):
        return None
    model, cfg = detector_from(state, str(path))
    return model, cfg, state

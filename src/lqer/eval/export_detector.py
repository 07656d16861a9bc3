"""A whole-frame detector as ONNX, and running it in ONNX Runtime (`lqer scan --onnx`).

The graph takes one uint8 frame (1, S, S), already resized to the detector's input size S,
and returns candidate boxes (K, 4), corners at that size, and their scores (K,). It holds the
standardisation, FCOS with its pyramid and post-processing, and the circuit as its exact Fourier
series (`lqer.quantum.fourier`). The input size, threshold and model travel in the metadata.
Export is refused unless ONNX Runtime gives PyTorch's scores on real frames.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch
from torch import nn

from lqer.data.annotations import Detection
from lqer.data.frames import list_frames, read_frames
from lqer.data.images import load_gray
from lqer.data.layout import list_folder
from lqer.data.transforms import resize
from lqer.errors import LqerError
from lqer.eval.evaluate import Decision, decision
from lqer.eval.onnx_runtime import SAMPLE, TOLERANCE, need_onnx, onnx_session
from lqer.io import check_output_file, output_file
from lqer.models.detector import forward_frames, load_detector
from lqer.quantum.fourier import fourier_form
from lqer.quantum.layer import QuantumLayer
from lqer.threshold import checked_threshold

OPSET = 17  # torchvision's detection post-processing exports with the TorchScript exporter


class ExportedDetector(nn.Module):
    """uint8 frame (1, S, S) -> (boxes (K, 4), scores (K,)), every QuantumLayer replaced by its
    Fourier series; `flip`: with the test-time flip (`lqer.models.detector.forward_frames`)."""

    def __init__(self, model: nn.Module, flip: bool = False):
        super().__init__()
        self.flip = flip
        self.model = copy.deepcopy(model).float().cpu().eval()
        for name, module in list(self.model.named_modules()):
            if isinstance(module, QuantumLayer):
                parent, _, attr = name.rpartition(".")
                setattr(self.model.get_submodule(parent), attr, fourier_form(module))
        self.eval()  # FCOS wants targets in training mode

    def forward(self, frame: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = forward_frames(self.model, [frame.float().div(255).expand(3, -1, -1)], self.flip)[0]
        return out["boxes"], out["scores"]


def parity_frames(data: str | Path | None, size: int, count: int = 4) -> list[torch.Tensor]:
    """Frames to check the export on, at the input size: a folder of frames, or frames tiled
    from the bundled P-ADSD patches (real angiography, no frame ships with lqer)."""
    if data is not None:
        refs = list_frames(data)[:count]
        if not refs:
            raise LqerError(f"`data`: no frames in {data}")
        frames = [torch.from_numpy(np.ascontiguousarray(image)) for _, image in read_frames(refs)]
    else:
        patches = [load_gray(path) for path, _ in list_folder(SAMPLE)[: 16 * count]]
        tiles = [resize(torch.from_numpy(p)[None, None], 64)[0, 0] for p in patches]
        frames = [torch.cat([torch.cat(tiles[k + 4 * r : k + 4 * r + 4], dim=1) for r in range(4)])
                  for k in range(0, len(tiles) - 15, 16)]  # fmt: skip
    return [resize(frame[None, None], size)[0] for frame in frames]


def export_detector(checkpoint: str | Path, out: str | Path, data: str | Path | None) -> dict:
    """Write `out` (.onnx) if ONNX Runtime matches PyTorch within TOLERANCE in score."""
    onnx, _ = need_onnx()
    out = check_output_file(out, "`out`", [checkpoint, *([data] if data else [])])
    model, cfg, info = load_detector(checkpoint)
    size = cfg.data.input_size
    chosen = decision(checkpoint, info, None)
    frames = parity_frames(data, size)
    wrapper = ExportedDetector(model, cfg.model.flip)
    with output_file(out) as tmp:
        torch.onnx.export(wrapper, (frames[0],), str(tmp), opset_version=OPSET, dynamo=False,
                          input_names=["frame"], output_names=["boxes", "scores"])  # fmt: skip
        proto = onnx.load(str(tmp))
        meta = {"lqer.kind": "detector", "lqer.image_size": str(size),
                "lqer.threshold": repr(chosen.threshold), "lqer.threshold_source": chosen.why,
                "lqer.model": f"fcos-{cfg.model.head}", "lqer.flip": str(cfg.model.flip),
                "lqer.checkpoint": Path(str(checkpoint)).name}  # fmt: skip
        for key, value in meta.items():
            proto.metadata_props.add(key=key, value=value)
        onnx.checker.check_model(proto)
        onnx.save(proto, str(tmp))
        session = OnnxDetector(tmp)
        worst = 0.0
        for frame in frames:
            ours = session.raw(frame)[1]
            with torch.no_grad():
                theirs = wrapper(frame)[1].numpy()
            if len(ours) != len(theirs):
                raise LqerError(f"ONNX Runtime gives {len(ours)} candidates, PyTorch "
                                f"{len(theirs)}; {out} not written")  # fmt: skip
            worst = max(worst, float(np.abs(ours - theirs).max(initial=0.0)))
        if not worst <= TOLERANCE:
            raise LqerError(
                f"ONNX Runtime differs from PyTorch by {worst:.2e} in score on {len(frames)} "
                f"frames (allowed {TOLERANCE:g}); {out} not written"
            )
    return {"out": str(out), "opset": OPSET, "patches": len(frames), "max_difference": worst,
            "image_size": size, "threshold": chosen.threshold,
            "model": meta["lqer.model"]}  # fmt: skip


class OnnxDetector:
    """An exported detector in ONNX Runtime: its input size, threshold and candidates."""

    def __init__(self, path: str | Path, opened: tuple[object, dict] | None = None):
        self.session, meta = opened or onnx_session(path)  # `opened`: spares a second load
        if meta.get("lqer.kind") != "detector":
            raise LqerError(f"`onnx`: {path} is not a whole-frame detector")
        self.path = Path(path)
        self.flip = meta.get("lqer.flip") == "True"  # the test-time flip is in the graph
        try:
            self.size = int(meta["lqer.image_size"])
        except (KeyError, ValueError):
            raise LqerError(f"`onnx`: {path}: lqer.image_size is not a number") from None
        where = f"`onnx`: {path}: lqer.threshold"
        self.threshold = checked_threshold(meta.get("lqer.threshold"), where)
        self.decision = Decision(
            self.threshold, f"from {path}, {meta.get('lqer.threshold_source')}"
        )

    def raw(self, frame: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Boxes and scores of a uint8 frame (1, S, S) at the input size."""
        return tuple(self.session.run(None, {"frame": frame.numpy()}))

    def detect_frame(self, frame: np.ndarray) -> list[Detection]:
        """Candidates of one (H, W) uint8 frame, in its pixels, best first."""
        height, width = frame.shape
        image = resize(torch.from_numpy(np.ascontiguousarray(frame))[None, None], self.size)[0]
        boxes, scores = self.raw(image)
        sx, sy = width / self.size, height / self.size
        return [Detection(round(x0 * sx), round(y0 * sy), round((x1 - x0) * sx),
                          round((y1 - y0) * sy), round(float(s), 6))
                for (x0, y0, x1, y1), s in zip(boxes.tolist(), scores, strict=True)]  # fmt: skip

"""What scans one frame: a whole-frame detector (its candidates, no heatmap), a patch classifier
sliding its windows (`scan`), densely (`dense`) or cropped, from a checkpoint or an ONNX export."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from lqer.data.annotations import Detection
from lqer.detection_config import DetectionConfig
from lqer.device import pick_device
from lqer.errors import LqerError
from lqer.eval.evaluate import Decision, decision
from lqer.eval.scan import DENSE_STRIDES, ScanConfig, scan_frame, torch_scorer
from lqer.models.checkpoint import load_checkpoint
from lqer.models.detector import detect_frame, load_detector


def scorer_for(
    checkpoint: str | Path | None,
    onnx: str | Path | None,
    device: str,
    opened: tuple[object, dict] | None = None,
):
    """The scorer, input size and decision threshold of a checkpoint or an ONNX export
    (`opened`: its session and metadata, where already loaded)."""
    if onnx is not None:
        from lqer.eval.export import OnnxModel, onnx_decision

        session = OnnxModel(onnx, opened=opened)
        return session.predict, session.image_size, onnx_decision(session, threshold=None)
    model, model_cfg, info = load_checkpoint(checkpoint)
    dev = pick_device(device)
    size = model_cfg.data.image_size
    return torch_scorer(model.to(dev).eval(), size, dev), size, decision(checkpoint, info, None)


def with_flip(cfg: DetectionConfig, flip: bool) -> DetectionConfig:
    """A copy of a detector's configuration that scans with (or without) the test-time flip."""
    return cfg.model_copy(update={"model": cfg.model.model_copy(update={"flip": flip})})


FrameScanner = Callable[[np.ndarray], tuple[np.ndarray | None, list[Detection]]]


def frame_scanner(
    checkpoint: str | Path | None, onnx: str | Path | None, device: str, cfg: ScanConfig
) -> tuple[FrameScanner, Decision, bool | None]:
    """What scans one frame, its decision threshold, and whether it scans with the test-time
    flip: a whole-frame detector gives candidates (no heatmap); a patch classifier slides its
    windows (`scan_frame`; flip None)."""
    from lqer.eval.export_detector import OnnxDetector
    from lqer.eval.onnx_runtime import onnx_session

    opened = onnx_session(onnx) if onnx is not None else None
    if opened is not None and opened[1].get("lqer.kind") == "detector":
        session = OnnxDetector(onnx, opened)
        if cfg.flip is not None and cfg.flip != session.flip:
            raise LqerError(f"`flip`: {onnx} was exported {'without' if cfg.flip else 'with'} "
                            "the test-time flip; scan with its checkpoint instead")  # fmt: skip
        return (lambda frame: (None, session.detect_frame(frame))), session.decision, session.flip
    found = load_detector(checkpoint) if onnx is None else None
    if found is not None:
        model, detector_cfg, info = found
        model.to(pick_device(device))
        chosen = decision(checkpoint, info, None)
        if cfg.flip is not None and cfg.flip != detector_cfg.model.flip:
            detector_cfg = with_flip(detector_cfg, cfg.flip)
            asked, stored = ("with", "without") if cfg.flip else ("without", "with")
            chosen = Decision(chosen.threshold, f"{chosen.why}; chosen {stored} the test-time "
                              f"flip, scanned {asked} it")  # fmt: skip

        def scan_one(frame: np.ndarray) -> tuple[None, list[Detection]]:
            return None, detect_frame(model, frame, detector_cfg)

        return scan_one, chosen, detector_cfg.model.flip
    if cfg.flip is not None:
        raise LqerError("`flip` is for whole-frame detectors; a window scan has none")
    if cfg.dense and onnx is None:
        from lqer.eval.dense import DenseScanner

        model, model_cfg, info = load_checkpoint(checkpoint)
        dev = pick_device(device)
        scanner = DenseScanner(model.to(dev), model_cfg.data.image_size, cfg,
                               DENSE_STRIDES[cfg.stride], dev)  # fmt: skip
        return scanner, decision(checkpoint, info, None), None
    score, size, chosen = scorer_for(checkpoint, onnx, device, opened)
    return (lambda frame: scan_frame(score, frame, size, cfg)), chosen, None

"""The whole model, quantum layer included, as ONNX; and scoring images with ONNX Runtime.

The graph takes uint8 patches (B, 1, S, S) already resized to the model's input size, as
`lqer.data.transforms.resize` gives them, and returns the probability of stenosis (B,). It
holds the standardisation, the backbone, the projection, the circuit as its exact Fourier
series (`lqer.quantum.fourier`, standard operators only) and the classifier. The image size,
threshold and model name travel in the file's metadata, so `lqer predict --onnx` needs
nothing else. Export is refused unless ONNX Runtime reproduces PyTorch's probabilities.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch
from torch import nn

from lqer.config import DataConfig
from lqer.data.dataset import ImageSet, decode
from lqer.data.frames import collect_frames
from lqer.data.layout import known_label, list_folder
from lqer.data.transforms import eval_transform
from lqer.errors import LqerError
from lqer.eval.evaluate import Decision, decision, predict_proba
from lqer.eval.onnx_runtime import SAMPLE, TOLERANCE, need_onnx, onnx_session
from lqer.eval.predictions import prediction_rows, write_predictions
from lqer.io import check_output_file, output_file
from lqer.logs import logger
from lqer.models.checkpoint import load_checkpoint
from lqer.models.detector import load_detector
from lqer.quantum.fourier import fourier_form
from lqer.quantum.layer import QuantumLayer
from lqer.threshold import checked_threshold

OPSET = 18


class Exported(nn.Module):
    """uint8 patches (B, 1, S, S) -> probability of stenosis (B,), every QuantumLayer replaced
    by its Fourier series."""

    def __init__(self, model: nn.Module, image_size: int):
        super().__init__()
        self.model = copy.deepcopy(model).float().cpu().eval()
        for name, module in list(self.model.named_modules()):
            if isinstance(module, QuantumLayer):
                parent, _, attr = name.rpartition(".")
                setattr(self.model.get_submodule(parent), attr, fourier_form(module))
        self.prepare = eval_transform(image_size)
        self.eval()

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(self.prepare(patches)), dim=1)[:, 1]


def parity_images(data: str | Path | None, image_size: int) -> ImageSet:
    """Real patches to check the export on: a labelled folder, or the bundled P-ADSD ones."""
    items = list_folder(Path(data) if data else SAMPLE)
    return decode(items, image_size, where=f" in {data or SAMPLE}")


def export_onnx(checkpoint: str | Path, out: str | Path, data: str | Path | None = None) -> dict:
    """Write `out` (.onnx) if ONNX Runtime matches PyTorch within TOLERANCE on real patches
    (whole frames for a detector: `lqer.eval.export_detector`)."""
    if load_detector(checkpoint) is not None:
        from lqer.eval.export_detector import export_detector

        return export_detector(checkpoint, out, data)
    onnx, ort = need_onnx()
    out = check_output_file(out, "`out`", [checkpoint, *([data] if data else [])])
    model, cfg, info = load_checkpoint(checkpoint)
    model = model.float().cpu().eval()
    size = cfg.data.image_size
    chosen = decision(checkpoint, info, None)
    images = parity_images(data, size)
    wrapper = Exported(model, size)
    example = images.images[:2]
    logger.info(f"exporting {checkpoint} ({cfg.model.name}, {size} px) to ONNX opset {OPSET}")
    with output_file(out) as tmp:
        program = torch.onnx.export(
            wrapper, (example,), input_names=["patches"], output_names=["prob_stenosis"],
            opset_version=OPSET, dynamic_shapes={"patches": {0: torch.export.Dim("batch")}},
            dynamo=True, verbose=False,
        )  # fmt: skip
        proto = program.model_proto
        meta = {"lqer.image_size": str(size), "lqer.threshold": repr(chosen.threshold),
                "lqer.threshold_source": chosen.why, "lqer.model": cfg.model.name,
                "lqer.checkpoint": Path(str(checkpoint)).name}  # fmt: skip
        for key, value in meta.items():
            proto.metadata_props.add(key=key, value=value)
        onnx.checker.check_model(proto)
        onnx.save(proto, tmp)
        logger.info(f"checking ONNX Runtime against PyTorch on {len(images)} patches")
        session = OnnxModel(tmp)
        ours = session.predict(images.images)
        theirs = predict_proba(model, images.images, size)
        worst = float(np.abs(ours - theirs).max())
        if not worst <= TOLERANCE:
            raise LqerError(
                f"ONNX Runtime differs from PyTorch by {worst:.2e} in probability on "
                f"{len(images)} patches (allowed {TOLERANCE:g}); {out} not written"
            )
    return {"out": str(out), "opset": OPSET, "patches": len(images), "max_difference": worst,
            "image_size": size, "threshold": chosen.threshold, "model": cfg.model.name}  # fmt: skip


class OnnxModel:
    """An exported lqer model in ONNX Runtime: its size, threshold and probabilities."""

    def __init__(
        self,
        path: str | Path,
        threads: int | None = None,
        opened: tuple[object, dict] | None = None,
    ):
        path = Path(path)
        self.session, meta = opened or onnx_session(path, threads)  # `opened`: its session, meta
        if meta.get("lqer.kind") == "detector":
            raise LqerError(f"`onnx`: {path} is a whole-frame detector: use it with lqer scan")
        if "lqer.image_size" not in meta:
            raise LqerError(f"`onnx`: {path} was not exported by lqer export (no lqer metadata)")
        self.path = path
        where = f"`onnx`: {path}: its lqer metadata"
        try:  # metadata is text anyone can edit: the same bounds as a configuration's
            self.image_size = DataConfig(image_size=meta["lqer.image_size"]).image_size
        except LqerError as e:
            why = str(e).removeprefix("data.image_size: ")
            raise LqerError(f"{where}: lqer.image_size {why}") from None
        self.threshold = checked_threshold(meta.get("lqer.threshold"), f"{where}: lqer.threshold")
        self.threshold_source = meta.get("lqer.threshold_source", "")[:200]
        self.model_name = meta.get("lqer.model", "onnx")[:80]

    def predict(self, images: torch.Tensor, batch_size: int = 256) -> np.ndarray:
        """Probabilities for uint8 images (N, 1, S, S) at the model's size."""
        parts = [
            self.session.run(None, {"patches": images[i : i + batch_size].numpy()})[0]
            for i in range(0, len(images), batch_size)
        ]
        return np.concatenate(parts).astype(np.float64) if parts else np.empty(0)


def onnx_decision(session: OnnxModel, threshold: float | None) -> Decision:
    if threshold is not None:
        return Decision(checked_threshold(threshold, "`threshold`"), "as asked")
    return Decision(session.threshold, f"from {session.path}, {session.threshold_source}")


def predict_onnx_files(
    onnx_path: str | Path,
    paths: list[str | Path],
    out: str | Path,
    skip_bad: bool = False,
    threshold: float | None = None,
) -> tuple[ImageSet, Decision]:
    """`predict_files` with an exported model in ONNX Runtime instead of a checkpoint."""
    check_output_file(out, "`out`", [onnx_path, *paths])
    session = OnnxModel(onnx_path)
    chosen = onnx_decision(session, threshold)
    items = [(ref, known_label(ref.path)) for ref in collect_frames(paths)]
    data = decode(items, session.image_size, skip_bad, screened=True)
    probs = session.predict(data.images)
    rows = prediction_rows(data, probs, f"{session.model_name} (onnx)", threshold=chosen.threshold)
    write_predictions(out, rows, loose=True)
    return data, chosen

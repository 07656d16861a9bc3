"""Trained weights that ship inside the package, after torchvision's weights pattern: a named
entry that carries its preprocessing, decision threshold, training data, metrics and licence.

A shipped model is two files in `lqer/weights/`: NAME.safetensors (fp16 tensors, loaded
without pickle) and NAME.json (its configuration and metadata). `export` writes both from a
run's checkpoint; `--checkpoint NAME` anywhere a checkpoint is read loads them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

from lqer.config import ExperimentConfig, from_dict
from lqer.data.transforms import PatchTransform
from lqer.detection_config import DetectionConfig
from lqer.errors import LqerError
from lqer.guarded_yaml import first_line
from lqer.io import output_file
from lqer.models.base import Model
from lqer.models.configured import from_config
from lqer.threshold import checked_threshold

FOLDER = resources.files("lqer") / "weights"


@dataclass(frozen=True)
class Weights:
    name: str
    summary: str
    kind: str = "classifier"  # of patches; or "detector" of whole frames (lqer.models.detector)

    @property
    def files(self) -> tuple[Path, Path]:
        return weight_files(Path(str(FOLDER)), self.name)

    @property
    def available(self) -> bool:
        return self.problem() is None

    def problem(self) -> str | None:
        """Why these weights cannot be used, in one line, or None."""
        try:
            self.check()
        except LqerError as e:
            return str(e)
        return None

    def check(self) -> None:
        """An LqerError unless both files are there, the safetensors header reads and covers
        the file (a truncated copy fails here, before any tensor is read), and the metadata
        holds a valid configuration and threshold."""
        from safetensors import SafetensorError, safe_open

        tensors, info = self.files
        if not (tensors.is_file() and info.is_file()):
            raise LqerError(f"the weights {self.name!r} are not in this installation of lqer")
        try:
            with safe_open(str(tensors), "pt"):
                pass
        except (SafetensorError, OSError) as e:
            why = first_line(e)
            raise LqerError(f"{tensors}: a truncated or damaged weights file ({why})") from None
        _ = self.config, self.threshold  # each raises an LqerError naming the metadata file

    @cached_property
    def meta(self) -> dict[str, Any]:
        """Training data, recipe, thresholds, metrics with intervals, licence."""
        tensors, info = self.files
        if not (tensors.is_file() and info.is_file()):
            raise LqerError(f"the weights {self.name!r} are not in this installation of lqer")
        try:
            meta = json.loads(info.read_text(encoding="utf-8"))
        except (OSError, UnicodeError, ValueError) as e:
            raise LqerError(f"{info}: not readable JSON ({first_line(e)})") from None
        if not isinstance(meta, dict) or not isinstance(meta.get("threshold"), dict):
            raise LqerError(f"{info}: not the metadata of lqer weights (no threshold)")
        return meta

    @property
    def config(self) -> ExperimentConfig | DetectionConfig:
        try:
            if self.kind == "detector":
                return DetectionConfig.validated(self.meta.get("config"))
            return from_dict(self.meta.get("config"))
        except LqerError as e:
            raise LqerError(f"{self.files[1]}: its configuration is not valid here ({e})") from None

    @property
    def threshold(self) -> float:

        value = self.meta["threshold"].get("value")
        return checked_threshold(value, f"{self.files[1]}: stored threshold")

    def transforms(self) -> PatchTransform:
        """A patch (PIL image, array or tensor; one or a batch) -> the model's input."""
        return PatchTransform(self.config.data.image_size)

    def state(self) -> dict[str, Any]:
        """The tensors in float32 with the configuration, as a checkpoint holds them."""
        from safetensors.torch import load_file

        self.check()
        tensors = {k: v.float() if v.is_floating_point() else v
                   for k, v in load_file(self.files[0]).items()}  # fmt: skip
        return {"format": f"lqer-{self.kind}", "version": 1, "config": self.meta["config"],
                "model": tensors}  # fmt: skip

    def load(self) -> Model:
        """The model in float32, eval mode, on the CPU: `model(weights.transforms()(patch))`."""
        return self.loaded()[0]

    def loaded(self) -> tuple[Model, ExperimentConfig, dict[str, Any]]:
        """The model (as `load`), its configuration and the metadata."""
        from safetensors.torch import load_file

        if self.kind == "detector":
            raise LqerError(f"{self.name} is a whole-frame detector: use it with lqer scan")
        self.check()
        cfg = self.config
        cfg.model.weights = "none"
        model = from_config(cfg.model)
        state = {k: v.float() if v.is_floating_point() else v
                 for k, v in load_file(self.files[0]).items()}  # fmt: skip
        try:
            model.load_state_dict(state)
        except RuntimeError as e:
            raise LqerError(
                f"{self.files[0]}: weights do not fit the {cfg.model.name!r} model "
                f"({first_line(e)})"
            ) from None
        return model.eval(), cfg, self.meta


WEIGHTS = {
    w.name: w
    for w in (
        Weights("lqer-padsd", "LQER trained from scratch on all of P-ADSD train/ (research use)"),
        Weights(
            "lqer-xca",
            "LQER trained from scratch on P-ADSD and ARCADE patches together, with the "
            "transfer recipe (research use)",
        ),
        Weights(
            "lqer-arcade",
            "a whole-frame detector (FCOS, ResNet18 pyramid, LQER box head) "
            "trained on ARCADE train/ (research use)",
            kind="detector",
        ),
    )
}


def weight_files(folder: Path, name: str) -> tuple[Path, Path]:
    """Where shipped weights NAME lie in `folder`: NAME.safetensors and NAME.json."""
    return folder / f"{name}.safetensors", folder / f"{name}.json"


def export(
    model: Model, cfg: ExperimentConfig, meta: dict[str, Any], folder: Path, name: str
) -> tuple[Path, Path]:
    """Write NAME.safetensors (fp16) and NAME.json into `folder`, each atomically; they
    replace only files that lqer wrote (`lqer.io.output_file`)."""
    from safetensors.torch import save_file

    tensors = {k: (v.half() if v.is_floating_point() else v).contiguous()
               for k, v in model.state_dict().items()}  # fmt: skip
    weights, info = weight_files(folder, name)
    with output_file(weights) as tmp:
        save_file(tensors, str(tmp), metadata={"format": "lqer-weights", "name": name})
    with output_file(info) as tmp:
        tmp.write_text(json.dumps({"name": name, "config": cfg.to_dict(), **meta}, indent=2) + "\n")
    return weights, info


def shipped(name: str) -> Weights | None:
    """The entry for `name` if it names shipped weights and is not a file on disk."""
    return WEIGHTS.get(str(name)) if not Path(name).exists() else None


def describe() -> str:
    """What `lqer models` prints about the shipped weights."""
    lines = ["shipped weights (use as --checkpoint NAME):"]
    for w in WEIGHTS.values():
        problem = w.problem()
        if problem is not None:  # missing, or damaged: not listed as usable
            missing = not all(f.is_file() for f in w.files)
            lines.append(f"  {w.name:<14} {'not in this installation' if missing else problem}")
            continue
        m, t = w.meta, w.meta["threshold"]
        test = m.get("metrics", {}).get("test", {})
        where = m.get("test_split")
        if w.kind == "detector":
            size, found = f"frames at {w.config.data.input_size} px", test.get("froc", {}).get("1")
            score = "" if found is None else f", sensitivity {found:.3f} at 1 FP/frame on {where}"
        else:
            size, auc = f"{w.config.data.image_size} px", test.get("auc")
            score = "" if auc is None else f", test AUC {auc:.3f} on {where}"
        lines.append(f"  {w.name:<14} {w.summary}")
        lines.append(f"  {'':<14} {size}, threshold {w.threshold:.3f} ({t.get('rule')}){score}; "
                     f"licence {m.get('licence')}")  # fmt: skip
        for site, scored in m.get("sites", {}).items():
            low, high = scored["intervals"]["auc"]
            lines.append(f"  {'':<14} {site}: AUC {scored['metrics']['auc']:.3f} "
                         f"[{low:.3f}, {high:.3f}]")  # fmt: skip
    return "\n".join(lines)

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
from lqer.data.transforms import eval_transform
from lqer.errors import LqerError
from lqer.io import atomic_path, write_text
from lqer.models.base import Model
from lqer.models.registry import build_model

FOLDER = resources.files("lqer") / "weights"


@dataclass(frozen=True)
class Weights:
    name: str
    summary: str

    @property
    def files(self) -> tuple[Path, Path]:
        folder = Path(str(FOLDER))
        return folder / f"{self.name}.safetensors", folder / f"{self.name}.json"

    @property
    def available(self) -> bool:
        return all(f.is_file() for f in self.files)

    @cached_property
    def meta(self) -> dict[str, Any]:
        """Training data, recipe, thresholds, metrics with intervals, licence."""
        if not self.available:
            raise LqerError(f"the weights {self.name!r} are not in this installation of lqer")
        return json.loads(self.files[1].read_text())

    @property
    def config(self) -> ExperimentConfig:
        return from_dict(self.meta["config"])

    @property
    def threshold(self) -> float:
        return float(self.meta["threshold"]["value"])

    def transforms(self):
        """uint8 patches (N, 1, S, S) at the stored size -> the model's input."""
        return eval_transform(self.config.data.image_size)

    def load(self) -> tuple[Model, ExperimentConfig, dict[str, Any]]:
        """The model in float32, eval mode, on the CPU; its configuration; the metadata."""
        from safetensors.torch import load_file

        cfg = self.config
        cfg.model.weights = "none"
        model = build_model(cfg.model)
        state = {k: v.float() if v.is_floating_point() else v
                 for k, v in load_file(self.files[0]).items()}  # fmt: skip
        model.load_state_dict(state)
        return model.eval(), cfg, self.meta


WEIGHTS = {
    w.name: w
    for w in (
        Weights("lqer-padsd", "LQER trained from scratch on all of P-ADSD train/ (research use)"),
    )
}


def export(
    model: Model, cfg: ExperimentConfig, meta: dict[str, Any], folder: Path, name: str
) -> tuple[Path, Path]:
    """Write NAME.safetensors (fp16) and NAME.json into `folder`, each atomically."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: (v.half() if v.is_floating_point() else v).contiguous()
               for k, v in model.state_dict().items()}  # fmt: skip
    weights, info = folder / f"{name}.safetensors", folder / f"{name}.json"
    with atomic_path(weights) as tmp:
        save_file(tensors, str(tmp), metadata={"format": "lqer-weights", "name": name})
    write_text(info, json.dumps({"name": name, "config": cfg.to_dict(), **meta}, indent=2) + "\n")
    return weights, info


def shipped(name: str) -> Weights | None:
    """The entry for `name` if it names shipped weights and is not a file on disk."""
    return WEIGHTS.get(str(name)) if not Path(name).exists() else None


def describe() -> str:
    """What `lqer models` prints about the shipped weights."""
    lines = ["shipped weights (use as --checkpoint NAME):"]
    for w in WEIGHTS.values():
        if not w.available:
            lines.append(f"  {w.name:<14} not in this installation")
            continue
        m, t = w.meta, w.meta["threshold"]
        test = m.get("metrics", {}).get("test", {})
        auc = f", test AUC {test['auc']:.3f} on {m['test_split']}" if "auc" in test else ""
        lines.append(f"  {w.name:<14} {w.summary}")
        lines.append(f"  {'':<14} {w.config.data.image_size} px, threshold {t['value']:.3f} "
                     f"({t['rule']}){auc}; licence {m['licence']}")  # fmt: skip
    return "\n".join(lines)

"""The bundled P-ADSD sample and the settings `lqer demo` trains with on a 2-core CPU."""

from __future__ import annotations

from pathlib import Path

SAMPLE_DIR = Path(__file__).parent


def demo_config(out_dir: str | Path) -> dict[str, object]:
    """Overrides for `lqer demo`: LQER from scratch at 64 px, scored on the held-aside `test/`."""
    return {
        "data.root": SAMPLE_DIR,
        "data.train_split": "train",
        "data.test_split": "test",
        "data.image_size": 64,
        "model.name": "lqer",
        "model.weights": "none",
        "train.epochs": 12,
        "train.batch_size": 32,
        "train.lr_backbone": 1e-3,
        "train.lr_head": 3e-3,
        "out_dir": out_dir,
    }

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def datasets_dir() -> Path:
    """The real datasets beside the checkout (../shared/datasets), or $LQER_DATASETS."""
    path = Path(os.environ.get("LQER_DATASETS", REPO.parent / "shared" / "datasets"))
    if not path.is_dir():
        pytest.skip(f"real datasets not found at {path}")
    return path


def write_image(path: Path, array: np.ndarray, mode: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode=mode).save(path)
    return path


def make_tiny_dataset(root: Path) -> Path:
    """A <root>/{train,validation}/{positive,negative} tree of small synthetic-looking patches
    in which positives are brighter in the centre, so a model can learn them quickly."""
    rng = np.random.default_rng(0)
    for split, n in (("train", 24), ("validation", 12)):
        for label, name in enumerate(("negative", "positive")):
            for i in range(n):
                image = rng.integers(0, 120, (20, 20)).astype(np.uint8)
                if label:
                    image[6:14, 6:14] += 120
                write_image(root / split / name / f"{i:03d}.png", image)
    return root


@pytest.fixture
def tiny_dataset(tmp_path) -> Path:
    return make_tiny_dataset(tmp_path / "data")

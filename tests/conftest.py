"""Fixtures; the helpers they use are in helpers.py."""

from pathlib import Path

import pytest
from helpers import make_tiny_dataset, need_datasets


@pytest.fixture(scope="session")
def datasets_dir() -> Path:
    return need_datasets()


@pytest.fixture
def tiny_dataset(tmp_path) -> Path:
    return make_tiny_dataset(tmp_path / "data")

"""What the tests share: data makers, the `lqer` command in a subprocess, and where the real
datasets are. Fixtures live in conftest.py; no test file imports another."""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
import torch
from PIL import Image
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from lqer.cli import main
from lqer.config import load_config

REPO = Path(__file__).resolve().parents[1]


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


def write_dicom(path, frames, photometric="MONOCHROME2", bits_stored=None, **tags):
    """A multi-frame X-ray angiography DICOM file of (N, H, W) integer frames, with any further
    `tags` (e.g. WindowCenter=...); `path` may be a file object."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.12.1"  # X-ray angiography
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = (
        meta.MediaStorageSOPClassUID,
        meta.MediaStorageSOPInstanceUID,
    )
    ds.Rows, ds.Columns = frames.shape[1:]
    ds.NumberOfFrames = len(frames)
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    allocated = frames.dtype.itemsize * 8
    stored = bits_stored or allocated
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = (
        allocated,
        stored,
        stored - 1,
        int(np.issubdtype(frames.dtype, np.signedinteger)),
    )
    for name, value in tags.items():
        setattr(ds, name, value)
    ds.PixelData = frames.tobytes()
    ds.save_as(path, enforce_file_format=True)


def random_inputs(circuit, batch: int = 6, dtype=torch.float64, seed: int = 0):
    """Uploads (B, U, n) and weights of a circuit, both requiring gradients."""
    g = torch.Generator().manual_seed(seed)
    angles = (torch.rand(batch, circuit.n_uploads, circuit.n_qubits, generator=g) - 0.5) * 6
    weights = torch.rand(circuit.weight_shape, generator=g) * 2 * torch.pi
    return angles.to(dtype).requires_grad_(), weights.to(dtype).requires_grad_()


def value_and_grads(f, angles, weights):
    """f's output and the gradients of a weighted sum of it by angles and weights."""
    out = f(angles, weights)
    (out * torch.linspace(-1, 1, out.numel()).view_as(out).to(out)).sum().backward()
    grads = angles.grad.clone(), weights.grad.clone()
    angles.grad = weights.grad = None
    return out.detach(), *grads


def lqer_command() -> list[str]:
    """The console script installed beside this Python, as a user runs it."""
    script = Path(sys.executable).with_name("lqer")
    return [str(script)] if script.exists() else [sys.executable, "-m", "lqer"]


def run_lqer(
    *args: str, cwd: Path | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}  # typer's usage box: one message per line
    return subprocess.run(
        [*lqer_command(), *args], capture_output=True, text=True, cwd=cwd, env=env,
        timeout=timeout,
    )  # fmt: skip


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under `folder` and the hash of its bytes."""
    return {
        str(p.relative_to(folder)): hashlib.sha1(p.read_bytes()).hexdigest()
        for p in folder.rglob("*")
        if p.is_file()
    }


def datasets_path() -> Path:
    """The real datasets beside the checkout (../shared/datasets), or $LQER_DATASETS."""
    return Path(os.environ.get("LQER_DATASETS", REPO.parent / "shared" / "datasets"))


def need_datasets() -> Path:
    """The datasets' folder; without it a test skips, except under CI (CI=true), where the
    suite must not pass by skipping the tests that read real data."""
    path = datasets_path()
    if not path.is_dir():
        message = f"real datasets not found at {path}"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{message}; CI needs them (unset CI to skip these tests)")
        pytest.skip(message)
    return path


def tiny_config(root, out, *extra):
    return load_config(
        None,
        [
            f"data.root={root}", "data.image_size=16", f"out_dir={out}", "train.epochs=2",
            "train.batch_size=16", "train.progress=false", "train.lr_backbone=1e-3",
            "train.lr_head=1e-2", *extra,
        ],
    )  # fmt: skip


def run_cli(monkeypatch, capsys, *args) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["lqer", *map(str, args)])
    try:
        main()
        code = 0
    except SystemExit as e:
        code = e.code or 0
    out, err = capsys.readouterr()
    return code, out, err


def commands(group, prefix: str = "") -> dict:
    """Every leaf command below a (typer's own click) group, by its full name."""
    found = {}
    for name, command in group.commands.items():
        if hasattr(command, "commands"):  # a group
            found |= commands(command, f"{prefix}{name} ")
        else:
            found[f"{prefix}{name}"] = command
    return found

"""How a trained LQER model would fare on a noisy quantum device: its metrics on labelled data
at a range of noise strengths and shot counts (the paper's future work on hardware noise)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from matplotlib import rc_context
from matplotlib.figure import Figure
from torch import nn

from lqer.data.dataset import ImageSet
from lqer.errors import LqerError
from lqer.eval.evaluate import predict_logits, probabilities
from lqer.eval.figures import LINES, STYLE, save
from lqer.eval.metrics import binary_metrics
from lqer.experiments import tables
from lqer.io import check_own_folder, owned_folder, write_csv, write_text
from lqer.quantum import Noise, executing
from lqer.quantum.layer import quantum_layers
from lqer.threshold import checked_threshold

KIND = "noise-sweep"  # its output folder is marked as lqer noise-sweep's
CHANNELS = ("depolarizing", "amplitude_damping", "readout_error")
COLUMNS = ("channel", "strength", "shots", "auc", "accuracy", "f1", "sensitivity", "specificity")


@dataclass(frozen=True)
class SweepPoint:
    channel: str  # one of CHANNELS
    strength: float
    shots: int | None  # None: exact expectations

    def __post_init__(self):
        if self.channel not in CHANNELS:
            raise LqerError(f"noise channel must be one of {', '.join(CHANNELS)}: {self.channel}")

    @property
    def noise(self) -> Noise:
        return Noise(**{self.channel: self.strength})


def grid(
    channels: Sequence[str], strengths: Sequence[float], shots: Sequence[int | None]
) -> list[SweepPoint]:
    return [SweepPoint(c, s, n) for c in channels for n in shots for s in strengths]


@torch.no_grad()
def _head_probabilities(
    model: nn.Module, features: torch.Tensor, device: torch.device, batch_size: int
) -> np.ndarray:
    """The model's probabilities from precomputed backbone features: only the head sees noise."""
    backbone, model.backbone = model.backbone, nn.Identity()
    try:
        logits = [model(f.to(device)).float().cpu() for f in features.split(batch_size)]
    finally:
        model.backbone = backbone
    return probabilities(torch.cat(logits))


def noise_sweep(
    model: nn.Module,
    data: ImageSet,
    points: Sequence[SweepPoint],
    device: torch.device | str = "cpu",
    threshold: float = 0.5,
    seed: int = 0,
    batch_size: int = 256,
    progress: bool = False,
) -> list[dict]:
    """One row of metrics per point. The backbone runs once; its features are then scored by
    the head with the circuit run natively under each point's noise and shots (seeded)."""
    if not quantum_layers(model):
        raise LqerError("this model has no quantum circuit to add noise to")
    threshold = checked_threshold(threshold, "`threshold`")
    from tqdm import tqdm

    device = torch.device(device)
    model = model.to(device).eval()
    features = predict_logits(model.backbone, data.images, data.size, device, batch_size)
    labels = data.labels.numpy()
    rows = []
    for point in tqdm(points, desc="noise sweep", disable=not progress):
        settings = dict(backend="native", noise=point.noise, shots=point.shots, seed=seed)
        with executing(model, **settings):
            probs = _head_probabilities(model, features, device, batch_size)
        metrics = binary_metrics(labels, probs, threshold)
        rows.append(
            {
                "channel": point.channel,
                "strength": point.strength,
                "shots": point.shots or "exact",
                **{name: metrics[name] for name in COLUMNS[3:]},
            }
        )
    return rows


def markdown_table(rows: list[dict], title: str) -> str:
    cells = [[f"{v:.4f}" if isinstance(v, float) else v for v in row.values()] for row in rows]
    return "\n".join([f"# {title}", "", *tables.markdown_table(COLUMNS, cells)]) + "\n"


def plot(rows: list[dict], stem: str | Path, title: str) -> list[Path]:
    """AUC and accuracy against noise strength: colour and marker by channel, dash by shots."""
    channels = list(dict.fromkeys(row["channel"] for row in rows))
    shots = list(dict.fromkeys(row["shots"] for row in rows))
    dashes = ("-", "--", ":", "-.")
    with rc_context(STYLE):
        fig = Figure(figsize=(10, 4))
        axes = fig.subplots(1, 2, sharex=True)
        for ax, metric in zip(axes, ("auc", "accuracy"), strict=True):
            for (i, channel), (j, n) in itertools.product(enumerate(channels), enumerate(shots)):
                points = [r for r in rows if r["channel"] == channel and r["shots"] == n]
                colour, marker, _ = LINES[i % len(LINES)]
                ax.plot(
                    [p["strength"] for p in points],
                    [p[metric] for p in points],
                    color=colour,
                    marker=marker,
                    linestyle=dashes[j % len(dashes)],
                    label=f"{channel.replace('_', ' ')}, {n} shots",
                )
            ax.set(xlabel="noise strength (per wire, after each gate layer)", ylabel=metric)
        axes[0].legend(loc="lower left")
        fig.suptitle(title)
        return save(fig, stem)


def check_out(out_dir: str | Path, inputs: list) -> Path:
    """Fail before the sweep unless `out_dir` can be its output folder (`lqer.io`)."""
    return check_own_folder(out_dir, KIND, "`out`", inputs)


def write_outputs(rows: list[dict], out_dir: str | Path, title: str) -> list[Path]:
    """noise_sweep.csv, .md, .png and .svg in `out_dir`, a folder of its own."""
    out_dir = check_out(out_dir, [])
    with owned_folder(out_dir, KIND):
        write_csv(out_dir / "noise_sweep.csv", rows, COLUMNS)
        write_text(out_dir / "noise_sweep.md", markdown_table(rows, title))
        figures = plot(rows, out_dir / "noise_sweep", title)
    return [out_dir / "noise_sweep.csv", out_dir / "noise_sweep.md", *figures]


def sweep_folder(
    checkpoint: str | Path,
    data: str | Path,
    out: str | Path | None = None,
    channels: Sequence[str] = ("depolarizing",),
    strengths: Sequence[float] = (0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5),
    shots: Sequence[int | None] = (None, 1000, 100),
    threshold: float | None = None,
    seed: int = 0,
    device: str = "auto",
    skip_bad: bool = False,
    progress: bool = True,
) -> list[dict]:
    """The whole workflow: a model and a labelled folder, the sweep, and (with `out`) its
    table and plot. Without `threshold`, the model's stored one decides."""
    from lqer.data.dataset import check_both_classes, load_folder
    from lqer.device import pick_device
    from lqer.eval.evaluate import decision
    from lqer.models.checkpoint import load_checkpoint

    if out is not None:
        out = check_out(out, [checkpoint, data])
    points = grid(list(channels), list(strengths), list(shots))
    model, cfg, info = load_checkpoint(checkpoint)
    chosen = decision(checkpoint, info, threshold).threshold
    images = load_folder(data, cfg.data.image_size, skip_bad, cfg.data.max_pixels)
    check_both_classes(images, str(data))
    rows = noise_sweep(model, images, points, pick_device(device), chosen, seed, progress=progress)
    if out is not None:
        write_outputs(rows, out, f"{checkpoint} on {data} (n={len(images.labels)})")
    return rows

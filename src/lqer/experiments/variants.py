"""What a comparison scores: each run's model and, where it has a circuit, its q ablations
(variants), as validation and test predictions read from or written beside the run."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from lqer.data.dataset import ImageSet
from lqer.errors import LqerError
from lqer.eval import metrics, predictions
from lqer.models import MODELS

DEFAULT_MODELS = tuple(MODELS)

REFERENCE = "lqer"

Q_ABLATIONS = {  # test-time ablations of a trained circuit model, and what each one tests
    "zeros": "setting q to zero at test time",
    "shuffle": "shuffling q across a batch of test patches in random order",
}

METRICS = metrics.NAMES


@dataclasses.dataclass
class Predictions:
    """Validation and test predictions of one model variant in one run."""

    name: str  # e.g. "lqer", "lqer (q=zeros)"
    seed: int
    val_labels: np.ndarray
    val_probs: np.ndarray
    test_labels: np.ndarray
    test_probs: np.ndarray
    test_paths: list[str]


def variant_name(model: str, ablation: str | None) -> str:
    return f"{model} (q={ablation})" if ablation else model


def is_ablation(name: str) -> bool:
    """Whether `name` is a test-time ablation of a trained model, e.g. "lqer (q=zeros)"."""
    return any(name.endswith(f" (q={a})") for a in Q_ABLATIONS)


def variants(model: str) -> tuple[str | None, ...]:
    """The ablations a run is scored under: none, and the q ablations where it has a circuit."""
    entry = MODELS.get(model)  # None for a model of another lqer's comparison
    return (None, *Q_ABLATIONS) if entry is not None and entry.circuit else (None,)


def variant_files(run: Path, model: str) -> dict[str | None, Path]:
    return {
        a: run / (f"predictions_q-{a}.csv" if a else "predictions.csv") for a in variants(model)
    }


def load_run(run: Path, model: str, seed: int) -> list[Predictions]:
    """Every variant a run has been scored under, the model itself first."""
    files = variant_files(run, model).values()
    return [read_predictions(path, seed) for path in files if path.exists()]


def table_predictions(out: Path, runs: list[dict]) -> list[Predictions]:
    """The predictions of every run the tables hold."""
    kept = [r for r in runs if r["left_out"] is None]
    return [p for r in kept for p in load_run(out / r["run"], r["model"], r["seed"])]


def read_predictions(path: Path, seed: int) -> Predictions:
    """One variant's validation and test predictions, from its predictions file."""
    rows = [r for r in predictions.read_predictions(path) if r.label != predictions.SKIPPED]
    val = [r for r in rows if r.split == "val"]
    test = [r for r in rows if r.split == "test"]
    if not val or not test:
        raise LqerError(f"{path}: needs validation and test predictions; delete it to score again")
    return Predictions(
        test[0].model,
        seed,
        np.array([r.true_label for r in val]),
        np.array([r.prob for r in val]),
        np.array([r.true_label for r in test]),
        np.array([r.prob for r in test]),
        [r.file for r in test],
    )


def run_test_rows(run: Path, test: ImageSet) -> list[predictions.Prediction] | None:
    """The run's own scores of best.pt on the test split, which training wrote, if they are of
    this test split: so that the split is scored once."""
    path = run / "test_predictions.csv"
    if not path.exists():
        return None
    rows = predictions.read_predictions(path)
    scored = [r.file for r in rows if r.label != predictions.SKIPPED]
    return rows if scored == test.paths else None


def in_random_order(score: Callable[[torch.Tensor], np.ndarray], images: torch.Tensor):
    """score(images), computed on the images in a random order (torch's global generator)
    and returned in theirs. A split comes in folder order, one class after the other, so
    shuffling q within its batches would mostly swap q between patches of the same class."""
    order = torch.randperm(len(images))
    probs = np.empty(len(images))
    probs[order.numpy()] = score(images[order])
    return probs


def run_predictions(run: Path, model: str, seed: int, data: dict, device: str) -> list[Predictions]:
    """Predictions of best.pt on val and test, plus its test-time q ablations; cached as
    predictions*.csv in the run folder."""
    from lqer.device import pick_device
    from lqer.eval.evaluate import predict_proba
    from lqer.models.checkpoint import load_checkpoint

    files = variant_files(run, model)
    missing = [a for a, path in files.items() if not path.exists()]
    if missing:
        net, _, _ = load_checkpoint(run / "best.pt")
        dev = pick_device(device)
        net.to(dev)
        for ablation in missing:
            net.q_ablation = ablation or "none"
            torch.manual_seed(seed)  # the shuffle ablation's permutations
            name = variant_name(model, ablation)
            rows = []
            for split in ("val", "test"):
                part = data[split]
                scored = run_test_rows(run, part) if (ablation, split) == (None, "test") else None
                if scored is None:

                    def score(images, size=part.size):
                        return predict_proba(net, images, size, dev)

                    probs = (in_random_order(score, part.images) if ablation == "shuffle"
                             else score(part.images))  # fmt: skip
                    scored = predictions.prediction_rows(part, probs, name, split)
                rows += scored
            predictions.write_predictions(files[ablation], rows)
    return load_run(run, model, seed)

"""Pooling finished comparisons across folders for `results/collect.py`: one row per dataset
and model (summary.csv) and per model and its classical twin (twins.csv)."""

from __future__ import annotations

import dataclasses
import json
from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from lqer.config import load_config
from lqer.errors import LqerError
from lqer.eval import metrics
from lqer.experiments.runs import folder_runs
from lqer.experiments.statistics import contrasts, delong_rows, evaluate, rules, summarise
from lqer.experiments.variants import Predictions, table_predictions
from lqer.models import MODELS

SUMMARY_COLUMNS = (
    "dataset", "model", "seeds", "n_train", "n_test", "auc_mean", "auc_sd", "auc_low",
    "auc_high", "accuracy_mean", "f1_mean", "delong_p_vs_lqer",
)  # fmt: skip


def pooled_predictions(folders: Sequence[Path]) -> Iterator[tuple[dict, Predictions]]:
    """Every prediction the comparison folders' tables hold, with its folder's manifest; a
    seed becomes (folder name, seed), so that the runs of different folds stay apart."""
    for folder in map(Path, folders):
        manifest = json.loads((folder / "comparison.json").read_text())
        runs = folder_runs(folder, load_config(folder / "config.yaml"))
        for p in table_predictions(folder, runs):
            yield manifest, dataclasses.replace(p, seed=(folder.name, p.seed))


def summary_rows(dataset: str, folders: Sequence[Path]) -> list[dict]:
    """One row per model (and test-time variant) of `dataset`, pooling every run the
    comparison folders' tables hold (A-DSSS: one folder per fold, so folds x seeds).

    AUC: mean, sd and the 95% bootstrap interval of the mean over runs; accuracy and F1 at
    the threshold chosen on validation for the comparison's target sensitivity; the p value
    is Stouffer's pooling of the per-run paired DeLong tests against lqer
    (`lqer.eval.metrics.stouffer`).
    n_train and n_test: images of one run's training and test split, averaged over runs.
    """
    preds, n_train, settings = [], defaultdict(list), set()
    for manifest, p in pooled_predictions(folders):
        settings.add((manifest["target_sensitivity"], manifest["n_boot"]))
        preds.append(p)
        train = manifest["data"].get(str(p.seed[1]), {}).get("splits", {}).get("train", {})
        n_train[p.name] += [train["n"]] if "n" in train else []
    if len(settings) > 1:
        raise LqerError(f"{dataset}: its comparisons differ in target sensitivity or n_boot")
    if not preds:
        return []
    [(target, n_boot)] = settings
    rows, draws = evaluate(preds, target, n_boot, fixed=False)
    cells = {(r["model"], r["metric"]): r for r in summarise(rows, draws)}
    delong = contrasts(delong_rows(preds), draws, rules(target)[0])
    pooled = {c["model"]: c["p_pooled"] for c in delong}
    out = []
    for model in dict.fromkeys(p.name for p in preds):
        auc = cells[model, "auc"]
        n_test = np.mean([len(p.test_labels) for p in preds if p.name == model])
        out.append({
            "dataset": dataset, "model": model, "seeds": auc["n_seeds"],
            "n_train": round(np.mean(n_train[model])) if n_train[model] else "",
            "n_test": round(n_test),
            **{f"auc_{k}": round(auc[k], 4) for k in ("mean", "sd", "low", "high")},
            "accuracy_mean": round(cells[model, "accuracy"]["mean"], 4),
            "f1_mean": round(cells[model, "f1"]["mean"], 4),
            "delong_p_vs_lqer": float(f"{pooled[model]:.3g}") if model in pooled else "",
        })  # fmt: skip
    return out


def twin_rows(dataset: str, folders: Sequence[Path]) -> list[dict]:
    """Each model with a circuit against its classical twin (`ModelEntry.twin`): the paired
    DeLong test per run and pooled over runs (Stouffer), the direct test of whether the circuit
    does better than a classical layer of its size."""
    preds = [p for _, p in pooled_predictions(folders)]
    out = []
    for entry in (e for e in MODELS.values() if e.twin):
        pair = [p for p in preds if p.name in (entry.name, entry.twin)]
        rows = [r for r in delong_rows(pair, reference=entry.name) if r["model"] == entry.twin]
        if not rows:
            continue
        _, p_pooled = metrics.stouffer([r["z"] for r in rows])
        out.append({
            "dataset": dataset, "model": entry.name, "twin": entry.twin, "runs": len(rows),
            **{name: round(float(np.mean([r[k] for r in rows])), 4) for name, k in (
                ("auc_model", "auc_reference"), ("auc_twin", "auc_model"),
                ("auc_difference", "difference"))},
            # p < 0.05 says which differs, not which is better: count each way apart
            "runs_model_better": sum(r["p"] < 0.05 and r["difference"] > 0 for r in rows),
            "runs_twin_better": sum(r["p"] < 0.05 and r["difference"] < 0 for r in rows),
            "p_values": " ".join(f"{r['p']:.3g}" for r in rows),
            "p_pooled": float(f"{p_pooled:.3g}"),
        })  # fmt: skip
    return out

"""The statistics of a comparison: per-run metrics with bootstrap intervals at two decision
rules, their summary over seeds, paired DeLong tests against lqer and pooled contrasts."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from lqer.errors import LqerError
from lqer.eval import metrics
from lqer.experiments.variants import METRICS, REFERENCE, Predictions


def rules(target_sensitivity: float) -> tuple[str, str]:
    return f"chosen on validation for sensitivity >= {target_sensitivity:.2f}", "fixed at 0.5"


def evaluate(
    predictions: list[Predictions],
    target_sensitivity: float,
    n_boot: int,
    boot_seed: int = 0,
    fixed: bool = True,
) -> tuple[list[dict], dict]:
    """Per run and rule: threshold (from validation), metric values and bootstrap draws; the
    rule "fixed at 0.5" too unless `fixed` is False."""
    rows, draws = [], {}
    chosen, half = rules(target_sensitivity)
    for pred in predictions:
        val_threshold = metrics.threshold_for_sensitivity(
            pred.val_labels, pred.val_probs, target_sensitivity
        )
        for rule, threshold in ((chosen, val_threshold), (half, 0.5))[: 2 if fixed else 1]:
            scores = metrics.all_metrics(threshold)
            boot = metrics.bootstrap_draws(
                scores, pred.test_labels, pred.test_probs, n_boot, boot_seed
            )
            draws[pred.name, pred.seed, rule] = boot
            for metric in METRICS:
                value = float(scores[metric](pred.test_labels, pred.test_probs))
                low, high = metrics.percentile_interval(boot[metric])
                rows.append({
                    "model": pred.name, "seed": pred.seed, "rule": rule,
                    "threshold": threshold, "metric": metric,
                    "value": value, "low": low, "high": high,
                })  # fmt: skip
    return rows, draws


def summarise(rows: list[dict], draws: dict) -> list[dict]:
    """Mean and sd over seeds; the interval is that of the seed-mean over bootstrap resamples."""
    groups = defaultdict(list)
    for row in rows:
        groups[row["model"], row["rule"], row["metric"]].append(row)
    out = []
    for (model, rule, metric), members in groups.items():
        values = np.array([r["value"] for r in members])
        pooled = np.mean([draws[model, r["seed"], rule][metric] for r in members], axis=0)
        low, high = metrics.percentile_interval(pooled)
        out.append({
            "model": model, "rule": rule, "metric": metric, "n_seeds": len(members),
            "mean": float(np.mean(values)),
            "sd": float(np.std(values, ddof=1)) if len(values) > 1 else float("nan"),
            "low": low, "high": high,
        })  # fmt: skip
    return out


def delong_rows(predictions: list[Predictions], reference: str = REFERENCE) -> list[dict]:
    """Paired DeLong of the reference against every other model, seed by seed, on test cases
    matched by path."""
    by_seed = defaultdict(dict)
    for pred in predictions:
        by_seed[pred.seed][pred.name] = pred
    out = []
    for seed, preds in sorted(by_seed.items()):
        ref = preds.get(reference)
        if ref is None:
            continue
        ref_index = {p: i for i, p in enumerate(ref.test_paths)}
        for name, other in preds.items():
            if name == reference:
                continue
            pairs = [(ref_index[p], j) for j, p in enumerate(other.test_paths) if p in ref_index]
            if not len(pairs) == len(ref_index) == len(other.test_paths):
                raise LqerError(
                    f"seed {seed}: the test predictions of {name} and {reference} are of other "
                    f"files ({len(pairs)} shared of {len(ref_index)} and "
                    f"{len(other.test_paths)}); were they made on other data?"
                )
            i, j = map(np.array, zip(*pairs, strict=True))
            labels = ref.test_labels[i]
            result = metrics.delong_test(labels, ref.test_probs[i], other.test_probs[j])
            out.append({
                "seed": seed, "model": name, "n": len(pairs),
                "auc_reference": result.auc_a, "auc_model": result.auc_b,
                "difference": result.auc_a - result.auc_b,
                "diff_low": result.diff_low, "diff_high": result.diff_high,
                "z": result.z, "p": result.p,
            })  # fmt: skip
    return out


def contrasts(delong: list[dict], draws: dict, rule: str) -> list[dict]:
    """AUC(reference) - AUC(model), averaged over the seeds both finished, with the percentile
    interval of the same average over paired bootstrap resamples, and the pooled DeLong test."""
    by_model = defaultdict(list)
    for row in delong:
        by_model[row["model"]].append(row)
    out = []
    for model, rows in by_model.items():
        seeds = [r["seed"] for r in rows]
        diffs = np.mean(
            [draws[REFERENCE, s, rule]["auc"] - draws[model, s, rule]["auc"] for s in seeds],
            axis=0,
        )
        low, high = metrics.percentile_interval(diffs)
        z, p = metrics.stouffer([r["z"] for r in rows])
        out.append({
            "model": model, "n_seeds": len(rows),
            "auc_difference": float(np.mean([r["difference"] for r in rows])),
            "low": low, "high": high,
            "seeds_p_below_0.05": sum(r["p"] < 0.05 for r in rows),
            "p_values": " ".join(f"{r['p']:.3g}" for r in rows),
            "z_pooled": z, "p_pooled": p,
        })  # fmt: skip
    return out

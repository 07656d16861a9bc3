"""`lqer compare`: train models x seeds with one recipe on one dataset configuration, then
compare them on the test split with intervals and paired tests.

Honesty rules built in: the decision threshold is chosen on the validation split only (the
highest one that reaches the target sensitivity) and then applied to the test split; metrics
at 0.5 are reported too. Finished runs are reused, unfinished ones resumed, and a run that
fails is recorded and skipped, not fatal. The data is decoded once, and the test split scored
once: a run's own test_predictions.csv is its model's test predictions.

Layout of a comparison folder:
    comparison.json      what was asked for, data fingerprints, device, status of every run
    config.yaml          the shared base configuration
    runs/<model>-seed<k>/          each run (lqer.train.loop.fit) + predictions*.csv (val, test),
                                   one per variant: the model, and its q ablations if it has
                                   a circuit
    results.csv          per run, rule and metric: value and 95% bootstrap interval
    summary.csv          per model, rule and metric: mean, sd over seeds, 95% bootstrap interval
    delong.csv           paired DeLong test of `lqer` against every other model, per seed
    contrasts.csv        per model: AUC(lqer) - AUC(model), pooled over seeds, with interval
    results.md           the same as tables
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import platform
import traceback
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import yaml

from lqer.config import ExperimentConfig
from lqer.data.dataset import ImageSet, load_experiment
from lqer.errors import LqerError
from lqer.eval import metrics, predictions
from lqer.experiments.tables import markdown_table
from lqer.io import atomic_path, write_text
from lqer.models import MODELS

DEFAULT_MODELS = tuple(MODELS)
REFERENCE = "lqer"
Q_ABLATIONS = {  # test-time ablations of a trained circuit model, and what each one tests
    "zeros": "setting q to zero at test time",
    "shuffle": "shuffling q across the test batch",
}
METRICS = metrics.NAMES
IGNORED_KEYS = (  # may differ in a reused run without changing what it computes
    "out_dir", "train.progress", "train.threads", "train.devices", "train.compile",
    "train.channels_last",
)  # fmt: skip


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


def rules(target_sensitivity: float) -> tuple[str, str]:
    return f"chosen on validation for sensitivity >= {target_sensitivity:.2f}", "fixed at 0.5"


# ----------------------------------------------------------------------------- runs


def run_config(base: ExperimentConfig, model: str, seed: int, out: Path) -> ExperimentConfig:
    cfg = base.replace(
        model=base.model.replace(name=model),
        train=base.train.replace(seed=seed),
        out_dir=str(out / "runs" / f"{model}-seed{seed}"),
    )
    return cfg


def _comparable(values: dict) -> dict:
    values = json.loads(json.dumps(values))
    for key in IGNORED_KEYS:
        *parents, leaf = key.split(".")
        node = values
        for part in parents:
            node = node.get(part, {})
        node.pop(leaf, None)
    return values


def ensure_trained(cfg: ExperimentConfig, data: dict[str, ImageSet]) -> str:
    """Train the run on `data` unless it finished before; resume it if it stopped. Returns what
    happened."""
    from lqer.train.loop import fit

    run = Path(cfg.out_dir)
    if (run / "config.yaml").exists():
        saved = yaml.safe_load((run / "config.yaml").read_text())
        if _comparable(saved) != _comparable(cfg.to_dict()):
            raise LqerError(f"{run} holds a run with another configuration; move it away")
    if (run / "best.pt").exists() and (run / "test_predictions.csv").exists():
        return "reused"
    resume = (run / "last.pt").exists()
    fit(cfg, resume=resume, data=data)
    return "resumed" if resume else "trained"


def data_summary(data: dict) -> dict:
    """Size, positives, prevalence and a content hash of every split, and one hash of all.

    Hashes cover the files' bytes and labels, not their paths: a moved copy hashes the same.
    """
    out, overall = {}, hashlib.sha256()
    for split in sorted(data):
        part = data[split]
        entries = sorted(
            (hashlib.sha256(Path(p).read_bytes()).hexdigest(), int(y))
            for p, y in zip(part.paths, part.labels.tolist(), strict=True)
        )
        digest = hashlib.sha256("\n".join(f"{h},{y}" for h, y in entries).encode()).hexdigest()
        overall.update(f"{split}:{digest}\n".encode())
        positives = int(part.labels.sum())
        out[split] = {
            "n": len(part),
            "positives": positives,
            "prevalence": positives / max(1, len(part)),
            "sha256": digest,
        }
    return {"splits": out, "sha256": overall.hexdigest()}


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
                    probs = predict_proba(net, part.images, part.size, dev)
                    scored = predictions.prediction_rows(part, probs, name, split)
                rows += scored
            predictions.write_predictions(files[ablation], rows)
    return load_run(run, model, seed)


def train_all(
    base: ExperimentConfig,
    models: Sequence[str],
    seeds: Sequence[int],
    out: Path,
    device: str = "auto",
) -> tuple[list[Predictions], list[dict], dict]:
    """Train (or reuse) every run; a failure is recorded with its error and the rest go on."""
    predictions, status, data_info, decoded = [], [], {}, {}
    for seed in seeds:
        data = None
        for model in models:
            cfg = run_config(base, model, seed, out)
            run = Path(cfg.out_dir)
            record = {"model": model, "seed": seed, "run": str(run.relative_to(out))}
            try:
                if data is None:  # each file decoded once for all seeds, each seed's sets once
                    data = load_experiment(base.data, seed, decoded)
                    if "test" not in data:
                        raise LqerError("the data configuration gives no test images")
                    data_info[str(seed)] = data_summary(data)
                record["status"] = ensure_trained(cfg, data)
                predictions += run_predictions(run, model, seed, data, device)
            except Exception as e:  # noqa: BLE001 - reported in the results, never swallowed
                record.update(status="failed", error=f"{type(e).__name__}: {e}")
                run.mkdir(parents=True, exist_ok=True)
                write_text(run / "error.txt", traceback.format_exc())
                print(f"{model} seed {seed}: FAILED ({record['error']})")
            status.append(record)
    return predictions, status, data_info


# ----------------------------------------------------------------------------- statistics


def evaluate(
    predictions: list[Predictions], target_sensitivity: float, n_boot: int, boot_seed: int = 0
) -> tuple[list[dict], dict]:
    """Per run and rule: threshold (from validation), metric values and bootstrap draws."""
    rows, draws = [], {}
    chosen, half = rules(target_sensitivity)
    for pred in predictions:
        val_threshold = metrics.threshold_for_sensitivity(
            pred.val_labels, pred.val_probs, target_sensitivity
        )
        for rule, threshold in ((chosen, val_threshold), (half, 0.5)):
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


def delong_rows(predictions: list[Predictions]) -> list[dict]:
    """Paired DeLong of the reference against every other model, seed by seed, on test cases
    matched by path."""
    by_seed = defaultdict(dict)
    for pred in predictions:
        by_seed[pred.seed][pred.name] = pred
    out = []
    for seed, preds in sorted(by_seed.items()):
        ref = preds.get(REFERENCE)
        if ref is None:
            continue
        ref_index = {p: i for i, p in enumerate(ref.test_paths)}
        for name, other in preds.items():
            if name == REFERENCE:
                continue
            pairs = [(ref_index[p], j) for j, p in enumerate(other.test_paths) if p in ref_index]
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
    interval of the same average over paired bootstrap resamples."""
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
        out.append({
            "model": model, "n_seeds": len(rows),
            "auc_difference": float(np.mean([r["difference"] for r in rows])),
            "low": low, "high": high,
            "seeds_p_below_0.05": sum(r["p"] < 0.05 for r in rows),
            "p_values": " ".join(f"{r['p']:.3g}" for r in rows),
        })  # fmt: skip
    return out


# ----------------------------------------------------------------------------- output


def write_csv(path: Path, rows: list[dict]) -> None:
    with atomic_path(path) as tmp, tmp.open("w", newline="") as f:
        if rows:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)


def read_csv(path: Path) -> list[dict]:
    """Rows of one of the CSVs above, numbers parsed."""

    def parse(value: str):
        try:
            return float(value) if any(c in value for c in ".en") else int(value)
        except ValueError:
            return value

    with open(path, newline="") as f:
        return [{k: parse(v) for k, v in row.items()} for row in csv.DictReader(f)]


def fmt_cell(mean: float, sd: float, low: float, high: float) -> str:
    """`mean ± sd [low, high]`; "undefined" when some seed's value is (e.g. PPV with no
    positive calls)."""
    if np.isnan(mean):
        return "undefined"
    spread = "" if np.isnan(sd) else f" ± {sd:.3f}"
    interval = "" if np.isnan(low) else f" [{low:.3f}, {high:.3f}]"
    return f"{mean:.3f}{spread}{interval}"


def summary_table(summary: list[dict], rule: str) -> tuple[list[str], list[list]]:
    """Header and rows of the metrics under one rule: mean ± sd [95% bootstrap interval]."""
    cells = {(r["model"], r["rule"], r["metric"]): r for r in summary}
    rows = []
    for model in dict.fromkeys(r["model"] for r in summary):
        row = [cells.get((model, rule, m)) for m in METRICS]
        if row[0] is not None:
            text = [fmt_cell(c["mean"], c["sd"], c["low"], c["high"]) for c in row]
            rows.append([model, row[0]["n_seeds"], *text])
    return ["model", "seeds", *(m.upper() for m in METRICS)], rows


def contrast_table(contrast: list[dict]) -> tuple[list[str], list[list]]:
    """Header and rows of the paired DeLong comparison of the reference with each model."""
    header = [
        "model", "seeds", f"AUC({REFERENCE}) - AUC(model) [95% bootstrap]",
        "seeds with p < 0.05", "DeLong p per seed",
    ]  # fmt: skip
    rows = [
        [c["model"], c["n_seeds"], fmt_cell(c["auc_difference"], np.nan, c["low"], c["high"]),
         c["seeds_p_below_0.05"], c["p_values"]]
        for c in contrast
    ]  # fmt: skip
    return header, rows


def markdown_tables(summary: list[dict], contrast: list[dict]) -> str:
    """Metrics per rule and the DeLong comparison, for results.md."""
    lines = []
    for rule in dict.fromkeys(r["rule"] for r in summary):
        lines += [f"**Test split, threshold: {rule}**", ""]
        lines += [*markdown_table(*summary_table(summary, rule)), ""]
    if contrast:
        lines += [f"**Paired DeLong test, {REFERENCE} against each model (test split)**", ""]
        lines += [*markdown_table(*contrast_table(contrast)), ""]
    return "\n".join(lines)


def device_description(device: str = "auto") -> str:
    if device in ("auto", "cuda") and torch.cuda.is_available():
        return f"CUDA: {torch.cuda.get_device_name(0)}"
    return f"CPU: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


def compare(
    base: ExperimentConfig,
    out_dir: str | Path,
    models: Sequence[str] = DEFAULT_MODELS,
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    target_sensitivity: float = 0.90,
    n_boot: int = 2000,
) -> Path:
    """Run the comparison and write its tables; returns the comparison folder."""
    if not models or not seeds:
        raise LqerError("--models and --seeds must name at least one model and one seed")
    if not 0 < target_sensitivity <= 1:
        raise LqerError("--target-sensitivity must lie in (0, 1]")
    if not (base.data.test_split or base.data.split_file):
        raise LqerError("compare needs a test split: set data.test_split or data.split_file")
    if REFERENCE in models:
        models = [REFERENCE, *(m for m in models if m != REFERENCE)]
    out = Path(out_dir)
    base.save(out / "config.yaml")
    predictions, status, data_info = train_all(base, models, seeds, out, base.train.device)
    rows, draws = evaluate(predictions, target_sensitivity, n_boot)
    summary = summarise(rows, draws)
    delong = delong_rows(predictions)
    contrast = contrasts(delong, draws, rules(target_sensitivity)[0])
    manifest = {
        "models": list(models),
        "seeds": list(seeds),
        "target_sensitivity": target_sensitivity,
        "n_boot": n_boot,
        "rules": list(rules(target_sensitivity)),
        "test_split": base.data.split_file or base.data.test_split,
        "data": data_info,
        "device": device_description(base.train.device),
        "runs": status,
    }
    write_text(out / "comparison.json", json.dumps(manifest, indent=2) + "\n")
    write_csv(out / "results.csv", rows)
    write_csv(out / "summary.csv", summary)
    write_csv(out / "delong.csv", delong)
    write_csv(out / "contrasts.csv", contrast)
    failed = [r for r in status if r["status"] == "failed"]
    notes = [f"- FAILED: {r['model']} seed {r['seed']}: {r['error']}" for r in failed]
    write_text(out / "results.md", markdown_tables(summary, contrast) + "\n".join(notes))
    return out

"""`lqer compare`: train models x seeds with one recipe on one dataset configuration, then
compare them on the test split with intervals and paired tests.

Honesty rules built in: the decision threshold is chosen on the validation split only (the
highest one that reaches the target sensitivity) and then applied to the test split; metrics
at 0.5 are reported too. A run that fails is recorded and skipped, not fatal. The data is
decoded once, and only when a run needs it; the test split is scored once: a run's own
test_predictions.csv is its model's test predictions.

A finished run is its small files, not its checkpoint: it is reused when its config.yaml
matches and every variant's predictions file covers val and test, so a folder committed
without its *.pt files is reused on another machine. A run that stopped (last.pt) resumes.
The tables are built from every finished run in the folder that matches the base
configuration, not only those named in this call, so pieces run on different days merge.

Layout of a comparison folder:
    comparison.json      what this call asked for, data fingerprints, device, the status of
                         every run (asked or found) and which runs the tables hold
    config.yaml          the shared base configuration
    runs/<model>-seed<k>/          each run (lqer.train.loop.fit) + predictions*.csv (val, test),
                                   one per variant: the model, and its q ablations if it has
                                   a circuit
    results.csv          per run, rule and metric: value and 95% bootstrap interval
    summary.csv          per model, rule and metric: mean, sd over seeds, 95% bootstrap interval
    delong.csv           paired DeLong test of `lqer` against every other model, per seed
    contrasts.csv        per model: AUC(lqer) - AUC(model), pooled over seeds, with interval,
                         and one DeLong test pooled over seeds (Stouffer)
    results.md           the same as tables
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import json
import traceback
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
import yaml

from lqer.config import RESULT_NEUTRAL, DataConfig, ExperimentConfig, from_dict, load_config
from lqer.data.dataset import ImageSet, listed_sets, load_experiment
from lqer.device import cpu_name
from lqer.errors import LqerError
from lqer.eval import metrics, predictions
from lqer.experiments import provenance
from lqer.experiments.tables import markdown_table
from lqer.io import atomic_path, check_own_folder, claim_folder, locked, write_text
from lqer.models import MODELS
from lqer.train.run_folder import data_inputs

DEFAULT_MODELS = tuple(MODELS)
KIND = "compare"  # a comparison folder is marked as lqer compare's
ERROR = "error.txt"  # a failed run's traceback, in its folder
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
    for key in ("out_dir", *RESULT_NEUTRAL):
        *parents, leaf = key.split(".")
        node = values
        for part in parents:
            node = node.get(part, {})
        node.pop(leaf, None)
    return values


def _matches(saved: dict, cfg: ExperimentConfig) -> bool:
    """Whether a saved run used `cfg`. The saved file is read with today's defaults, so a run
    saved before a setting was added matches the setting's default."""
    try:
        saved = from_dict(saved).to_dict()
    except LqerError:  # a run of an lqer whose settings this one does not know
        return False
    return _comparable(saved) == _comparable(cfg.to_dict())


def _saved_config(folder: Path) -> dict | None:
    path = folder / "config.yaml"
    return yaml.safe_load(path.read_text()) if path.exists() else None


def missing_artifacts(run: Path, model: str) -> list[str]:
    """What the run lacks to count as finished: a predictions file per variant, each covering
    the validation and the test split. Empty: the run is reused without its checkpoint."""
    missing = []
    for path in variant_files(run, model).values():
        if not path.exists():
            missing.append(path.name)
            continue
        rows = predictions.read_predictions(path)
        splits = {r.split for r in rows if r.label != predictions.SKIPPED}
        missing += [f"{path.name}'s {s} rows" for s in ("val", "test") if s not in splits]
    return missing


def ensure_trained(cfg: ExperimentConfig, data: Callable[[], dict[str, ImageSet]]) -> str:
    """Reuse the run if it finished (its files suffice, no checkpoint needed) or trained
    (best.pt scores what is missing), resume it if it stopped, else train it on `data()`.
    Returns what happened."""
    from lqer.train.loop import fit

    run = Path(cfg.out_dir)
    saved = _saved_config(run)  # none: the run has not started
    resume = (run / "last.pt").exists()
    if saved is not None:
        if not _matches(saved, cfg):
            raise LqerError(f"{run} holds a run with another configuration; move it away")
        missing = missing_artifacts(run, cfg.model.name)
        if not missing or ((run / "best.pt").exists() and (run / "test_predictions.csv").exists()):
            return "reused"
        kept = (run / "test_metrics.json").exists() or any(run.glob("predictions*.csv"))
        if kept and not resume and not (run / "best.pt").exists():
            raise LqerError(
                f"{run}: its saved results lack {', '.join(missing)}, and it has no checkpoint "
                "to score them from; restore them, or delete the folder to train it again"
            )
    fit(cfg, resume=resume, data=data())
    return "resumed" if resume else "trained"


def folder_runs(out: Path, base: ExperimentConfig) -> list[dict]:
    """Every run folder of the comparison, in table order, with why it is left out of the
    tables (None: finished, with the base configuration)."""
    found = []
    for config in (out / "runs").glob("*/config.yaml"):
        run = config.parent
        record = {"model": "?", "seed": -1, "run": str(run.relative_to(out))}
        try:
            saved = yaml.safe_load(config.read_text())
            record.update(model=saved["model"]["name"], seed=int(saved["train"]["seed"]))
            expected = run_config(base, record["model"], record["seed"], out)
            if Path(expected.out_dir).name != run.name:
                reason = f"named other than {Path(expected.out_dir).name}"
            elif not _matches(saved, expected):
                reason = "another configuration"
            else:
                missing = missing_artifacts(run, record["model"])
                reason = f"unfinished: lacks {', '.join(missing)}" if missing else None
        except (LqerError, yaml.YAMLError, KeyError, TypeError, ValueError) as e:
            reason = f"unreadable: {type(e).__name__}: {e}"
        found.append({**record, "left_out": reason})
    rank = {m: i for i, m in enumerate(dict.fromkeys([REFERENCE, *MODELS]))}
    return sorted(found, key=lambda r: (r["seed"], rank.get(r["model"], len(rank)), r["model"]))


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


def seed_data(cfg: DataConfig, seed: int, decoded: dict) -> dict[str, ImageSet]:
    """One seed's sets, from the decode cache that the seeds share."""
    return load_experiment(cfg, seed, decoded)


def train_all(
    base: ExperimentConfig,
    models: Sequence[str],
    seeds: Sequence[int],
    out: Path,
    device: str = "auto",
) -> list[dict]:
    """Train, resume or reuse every asked run, and score what it lacks; a failure is recorded
    with its error (in the run's error.txt, which a rerun removes before it tries again) and
    the rest go on. Returns each run's record. Each run is locked while it is worked on: a
    piece running beside this one waits for it, then reuses it."""
    status, decoded = [], {}
    for seed in seeds:
        data = functools.cache(functools.partial(seed_data, base.data, seed, decoded))
        for model in models:
            cfg = run_config(base, model, seed, out)
            run = Path(cfg.out_dir)
            record = {"model": model, "seed": seed, "run": str(run.relative_to(out))}
            print(f"{model} seed {seed}: {run}")
            try:
                with locked(run, "--out", wait=True):
                    (run / ERROR).unlink(missing_ok=True)  # an earlier attempt's: try again
                    record["status"] = ensure_trained(cfg, data)
                    if missing_artifacts(run, model):
                        run_predictions(run, model, seed, data(), device)
            except Exception as e:  # noqa: BLE001 - reported in the results, never swallowed
                record.update(status="failed", error=f"{type(e).__name__}: {e}")
                write_text(run / ERROR, traceback.format_exc())
                print(f"{model} seed {seed}: FAILED ({record['error']})")
            status.append(record)
    return status


# ----------------------------------------------------------------------------- statistics


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
        "seeds with p < 0.05", "DeLong p per seed", "pooled p (Stouffer)",
    ]  # fmt: skip
    rows = [
        [c["model"], c["n_seeds"], fmt_cell(c["auc_difference"], np.nan, c["low"], c["high"]),
         c["seeds_p_below_0.05"], c["p_values"], f"{c.get('p_pooled', np.nan):.3g}"]
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
    return f"CPU: {cpu_name()}, {torch.get_num_threads()} threads"


def previous_manifest(out: Path, base: ExperimentConfig) -> dict:
    """The comparison.json of an earlier call with the same base configuration, if any: its
    data fingerprints and devices still describe the runs it made."""
    saved = _saved_config(out)
    path = out / "comparison.json"
    if saved is None or not path.exists() or not _matches(saved, base):
        return {}
    try:
        manifest = json.loads(path.read_text())
    except ValueError:
        raise LqerError(f"{path} is not readable JSON; move the folder away") from None
    return manifest if isinstance(manifest, dict) else {}


def is_comparison(folder: Path) -> bool:
    """A folder that an lqer older than the `.lqer-compare` marker wrote: its manifest."""
    try:
        manifest = json.loads((folder / "comparison.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and {"runs", "models", "seeds"} <= manifest.keys()


def check_options(
    base: ExperimentConfig, models: Sequence[str], seeds: Sequence[int],
    target_sensitivity: float, n_boot: int,
) -> None:  # fmt: skip
    """Every option, checked before anything is trained."""
    if not models or not seeds:
        raise LqerError("--models and --seeds must name at least one model and one seed")
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        raise LqerError(f"--models: unknown model {unknown[0]!r} (known: {', '.join(MODELS)})")
    if not 0 < target_sensitivity <= 1:
        raise LqerError("--target-sensitivity must lie in (0, 1]")
    if n_boot < 1:
        raise LqerError(f"--n-boot must be at least 1, got {n_boot}")
    if not (base.data.test_split or base.data.split_file):
        raise LqerError("compare needs a test split: set data.test_split or data.split_file")


def prepare(
    base: ExperimentConfig, out: Path, seeds: Sequence[int], digests: dict[str, str]
) -> dict[str, dict]:
    """Check the folder and the data of every seed, and claim the folder; nothing trains
    before this has passed. Returns the data fingerprints of the seeds asked or with runs."""
    check_own_folder(out, KIND, "--out", data_inputs(base), legacy=is_comparison)
    ours = (out / "config.yaml").exists() and bool(previous_manifest(out, base))
    legacy = previous_manifest(out, base).get("data", {}) if ours else {}
    run_seeds = {r["seed"] for r in folder_runs(out, base) if r["left_out"] is None
                 or r["left_out"].startswith("unfinished")}  # fmt: skip
    current = provenance.check(base.data, out, seeds, run_seeds, legacy, digests)
    with locked(out, "--out", wait=True):
        claim_folder(out, KIND)
        provenance.write(out, base.data, current)
    return current


def compare(
    base: ExperimentConfig,
    out_dir: str | Path,
    models: Sequence[str] = DEFAULT_MODELS,
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    target_sensitivity: float = 0.90,
    n_boot: int = 2000,
) -> Path:
    """Train or reuse the asked runs, then write the tables of every finished run in the
    folder that matches `base` (not only those asked now, so that pieces merge); returns the
    comparison folder. A run that failed is in comparison.json's `runs` with its error."""
    check_options(base, models, seeds, target_sensitivity, n_boot)
    if REFERENCE in models:
        models = [REFERENCE, *(m for m in models if m != REFERENCE)]
    out = Path(out_dir)
    data_info = prepare(base, out, seeds, {})
    # A manifest of other settings is not ours to merge. Ours is read after training, since a
    # piece running beside this one may have written it meanwhile.
    ours = not (out / "comparison.json").exists() or bool(previous_manifest(out, base))
    base.save(out / "config.yaml")
    status = train_all(base, models, seeds, out, base.train.device)
    with locked(out, "--out", wait=True):  # pieces side by side write their tables in turn
        write_tables(base, out, models, seeds, target_sensitivity, n_boot, status, data_info,
                     ours)  # fmt: skip
    return out


def write_tables(
    base: ExperimentConfig, out: Path, models: Sequence[str], seeds: Sequence[int],
    target_sensitivity: float, n_boot: int, status: list[dict], data_info: dict, ours: bool,
) -> None:  # fmt: skip
    """The tables and comparison.json of every finished run in `out` with `base`'s settings."""
    before = previous_manifest(out, base) if ours else {}
    runs = folder_runs(out, base)
    predictions = table_predictions(out, runs)
    rows, draws = evaluate(predictions, target_sensitivity, n_boot)
    summary = summarise(rows, draws)
    delong = delong_rows(predictions)
    contrast = contrasts(delong, draws, rules(target_sensitivity)[0])
    data_info = {**before.get("data", {}), **data_info}
    device = device_description(base.train.device)
    trained = any(r["status"] in ("trained", "resumed") for r in status)
    devices = [*before.get("devices", []), *([device] if trained or not before else [])]
    manifest = {
        "models": list(models),
        "seeds": list(seeds),
        "target_sensitivity": target_sensitivity,
        "n_boot": n_boot,
        "rules": list(rules(target_sensitivity)),
        "test_split": base.data.split_file or base.data.test_split,
        "data": dict(sorted(data_info.items(), key=lambda item: int(item[0]))),
        "device": device,
        "devices": list(dict.fromkeys(devices)),
        "tables": {
            "models": list(dict.fromkeys(r["model"] for r in runs if r["left_out"] is None)),
            "seeds": sorted({r["seed"] for r in runs if r["left_out"] is None}),
        },
        "runs": run_records(status, runs, device, before.get("runs", [])),
    }
    write_text(out / "comparison.json", json.dumps(manifest, indent=2) + "\n")
    write_csv(out / "results.csv", rows)
    write_csv(out / "summary.csv", summary)
    write_csv(out / "delong.csv", delong)
    write_csv(out / "contrasts.csv", contrast)
    failed = [r for r in status if r["status"] == "failed"]
    notes = [f"- FAILED: {r['model']} seed {r['seed']}: {r['error']}" for r in failed]
    write_text(out / "results.md", markdown_tables(summary, contrast) + "\n".join(notes))


def failures(out: Path) -> list[dict]:
    """The runs that the last call on `out` asked for and that failed."""
    runs = json.loads((out / "comparison.json").read_text())["runs"]
    return [r for r in runs if r.get("asked") and r["status"] == "failed"]


def run_records(
    status: list[dict], runs: list[dict], device: str, before: list[dict]
) -> list[dict]:
    """The asked runs' records, then those of the runs found in the folder; each says whether
    it was asked now, whether the tables hold it, and the device that trained it where known
    (this call's, or as an earlier call's records said)."""
    held = {(r["model"], r["seed"]) for r in runs if r["left_out"] is None}
    devices = {(r["model"], r["seed"]): r["device"] for r in before if "device" in r}
    for r in status:
        if r["status"] in ("trained", "resumed"):
            devices[(r["model"], r["seed"])] = device

    def trained_on(r: dict) -> dict:
        key = (r["model"], r["seed"])
        return {"device": devices[key]} if key in devices else {}

    records = [{**r, **trained_on(r), "asked": True, "in_tables": (r["model"], r["seed"]) in held}
               for r in status]  # fmt: skip
    asked = {(r["model"], r["seed"]) for r in status}
    for r in runs:
        if (r["model"], r["seed"]) not in asked:
            found = {"status": "reused"} if r["left_out"] is None else {
                "status": "left out", "reason": r["left_out"]}  # fmt: skip
            records.append({"model": r["model"], "seed": r["seed"], "run": r["run"], **found,
                            **trained_on(r), "asked": False,
                            "in_tables": r["left_out"] is None})  # fmt: skip
    return records


def compare_folds(
    base: ExperimentConfig,
    out_dir: str | Path,
    folds: Sequence[int],
    models: Sequence[str] = DEFAULT_MODELS,
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    target_sensitivity: float = 0.90,
    n_boot: int = 2000,
) -> list[Path]:
    """One comparison per fold k, in `out_dir`/fold<k> with data.fold=k (A-DSSS's folds).
    Every fold's folder and data is checked before any fold trains."""
    if not folds:
        raise LqerError("--folds must name at least one fold")
    jobs = [(base.replace(data=base.data.replace(fold=k)), Path(out_dir) / f"fold{k}")
            for k in dict.fromkeys(folds)]  # fmt: skip
    for cfg, out in jobs:
        check_options(cfg, models, seeds, target_sensitivity, n_boot)
        check_own_folder(out, KIND, "--out", data_inputs(cfg), legacy=is_comparison)
        for seed in seeds:
            listed_sets(cfg.data, seed)  # a missing fold or a one-class split fails here
    options = dict(models=models, seeds=seeds, target_sensitivity=target_sensitivity,
                   n_boot=n_boot)  # fmt: skip
    return [compare(cfg, out, **options) for cfg, out in jobs]


# ----------------------------------------------------------------------------- results/summary.csv

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

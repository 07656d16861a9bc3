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

import json
from collections.abc import Sequence
from pathlib import Path

import torch

from lqer.config import ExperimentConfig
from lqer.data.dataset import listed_sets
from lqer.device import cpu_name
from lqer.errors import LqerError
from lqer.experiments import provenance
from lqer.experiments.runs import KIND, _matches, _saved_config, folder_runs, train_all
from lqer.experiments.statistics import contrasts, delong_rows, evaluate, rules, summarise
from lqer.experiments.tables import markdown_tables
from lqer.experiments.variants import DEFAULT_MODELS, REFERENCE, table_predictions
from lqer.io import check_own_folder, claim_folder, locked, write_csv, write_text
from lqer.models import MODELS
from lqer.train.run_folder import data_inputs


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
        raise LqerError("`models` and `seeds` must name at least one model and one seed")
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        raise LqerError(f"`models`: unknown model {unknown[0]!r} (known: {', '.join(MODELS)})")
    if not 0 < target_sensitivity <= 1:
        raise LqerError("`target_sensitivity` must lie in (0, 1]")
    if n_boot < 1:
        raise LqerError(f"`n_boot` must be at least 1, got {n_boot}")
    if not (base.data.test_split or base.data.split_file):
        raise LqerError("compare needs a test split: set data.test_split or data.split_file")


def prepare(
    base: ExperimentConfig, out: Path, seeds: Sequence[int], digests: dict[str, str]
) -> dict[str, dict]:
    """Check the folder and the data of every seed, and claim the folder; nothing trains
    before this has passed. Returns the data fingerprints of the seeds asked or with runs."""
    check_own_folder(out, KIND, "`out`", data_inputs(base), legacy=is_comparison)
    ours = (out / "config.yaml").exists() and bool(previous_manifest(out, base))
    legacy = previous_manifest(out, base).get("data", {}) if ours else {}
    run_seeds = {r["seed"] for r in folder_runs(out, base) if r["left_out"] is None
                 or r["left_out"].startswith("unfinished")}  # fmt: skip
    current = provenance.check(base.data, out, seeds, run_seeds, legacy, digests)
    with locked(out, "`out`", wait=True):
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
    with locked(out, "`out`", wait=True):  # pieces side by side write their tables in turn
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
        raise LqerError("`folds` must name at least one fold")
    jobs = [(base.replace(data=base.data.replace(fold=k)), Path(out_dir) / f"fold{k}")
            for k in dict.fromkeys(folds)]  # fmt: skip
    for cfg, out in jobs:
        check_options(cfg, models, seeds, target_sensitivity, n_boot)
        check_own_folder(out, KIND, "`out`", data_inputs(cfg), legacy=is_comparison)
        for seed in seeds:
            listed_sets(cfg.data, seed)  # a missing fold or a one-class split fails here
    options = dict(models=models, seeds=seeds, target_sensitivity=target_sensitivity,
                   n_boot=n_boot)  # fmt: skip
    return [compare(cfg, out, **options) for cfg, out in jobs]

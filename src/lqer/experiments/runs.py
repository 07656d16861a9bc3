"""The runs of a comparison: their configurations, whether a finished run can be reused (its
small files and a matching config.yaml), and training the ones that are missing."""

from __future__ import annotations

import functools
import json
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

import yaml

from lqer.config import RESULT_NEUTRAL, DataConfig, ExperimentConfig, from_dict
from lqer.data.dataset import ImageSet, load_experiment
from lqer.errors import LqerError
from lqer.eval import predictions
from lqer.experiments.variants import REFERENCE, run_predictions, variant_files
from lqer.io import locked, write_text
from lqer.logs import logger
from lqer.models import MODELS

KIND = "compare"  # a comparison folder is marked as lqer compare's

ERROR = "error.txt"  # a failed run's traceback, in its folder


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
    status, decoded, count = [], {}, len(seeds) * len(models)
    for seed in seeds:
        data = functools.cache(functools.partial(seed_data, base.data, seed, decoded))
        for model in models:
            cfg = run_config(base, model, seed, out)
            run = Path(cfg.out_dir)
            record = {"model": model, "seed": seed, "run": str(run.relative_to(out))}
            logger.info(f"run {len(status) + 1} of {count}: {model}, seed {seed}, in {run}")
            try:
                with locked(run, "`out`", wait=True):
                    (run / ERROR).unlink(missing_ok=True)  # an earlier attempt's: try again
                    record["status"] = ensure_trained(cfg, data)
                    if missing_artifacts(run, model):
                        run_predictions(run, model, seed, data(), device)
                logger.info(f"{model} seed {seed}: {record['status']}")
            except Exception as e:  # noqa: BLE001 - reported in the results, never swallowed
                record.update(status="failed", error=f"{type(e).__name__}: {e}")
                write_text(run / ERROR, traceback.format_exc())
                logger.info(f"{model} seed {seed}: FAILED ({record['error']})")
            status.append(record)
    return status

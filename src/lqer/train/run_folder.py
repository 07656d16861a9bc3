"""A run folder: what lqer writes there, how it recognises one, and when it may reuse one.

A new run starts only in a new or empty folder and marks it before writing anything else, so
that a folder left by a run killed before its first checkpoint is recognised, not reused
blindly. A resumed run must describe the run that was started: only the settings in
`RESUMABLE` may change.
"""

from __future__ import annotations

import csv
from pathlib import Path

from lqer import io
from lqer.config import RESUMABLE, ExperimentConfig, from_dict
from lqer.data.dataset import ImageSet
from lqer.errors import LqerError
from lqer.io import atomic_path, check_own_folder, claim_folder, marker, remove_stale_temporaries
from lqer.logs import logger
from lqer.models.checkpoint import read_checkpoint
from lqer.sections import apply_overrides, changed_keys

KIND = "run"
MARKER = marker(KIND)


def check_new(out: Path, inputs: dict[str, str | None] | None = None) -> None:
    """Say now, before any data is read, why `out` cannot take a new run; `inputs` name the
    data it reads (`data_inputs`)."""
    check_own_folder(out, KIND, "`out`", inputs or {})
    if (out / "last.pt").exists():
        raise LqerError(f"{out} already holds a run; use `resume` or another `out`")
    if (out / MARKER).exists():
        if (out / "best.pt").exists():
            raise LqerError(
                f"{out} holds a run that was stopped during its first epoch (best.pt but no "
                "last.pt); delete that folder or choose another `out`"
            )
        return  # stopped before it saved anything: only lqer's own small files are there


def data_inputs(cfg: ExperimentConfig) -> dict[str, str | None]:
    """What a run of `cfg` reads, which its output may not be, hold or lie inside."""
    return {"data.root": cfg.data.root, "data.split_file": cfg.data.split_file}


def locked(out: Path):
    """The run folder, made if new and locked for the life of the run (`lqer.io.locked`)."""
    return io.locked(out, "`out`")


def claim(out: Path) -> None:
    """Mark `out` as a run folder before anything else is written there."""
    claim_folder(out, KIND)


def open_for_resume(out: Path, cfg: ExperimentConfig) -> dict:
    """The checkpoint to resume from, once the folder is cleaned and `cfg` checked against it."""
    last = _last_checkpoint(out)
    removed = remove_stale_temporaries(out)
    if removed:
        logger.info(
            f"removed {len(removed)} temporary file(s) left by an interrupted write in {out}"
        )
    saved = read_checkpoint(last)
    check_resume(out, saved, cfg)
    return saved


def check_resume(out: Path, saved: dict, cfg: ExperimentConfig) -> None:
    """Refuse a resume whose configuration differs from the run's beyond `RESUMABLE`."""
    changed = [k for k in changed_keys(from_dict(saved["config"]), cfg) if k not in RESUMABLE]
    changed = [k for k in changed if k != "out_dir"]  # the same folder, however it is spelt
    if changed:
        raise LqerError(
            f"`resume`: {out} was trained with other settings ({', '.join(changed)}); "
            f"a resumed run may change only {', '.join(RESUMABLE)}"
        )
    done = saved["epoch"]
    if cfg.train.epochs <= done:
        raise LqerError(
            f"`resume`: {out} has already trained {done} epoch(s); "
            f"ask for more: `epochs` above {done}"
        )


def resumed_config(out: Path, overrides: list[str]) -> ExperimentConfig:
    """The configuration a run in `out` was trained with, plus `overrides` (e.g. more epochs),
    so that resuming needs no repetition of the original options."""
    saved = read_checkpoint(_last_checkpoint(out))
    cfg = apply_overrides(from_dict(saved["config"]), overrides)
    cfg.out_dir = str(out)
    return cfg


def _last_checkpoint(out: Path) -> Path:
    if not (out / "last.pt").is_file():
        raise LqerError(f"`resume`: {out} holds no last.pt to resume from")
    return out / "last.pt"


def write_skipped(path: Path, data: dict[str, ImageSet]) -> None:
    """The files --skip-bad left out, per split, so that nobody has to guess which."""
    rows = [(name, p, why) for name, part in data.items() for p, why in part.bad]
    if rows:
        with atomic_path(path) as tmp, tmp.open("w", newline="") as f:
            csv.writer(f).writerows([("split", "path", "reason"), *rows])

"""Which data a comparison's runs were trained on, so that a reused run is never mixed with
runs of other data.

Before any training, `lqer compare` fingerprints every seed's splits as they are now
(`lqer.data.dataset.fingerprint`: the files' bytes and labels, not their paths) and holds
them against what it recorded when it first trained that seed's runs with the same data
settings: `fingerprints.json`, or, in a comparison made before that file existed, the `data`
of its comparison.json. A seed whose runs were trained on other data stops the comparison,
naming the splits that changed, before anything is trained.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable
from pathlib import Path

from lqer.config import DataConfig
from lqer.data.dataset import fingerprint, listed_sets
from lqer.errors import LqerError, LqerWarning
from lqer.io import write_text

FILE = "fingerprints.json"


def key(data: DataConfig) -> str:
    """The data settings a record belongs to: runs with other settings are other runs."""
    return json.dumps(data.model_dump(), sort_keys=True)


def recorded(out: Path, data: DataConfig, legacy: dict) -> dict[str, dict]:
    """Seed -> the fingerprint recorded for `data`; `legacy` is an older comparison.json's
    `data`, read only where its configuration matches."""
    try:
        records = json.loads((out / FILE).read_text())
    except (OSError, ValueError):
        records = {}
    ours = records.get(key(data), {}) if isinstance(records, dict) else {}
    return {**legacy, **ours}


def check(
    data: DataConfig,
    out: Path,
    seeds: Iterable[int],
    run_seeds: set[int],
    legacy: dict,
    digests: dict[str, str],
) -> dict[str, dict]:
    """The fingerprint of every seed asked for or with runs (`run_seeds`) in `out`; raises
    if a seed with runs was recorded with other data. `digests` caches file hashes."""
    record = recorded(out, data, legacy)
    current = {}
    for seed in sorted(set(seeds) | run_seeds):
        now = fingerprint(listed_sets(data, seed), digests)
        then = record.get(str(seed))
        if seed in run_seeds and then is None:
            warnings.warn(
                f"{out}: no record of the data its seed-{seed} runs were trained on (made by an "
                "older lqer?); they are taken to match the data as it is now",
                LqerWarning,
                stacklevel=2,
            )
        elif seed in run_seeds and then["sha256"] != now["sha256"]:
            before = {name: split.get("sha256") for name, split in then["splits"].items()}
            changed = [name for name, split in now["splits"].items()
                       if before.get(name) != split["sha256"]]  # fmt: skip
            raise LqerError(
                f"{out}: its seed-{seed} runs were trained on other data than {data.root} "
                f"holds now (the {' and '.join(changed) or 'split'} split changed); compare into "
                f"another `out`, or move {out}/runs/*-seed{seed} away to train them again"
            )
        current[str(seed)] = now
    return current


def write(out: Path, data: DataConfig, current: dict[str, dict]) -> None:
    """Add `current` to the record; the caller holds the comparison folder's lock."""
    try:
        records = json.loads((out / FILE).read_text())
    except (OSError, ValueError):
        records = {}
    records = records if isinstance(records, dict) else {}
    records[key(data)] = {**records.get(key(data), {}), **current}
    write_text(out / FILE, json.dumps(records, indent=1) + "\n")

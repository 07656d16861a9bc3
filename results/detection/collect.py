"""Issue 22's comparison on ARCADE val/ (200 frames, 406 stenoses), rebuilt from the runs.

For each finished run, its candidates on the val frames: a detector's own (results/detection/
runs/*, `lqer detector train`), or the window classifier's from a dense scan at stride 0.5
with windows of 64, 96, 128 and 192 px (results/detection/window/runs/*, `lqer compare` on
ARCADE patches), timed on this CPU. They
are kept in candidates/<run>.csv.gz, so the tables can be rebuilt without checkpoints. Every
approach is scored the same way (`lqer.eval.detection`): FROC sensitivity at 0.25-8 false
positives per frame, AP50 and AP (pycocotools), and the challenge score at the threshold that
makes at most 1 false positive per frame on val (val serves both to pick that threshold and to
report, as the issue allows; the FROC points and AP need no threshold). Each circuit model is
paired with its twin of the same seed: the difference of their sensitivities at 1 FP per frame,
with a 95% bootstrap interval over frames.

    python results/detection/collect.py            # from the repository root
"""

from __future__ import annotations

import csv
import gzip
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from lqer.data.annotations import Detection
from lqer.data.frame_sets import load_split
from lqer.detection_config import FramesConfig
from lqer.device import cpu_name
from lqer.eval.dense import DenseScanner
from lqer.eval.detection import detection_summary, froc, operating_threshold, sensitivity_at
from lqer.eval.scan import ScanConfig
from lqer.models.checkpoint import load_checkpoint
from lqer.models.detector import detect_frame, load_detector

HERE = Path(__file__).resolve().parent
ARCADE = HERE.parents[2] / "shared" / "datasets" / "ARCADE-stenosis"
# ARCADE's positive patches are twice a stenosis box (median box 56x53 px in train)
WINDOWS = ScanConfig(sizes=(64, 96, 128, 192), stride=0.5, dense=True)
SPEEDS = HERE / "candidates" / "frames_per_s.json"  # as measured when the candidates were made
TWINS = {
    "fcos-lqer": "fcos-classical",
    "fcos-lqer-lr1e-4": "fcos-classical-lr1e-4",
    "window-lqer": "window-resnet18",
    "window-mined-lqer": "window-mined-resnet18",
}


def runs() -> list[tuple[str, str, int, Path]]:
    """(approach, model, seed, best.pt) of every finished run (its test split scored)."""
    found = []
    for done in sorted((HERE / "runs").glob("fcos-*-seed*/test_metrics.json")):
        head, seed = done.parent.name.removeprefix("fcos-").rsplit("-seed", 1)
        found.append(("detector", f"fcos-{head}", int(seed), done.parent / "best.pt"))
    for done in sorted(HERE.glob("window*/runs/*-seed*/test_metrics.json")):
        model, seed = done.parent.name.rsplit("-seed", 1)
        kind = done.parents[2].name.removesuffix(f"-{model}")  # window or window-mined
        found.append((kind, f"{kind}-{model}", int(seed), done.parent / "best.pt"))
    return found


def candidates(kind: str, best: Path, frames: dict) -> tuple[dict, float]:
    """Candidates per val frame in frame pixels, and frames per second of producing them."""
    if kind == "detector":  # else a window classifier
        model, cfg, _ = load_detector(best)
        scan = lambda frame: detect_frame(model, frame, cfg)  # noqa: E731
    else:
        model, cfg, _ = load_checkpoint(best)
        dense = DenseScanner(model, cfg.data.image_size, WINDOWS, 1)
        scan = lambda frame: dense(frame)[1]  # noqa: E731
    found, started = {}, time.perf_counter()
    for key, frame in frames.items():
        found[key] = scan(frame)
    return found, len(frames) / (time.perf_counter() - started)


def save(path: Path, found: dict) -> None:
    with gzip.open(path, "wt", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["frame", "x", "y", "w", "h", "score"])
        for key, ds in found.items():
            writer.writerows([key, d.x, d.y, d.w, d.h, d.score] for d in ds)


def load(path: Path, keys) -> dict:
    found = {key: [] for key in keys}
    with gzip.open(path, "rt", newline="") as f:
        for row in csv.DictReader(f):
            found[row["frame"]].append(Detection(int(row["x"]), int(row["y"]), int(row["w"]),
                                                 int(row["h"]), float(row["score"])))  # fmt: skip
    return found


def at_one(found: dict, truth: dict) -> float:
    return sensitivity_at(froc(found, truth), (1.0,))[1.0]


def paired(a: dict, b: dict, truth: dict, n_boot: int = 500, seed: int = 0) -> tuple:
    """Sensitivity at 1 FP/frame of a minus b, and its 95% bootstrap interval over frames."""
    keys = list(truth)
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(n_boot):
        pick = [keys[i] for i in rng.integers(0, len(keys), len(keys))]
        sample = {f"{k}#{n}": truth[k] for n, k in enumerate(pick)}
        ca = {f"{k}#{n}": a[k] for n, k in enumerate(pick)}
        cb = {f"{k}#{n}": b[k] for n, k in enumerate(pick)}
        diffs.append(at_one(ca, sample) - at_one(cb, sample))
    low, high = np.percentile(diffs, [2.5, 97.5])
    return at_one(a, truth) - at_one(b, truth), float(low), float(high)


def earlier_pairs() -> dict:
    """The bootstrap rows pairs.csv already holds (minutes each), by (model, twin, seed)."""
    if not (HERE / "pairs.csv").exists():
        return {}
    with open(HERE / "pairs.csv", newline="") as f:
        return {(r["model"], r["twin"], int(r["seed"])): r for r in csv.DictReader(f)}


def main() -> None:
    torch.set_num_threads(2)
    cfg = FramesConfig(root=str(ARCADE), input_size=256)
    val = load_split(cfg, "val")  # for the truth; frames are read again at full size below
    from lqer.data.frames import list_frames, read_frames

    frames = dict(read_frames(list_frames(ARCADE / "val" / "images")))
    frames = {ref.id: image for ref, image in frames.items() if ref.id in val.truth}
    (HERE / "candidates").mkdir(exist_ok=True)
    rows, found_by_run = [], {}
    speeds = json.loads(SPEEDS.read_text()) if SPEEDS.exists() else {}
    for kind, model, seed, best in runs():
        path = HERE / "candidates" / f"{model}-seed{seed}.csv.gz"
        if path.exists():
            found, fps = load(path, val.truth), speeds.get(path.name)
        else:
            found, fps = candidates(kind, best, frames)
            save(path, found)
            speeds[path.name] = round(fps, 3)
            SPEEDS.write_text(json.dumps(speeds, indent=1, sort_keys=True) + "\n")
        found_by_run[model, seed] = found
        threshold = operating_threshold(froc(found, val.truth), fp_rate=1.0) or 1.0
        summary = detection_summary(found, val.truth, threshold)
        rows.append({"approach": kind, "model": model, "seed": seed, "threshold": threshold,
                     **{f"sens@{k}": v for k, v in summary["froc"].items()},
                     "ap50": summary["ap50"], "ap": summary["ap"],
                     "challenge": summary["challenge_score"],
                     "frames_per_s": round(fps, 2) if fps else ""})  # fmt: skip
        print(rows[-1], file=sys.stderr)
    with open(HERE / "summary.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    pairs, known = [], earlier_pairs()
    for (model, seed), found in found_by_run.items():
        twin = TWINS.get(model)
        if twin and (twin, seed) in found_by_run:
            if (model, twin, seed) in known:  # candidates never change once saved
                pairs.append(known[model, twin, seed])
                continue
            diff, low, high = paired(found, found_by_run[twin, seed], val.truth, seed=seed)
            pairs.append({"model": model, "twin": twin, "seed": seed, "difference": diff,
                          "low": low, "high": high})  # fmt: skip
    with open(HERE / "pairs.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, ["model", "twin", "seed", "difference", "low", "high"])
        writer.writeheader()
        writer.writerows(pairs)
    print(f"CPU {cpu_name()}; {len(rows)} runs; {len(pairs)} pairs", file=sys.stderr)


if __name__ == "__main__":
    main()

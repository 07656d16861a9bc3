"""Every mistake a user can make, through the real `lqer` command in a subprocess: one clear
line on stderr, exit code 2, no traceback, nothing deleted or half-written.

Each case lists its command (with {placeholders} for the paths below) and a piece of the
message it must print. Before and after each command every file under the case's folder is
hashed: none may vanish or change, and no temporary file may be left.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from conftest import make_tiny_dataset
from test_train import tiny_config

from lqer.train import fit


def lqer_command() -> list[str]:
    """The console script installed beside this Python, as a user runs it."""
    script = Path(sys.executable).with_name("lqer")
    return [str(script)] if script.exists() else [sys.executable, "-m", "lqer"]


def run_lqer(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}  # typer's usage box: one message per line
    return subprocess.run(
        [*lqer_command(), *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300
    )


@dataclass
class Paths:
    tmp: Path  # this case's own folder
    data: Path  # a tiny {train,validation}/{positive,negative} tree
    run: Path  # a finished 1-epoch run of lqer on `data`
    frames: Path  # a copy of the ADSD sample: images/ and annotations/

    def format(self, text: str) -> str:
        return text.format(tmp=self.tmp, data=self.data, run=self.run, frames=self.frames)


@dataclass
class Case:
    id: str
    args: str
    says: str  # a piece of the error message
    setup: Callable[[Paths], None] | None = None
    usage: bool = False  # typer's own usage message, framed over several lines


def write(path: Path, text: str | bytes) -> Callable[[Paths], None]:
    def setup(p: Paths) -> None:
        target = Path(p.format(str(path)))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(text if isinstance(text, bytes) else p.format(text).encode())

    return setup


def copy_run(p: Paths) -> None:
    shutil.copytree(p.run, p.tmp / "run")


def half_run(p: Paths) -> None:
    """A run folder as a kill during the first epoch leaves it: best.pt, no last.pt."""
    (p.tmp / "run").mkdir()
    for name in (".lqer-run", "config.yaml", "best.pt"):
        shutil.copy(p.run / name, p.tmp / "run" / name)


def marker_only(p: Paths) -> None:
    (p.tmp / "run").mkdir()
    shutil.copy(p.run / ".lqer-run", p.tmp / "run" / ".lqer-run")


def checkpoint_without_model(p: Paths) -> None:
    torch.save({"format": "lqer-checkpoint", "version": 1, "config": {}}, p.tmp / "c.pt")


SPLIT = "path,label,split\n{data}/train/positive/000.png,1,train\n"
TRAIN = "train --data {data} --out {tmp}/new --image-size 16 --set train.progress=false"
PATCHES = "data make-patches {frames}/images --annotations {frames}/annotations"
PREDICT = "predict {data}/validation --checkpoint {run}/best.pt"

CASES = [
    # 1. usage errors: typer's message, exit 2
    Case("no-arguments", "", "Usage", usage=True),
    Case("unknown-option", "train --bogus", "No such option", usage=True),
    Case("not-an-integer", "train --epochs abc", "--epochs", usage=True),
    Case("missing-option", "evaluate", "Missing option", usage=True),
    # 2. no data lost
    Case("patches-out-is-frames", f"{PATCHES} --out {{frames}}/images --overwrite", "--out"),
    Case("patches-out-holds-input", f"{PATCHES} --out {{frames}} --overwrite", "--out"),
    Case("patches-out-inside-input", f"{PATCHES} --out {{frames}}/images/p --overwrite", "--out"),
    Case(
        "patches-overwrite-foreign",
        f"{PATCHES} --out {{tmp}}/mine --overwrite",
        "make-patches",
        write(Path("{tmp}/mine/notes.txt"), "my notes"),
    ),
    Case(
        "train-out-foreign-folder",
        TRAIN.replace("{tmp}/new", "{tmp}/work"),
        "not an lqer run folder",
        write(Path("{tmp}/work/config.yaml"), "mine: 1\n"),
    ),
    Case("train-out-holds-run", TRAIN.replace("{tmp}/new", "{tmp}/run"), "--resume", copy_run),
    Case("resume-other-data", "train --out {tmp}/run --resume --data {tmp}", "data.root", copy_run),
    Case(
        "resume-other-size",
        "train --out {tmp}/run --resume --image-size 24",
        "data.image_size",
        copy_run,
    ),
    Case("resume-other-seed", "train --out {tmp}/run --resume --seed 5", "train.seed", copy_run),
    Case(
        "resume-other-lr",
        "train --out {tmp}/run --resume --set train.lr_head=0.5",
        "train.lr_head",
        copy_run,
    ),
    Case(
        "resume-other-model",
        "train --out {tmp}/run --resume --model resnet18",
        "model.name",
        copy_run,
    ),
    Case(
        "resume-nothing-to-do",
        "train --out {tmp}/run --resume --epochs 1",
        "already trained",
        copy_run,
    ),
    Case(
        "resume-without-last",
        "train --out {tmp}/run --resume --epochs 3",
        "no last.pt",
        marker_only,
    ),
    Case("crash-in-first-epoch", TRAIN.replace("{tmp}/new", "{tmp}/run"), "first epoch", half_run),
    # 3. no silent wrong result
    Case("zero-epochs", f"{TRAIN} --epochs 0", "train.epochs"),
    Case("negative-epochs", f"{TRAIN} --epochs -1", "train.epochs"),
    Case("negative-lr", f"{TRAIN} --set train.lr_head=-1", "train.lr_head"),
    Case(
        "split-named-validation",
        f"{TRAIN} --set data.split_file={{tmp}}/s.csv",
        "validation",
        write(Path("{tmp}/s.csv"), SPLIT + "{data}/validation/positive/000.png,1,validation\n"),
    ),
    Case(
        "split-conflicting-labels",
        f"{TRAIN} --set data.split_file={{tmp}}/s.csv",
        "000.png",
        write(Path("{tmp}/s.csv"), SPLIT + "{data}/train/positive/000.png,0,train\n"),
    ),
    Case(
        "split-train-test-leak",
        f"{TRAIN} --set data.split_file={{tmp}}/s.csv",
        "test",
        write(Path("{tmp}/s.csv"), SPLIT + "{data}/train/positive/000.png,1,test\n"),
    ),
    Case(
        "split-row-one-field",
        f"{TRAIN} --set data.split_file={{tmp}}/s.csv",
        "s.csv:3",
        write(Path("{tmp}/s.csv"), SPLIT + "{data}/train/positive/001.png\n"),
    ),
    Case("patches-label-case", f"{PATCHES} --out {{tmp}}/p --label stenosis", "Stenosis"),
    # 4. no tracebacks
    Case(
        "binary-yaml",
        "train --config {tmp}/c.yaml",
        "c.yaml",
        write(Path("{tmp}/c.yaml"), bytes(range(256))),
    ),
    Case("image-size-negative", f"{TRAIN} --set data.image_size=-5", "data.image_size"),
    Case("image-size-zero", f"{TRAIN} --set data.image_size=0", "data.image_size"),
    Case("batch-size-zero", f"{TRAIN} --set train.batch_size=0", "train.batch_size"),
    Case("batch-size-one", f"{TRAIN} --set train.batch_size=1", "train.batch_size"),
    Case("val-fraction-over-one", f"{TRAIN} --set data.val_fraction=1.5", "data.val_fraction"),
    Case("limit-zero", f"{TRAIN} --set data.limit=0", "data.limit"),
    Case("dropout-over-one", f"{TRAIN} --set model.dropout=1.5", "model.dropout"),
    Case(
        "diverging-run",
        f"{TRAIN} --set train.lr_head=1e30 --set train.lr_backbone=1e30",
        "diverged in epoch 1",
    ),
    Case("predict-out-folder", f"{PREDICT} --out {{tmp}}", "is a folder"),
    Case(
        "predict-out-under-file",
        f"{PREDICT} --out {{tmp}}/f.txt/p.csv",
        "is a file",
        write(Path("{tmp}/f.txt"), "text"),
    ),
    Case("train-out-unwritable", TRAIN.replace("{tmp}/new", "/sys/lqer-run"), "cannot write"),
    Case(
        "checkpoint-without-model",
        f"{PREDICT} --out {{tmp}}/p.csv".replace("{run}/best.pt", "{tmp}/c.pt"),
        "no model",
        checkpoint_without_model,
    ),
]


@pytest.fixture(scope="module")
def shared(tmp_path_factory, datasets_dir) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("shared")
    data = make_tiny_dataset(root / "data")
    run = fit(tiny_config(data, root / "run", "train.epochs=1"))
    return data, run, datasets_dir / "ADSD-sample"


def snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha1(p.read_bytes()).hexdigest()
        for p in folder.rglob("*")
        if p.is_file()
    }


@dataclass
class Outcome:
    paths: Paths
    before: dict[str, str]
    result: subprocess.CompletedProcess


@pytest.fixture(scope="module")
def outcomes(shared, tmp_path_factory) -> dict[str, Outcome]:
    """Every case's command, run three at a time: most of each is Python starting up."""
    data, run, adsd = shared
    prepared = {}
    for case in CASES:
        folder = tmp_path_factory.mktemp(case.id)
        paths = Paths(folder, data, run, folder / "frames")
        if "{frames}" in case.args:
            shutil.copytree(adsd, paths.frames)
        if case.setup:
            case.setup(paths)
        prepared[case.id] = (paths, snapshot(folder))

    def execute(case: Case) -> Outcome:
        paths, before = prepared[case.id]
        result = run_lqer(*shlex.split(paths.format(case.args)), cwd=paths.tmp)
        return Outcome(paths, before, result)

    shared_before = snapshot(run.parent)
    with ThreadPoolExecutor(max_workers=3) as pool:
        done = dict(zip([c.id for c in CASES], pool.map(execute, CASES), strict=True))
    assert snapshot(run.parent) == shared_before, "a case changed the shared data or run"
    return done


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_clear_line(case, outcomes):
    paths, before, result = (o := outcomes[case.id]).paths, o.before, o.result
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert paths.format(case.says) in result.stdout + result.stderr, result.stderr
    if not case.usage:
        lines = result.stderr.strip().splitlines()
        assert lines[-1].startswith("error: ") and len(lines) == 1, result.stderr
    after = snapshot(paths.tmp)
    assert {k: v for k, v in after.items() if k in before} == before, "a file changed or vanished"
    assert not [k for k in after if k.endswith(".tmp")], "a temporary file was left"

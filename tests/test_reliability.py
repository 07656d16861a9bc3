"""Faults a run must survive: kill -9 and resume, temporaries left by a kill, a full disk,
file modes under the umask, skipped files, and evaluation results that must not collide."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import lqer_command, make_tiny_dataset, run_lqer, tiny_config, write_image

from lqer.train import fit

TRAIN = ["--image-size", "16", "--set", "train.progress=false", "--set", "train.threads=1",
         "--set", "train.batch_size=8"]  # fmt: skip


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_tiny_dataset(tmp_path_factory.mktemp("data") / "data")


@pytest.fixture(scope="module")
def run(data, tmp_path_factory) -> Path:
    return fit(tiny_config(data, tmp_path_factory.mktemp("run") / "run", "train.epochs=1"))


def epochs_done(run: Path) -> int:
    path = run / "history.jsonl"
    return len(path.read_text().splitlines()) if path.exists() else 0


@pytest.mark.parametrize("shots", [None, 64], ids=["exact", "64-shots"])
def test_kill_during_epoch_2_then_resume_is_byte_identical(data, tmp_path, shots):
    args = ["train", "--data", str(data), "--epochs", "4", *TRAIN]
    if shots:
        args += ["--shots", str(shots)]
    whole = run_lqer(*args, "--out", str(tmp_path / "whole"))
    assert whole.returncode == 0, whole.stderr

    killed = tmp_path / "killed"
    process = subprocess.Popen([*lqer_command(), *args, "--out", str(killed)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 240
    while epochs_done(killed) < 1 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert 1 <= epochs_done(killed) < 4 and not (killed / "test_metrics.json").exists()

    resumed = run_lqer("train", "--out", str(killed), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    for name in ("test_predictions.csv", "test_metrics.json"):
        assert (killed / name).read_bytes() == (tmp_path / "whole" / name).read_bytes(), name
    assert not list(killed.glob(".*.tmp"))


def test_temporaries_of_a_killed_write_are_removed_on_resume(run, tmp_path):
    folder = shutil.copytree(run, tmp_path / "run")
    for name in (".last.pt.x1y2z3w4.tmp", ".best.pt.abcd_efg.tmp", ".history.csv.q0q0q0q0.tmp"):
        (folder / name).write_bytes(b"partial")
    (folder / ".notes.txt.tmp").write_text("not lqer's")  # not named as mkstemp names: left alone
    result = run_lqer("train", "--out", str(folder), "--resume", "--epochs", "2")
    assert result.returncode == 0, result.stderr
    assert "removed 3 temporary file(s)" in result.stdout
    assert sorted(p.name for p in folder.glob(".*.tmp")) == [".notes.txt.tmp"]


def test_a_full_disk_is_one_line(data, tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(disk)],
                      capture_output=True).returncode:  # fmt: skip
        pytest.skip("cannot mount a small tmpfs here")
    try:
        result = run_lqer("train", "--data", str(data), "--out", str(disk / "run"), "--epochs",
                          "1", *TRAIN)  # fmt: skip
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith("error: could not write") and "run" in result.stderr
        assert result.stderr.count("\n") == 1, result.stderr
        assert not list((disk / "run").glob(".*.tmp"))
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def test_outputs_follow_the_umask_and_keep_an_existing_mode(run, data, tmp_path):
    new, old = tmp_path / "new.csv", tmp_path / "old.csv"
    previous = os.umask(0o022)
    try:
        for out in (new, old, old):  # the second `old` replaces lqer's own file
            result = run_lqer("predict", str(data / "validation"), "--checkpoint",
                              str(run / "best.pt"), "--out", str(out))  # fmt: skip
            assert result.returncode == 0, result.stderr
            if out == old:
                old.chmod(0o640)
    finally:
        os.umask(previous)
    assert new.stat().st_mode & 0o777 == 0o644
    assert old.stat().st_mode & 0o777 == 0o640


def test_evaluations_of_two_folders_with_one_name_do_not_collide(run, data, tmp_path):
    a, b = tmp_path / "a" / "validation", tmp_path / "b" / "validation"
    shutil.copytree(data / "validation", a)
    shutil.copytree(data / "validation", b)
    (b / "positive" / "000.png").unlink()
    written = []
    for folder in (a, b, a):
        result = run_lqer("evaluate", "--checkpoint", str(run / "best.pt"), "--data", str(folder))
        assert result.returncode == 0, result.stderr
        written.append(Path(result.stdout.strip().splitlines()[-1].split(" to ")[-1]))
    assert written[0] == written[2] != written[1]  # a rerun replaces its own result only
    assert json.loads(written[0].read_text())["n"] == 24
    assert json.loads(written[1].read_text())["n"] == 23


def test_skipped_files_are_reported(tmp_path):
    data = make_tiny_dataset(tmp_path / "data")
    (data / "train" / "positive" / "bad.png").write_bytes(b"not a png")
    result = run_lqer("train", "--data", str(data), "--out", str(tmp_path / "run"), "--epochs",
                      "1", "--skip-bad", *TRAIN)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "1 bad file(s) skipped" in result.stdout
    rows = list(csv.DictReader((tmp_path / "run" / "skipped_files.csv").open()))
    assert [(r["split"], Path(r["path"]).name) for r in rows] == [("train", "bad.png")]

    write_image(tmp_path / "more" / "good.png", np.zeros((20, 20), dtype=np.uint8))
    (tmp_path / "more" / "broken.png").write_bytes(b"\x89PNG truncated")
    result = run_lqer("predict", str(tmp_path / "more"), "--checkpoint",
                      str(tmp_path / "run" / "best.pt"), "--out", str(tmp_path / "p.csv"),
                      "--skip-bad")  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = {Path(r["file"]).name: r for r in csv.DictReader((tmp_path / "p.csv").open())}
    assert rows["broken.png"]["label"] == "skipped" and rows["broken.png"]["reason"]
    assert rows["good.png"]["label"] in ("stenosis", "no_stenosis")

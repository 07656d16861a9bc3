"""The output rules of `lqer.io`, held against every command that writes, as a hostile user
would try them: an output equal to one of the command's inputs, inside one, and onto a file
or folder that lqer did not write. Each must end in one clear line and exit 2, with nothing
under the case's folder changed, removed or left behind.

`test_every_writing_command_is_tried` walks the command line, so that a command added later
with an output option fails here until its cases are in `CASES`.
"""

from __future__ import annotations

import csv
import json
import shlex
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import typer
from helpers import commands, make_tiny_dataset, run_lqer, snapshot, tiny_config, write_image

from lqer import io
from lqer.data.layout import list_folder
from lqer.errors import LqerError
from lqer.sample import SAMPLE_DIR
from lqer.train import fit

OUTPUT_OPTIONS = ("--out", "--regroup", "--pairs", "--duplicates")
WRITES_WITHOUT_OPTION = {"report": "TARGET/report", "data augment": "beside SPLIT_DIR's images"}
WRITES_NOTHING = {"serve", "circuit", "models"}

TRAIN = "train --data {data} --image-size 16 --epochs 1 --set train.progress=false"
FINETUNE = "finetune {data} --checkpoint {run}/best.pt --epochs 1"
EVALUATE = "evaluate --checkpoint {run}/best.pt --data {data}/validation"
PREDICT = "predict {data}/validation --checkpoint {run}/best.pt"
SCAN = "scan {frames}/images --checkpoint {run}/best.pt"
EXPLAIN = "explain {data}/validation/positive --checkpoint {run}/best.pt"
EXPORT = "export --checkpoint {run}/best.pt --data {data}/validation"
SWEEP = "noise-sweep --checkpoint {run}/best.pt --data {data}/validation"
COMPARE = (
    "compare --models cnn --seeds 0 --n-boot 10 --set data.root={data} --set data.image_size=16"
)
SHIP = "ship {run} --name w"
PATCHES = "data make-patches {frames}/images --annotations {frames}/annotations --overwrite"
SPLIT = "data split --manifest {mp}/manifest.csv --strategy group"
AUDIT = "data audit --train {data}/train --test {data}/validation"
FRAMES_AUDIT = "data audit --frames {frames}/images --annotations {frames}/annotations --format voc"


def user_file(relative: str, text: str = "mine\n"):
    def setup(tmp: Path) -> None:
        path = tmp / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    return setup


@dataclass
class Case:
    id: str
    command: str  # as it appears in `lqer --help`, e.g. "data split"
    option: str  # the output option tried, or how the command writes without one
    way: str  # "same", "inside" or "foreign"
    args: str
    says: str
    setup: object = None


CASES = [
    Case("train-same", "train", "--out", "same", f"{TRAIN} --out {{data}}", "is data.root"),
    Case("train-inside", "train", "--out", "inside", f"{TRAIN} --out {{data}}/run", "inside"),
    Case("train-foreign", "train", "--out", "foreign", f"{TRAIN} --out {{tmp}}/mine",
         "lqer did not write", user_file("mine/config.yaml")),
    Case("detector-same", "detector train", "--out", "same",
         "detector train --data {data} --out {data}", "is data.root"),
    Case("detector-inside", "detector train", "--out", "inside",
         "detector train --data {data} --out {data}/run", "lies inside data.root"),
    Case("detector-foreign", "detector train", "--out", "foreign",
         "detector train --data {data} --out {tmp}/mine", "lqer did not write",
         user_file("mine/config.yaml")),
    Case("finetune-same", "finetune", "--out", "same", f"{FINETUNE} --out {{data}}",
         "is data.root"),
    Case("finetune-inside", "finetune", "--out", "inside", f"{FINETUNE} --out {{data}}/run",
         "lies inside data.root"),
    Case("finetune-foreign", "finetune", "--out", "foreign", f"{FINETUNE} --out {{tmp}}/mine",
         "lqer did not write", user_file("mine/config.yaml")),
    Case("demo-same", "demo", "--out", "same", f"demo --out {SAMPLE_DIR}", "the bundled sample"),
    Case("demo-inside", "demo", "--out", "inside", f"demo --out {SAMPLE_DIR / 'test' / 'run'}",
         "lies inside"),
    Case("evaluate-same", "evaluate", "--out", "same", f"{EVALUATE} --out {{run}}/best.pt",
         "is the input"),
    Case("evaluate-inside", "evaluate", "--out", "inside",
         f"{EVALUATE} --out {{data}}/validation/e.json", "lies inside"),
    Case("evaluate-foreign", "evaluate", "--out", "foreign", f"{EVALUATE} --out {{tmp}}/e.json",
         "lqer did not write", user_file("e.json")),
    Case("predict-same", "predict", "--out", "same",
         "predict {data}/validation/positive/000.png --checkpoint {run}/best.pt "
         "--out {data}/validation/positive/000.png", "is the input"),
    Case("predict-inside", "predict", "--out", "inside",
         f"{PREDICT} --out {{data}}/validation/p.csv", "lies inside"),
    Case("predict-foreign", "predict", "--out", "foreign", f"{PREDICT} --out {{tmp}}/p.csv",
         "lqer did not write", user_file("p.csv")),
    Case("scan-same", "scan", "--out", "same", f"{SCAN} --out {{frames}}/images", "is the input"),
    Case("scan-inside", "scan", "--out", "inside", f"{SCAN} --out {{frames}}/images/scan",
         "lies inside"),
    Case("scan-foreign", "scan", "--out", "foreign", f"{SCAN} --out {{tmp}}/mine",
         "lqer did not write", user_file("mine/boxes.csv")),
    Case("explain-same", "explain", "--out", "same",
         f"{EXPLAIN} --out {{data}}/validation/positive", "is the input"),
    Case("explain-inside", "explain", "--out", "inside",
         f"{EXPLAIN} --out {{data}}/validation/positive/x", "lies inside"),
    Case("explain-foreign", "explain", "--out", "foreign", f"{EXPLAIN} --out {{tmp}}/mine",
         "lqer did not write", user_file("mine/explain.csv")),
    Case("export-same", "export", "--out", "same", f"{EXPORT} --out {{run}}/best.pt",
         "is the input"),
    Case("export-inside", "export", "--out", "inside",
         f"{EXPORT} --out {{data}}/validation/m.onnx", "lies inside"),
    Case("export-foreign", "export", "--out", "foreign", f"{EXPORT} --out {{tmp}}/m.onnx",
         "lqer did not write", user_file("m.onnx")),
    Case("sweep-same", "noise-sweep", "--out", "same", f"{SWEEP} --out {{data}}/validation",
         "is the input"),
    Case("sweep-inside", "noise-sweep", "--out", "inside",
         f"{SWEEP} --out {{data}}/validation/ns", "lies inside"),
    Case("sweep-foreign", "noise-sweep", "--out", "foreign", f"{SWEEP} --out {{tmp}}/mine",
         "lqer did not write", user_file("mine/noise_sweep.csv")),
    Case("compare-same", "compare", "--out", "same", f"{COMPARE} --out {{data}}",
         "is data.root"),
    Case("compare-inside", "compare", "--out", "inside", f"{COMPARE} --out {{data}}/cmp",
         "lies inside data.root"),
    Case("compare-foreign", "compare", "--out", "foreign", f"{COMPARE} --out {{tmp}}/mine",
         "lqer did not write", user_file("mine/results.md")),
    Case("ship-same", "ship", "--out", "same", f"{SHIP} --out {{run}}", "lies inside"),
    Case("ship-inside", "ship", "--out", "inside", f"{SHIP} --out {{run}}/sub", "lies inside"),
    Case("ship-foreign", "ship", "--out", "foreign", f"{SHIP} --out {{tmp}}",
         "lqer did not write", user_file("w.json")),
    Case("patches-same", "data make-patches", "--out", "same",
         f"{PATCHES} --out {{frames}}/images", "is the frames folder"),
    Case("patches-inside", "data make-patches", "--out", "inside",
         f"{PATCHES} --out {{frames}}/images/p", "lies inside the frames folder"),
    Case("patches-foreign", "data make-patches", "--out", "foreign",
         f"{PATCHES} --out {{tmp}}/mine", "not written by make-patches",
         user_file("mine/notes.txt")),
    Case("split-same", "data split", "--out", "same", f"{SPLIT} --out {{mp}}/manifest.csv",
         "is the input"),
    Case("split-inside", "data split", "--out", "inside",
         "data split --root {data} --strategy published --out {data}/train/positive/s.csv",
         "class folder"),
    Case("split-foreign", "data split", "--out", "foreign", f"{SPLIT} --out {{tmp}}/s.csv",
         "lqer did not write", user_file("s.csv")),
    Case("regroup-same", "data audit", "--regroup", "same",
         "data audit --split-file {tmp}/s.csv --regroup {tmp}/s.csv", "is the input"),
    Case("regroup-inside", "data audit", "--regroup", "inside",
         f"{AUDIT} --regroup {{data}}/train/r.csv", "lies inside"),
    Case("regroup-foreign", "data audit", "--regroup", "foreign",
         f"{AUDIT} --regroup {{tmp}}/r.csv", "lqer did not write", user_file("r.csv")),
    Case("pairs-same", "data audit", "--pairs", "same",
         "data audit --split-file {tmp}/s.csv --pairs {tmp}/s.csv", "is the input"),
    Case("pairs-inside", "data audit", "--pairs", "inside",
         f"{AUDIT} --pairs {{data}}/validation/p.png", "lies inside"),
    Case("pairs-foreign", "data audit", "--pairs", "foreign", f"{AUDIT} --pairs {{tmp}}/p.png",
         "lqer did not write", user_file("p.png")),
    Case("duplicates-same", "data audit", "--duplicates", "same",
         f"{FRAMES_AUDIT} --duplicates {{frames}}/images", "is a folder"),
    Case("duplicates-inside", "data audit", "--duplicates", "inside",
         f"{FRAMES_AUDIT} --duplicates {{frames}}/images/d.csv", "lies inside"),
    Case("duplicates-foreign", "data audit", "--duplicates", "foreign",
         f"{FRAMES_AUDIT} --duplicates {{tmp}}/d.csv", "lqer did not write", user_file("d.csv")),
    # commands that write without an output option
    Case("report-foreign", "report", "TARGET/report", "foreign", "report {tmp}/cmp",
         "lqer did not write", user_file("cmp/report/report.md")),
    Case("augment-foreign", "data augment", "beside SPLIT_DIR's images", "foreign",
         "data augment {data}/train --count 1 --overwrite", "not written by lqer augment",
         user_file("data/train/positive/000_aug_00.png")),
    # the hostile user's own findings
    Case("compare-onto-a-run", "compare", "--out", "foreign", f"{COMPARE} --out {{run}}",
         "the output of lqer's run"),
    Case("ship-name-is-a-path", "ship", "--name", "foreign",
         "ship {run} --name ../victim/x --out {tmp}", "not a plain name"),
    Case("split-out-is-the-manifest", "data split", "--out", "same",
         "data split --manifest {mp}/manifest.csv --out {mp}/manifest.csv", "is the input"),
]  # fmt: skip


@pytest.fixture(scope="module")
def shared(tmp_path_factory, datasets_dir):
    root = tmp_path_factory.mktemp("shared")
    data = make_tiny_dataset(root / "data")
    run = fit(tiny_config(data, root / "run", "train.epochs=1"))
    from lqer.data.patches import make_patches

    adsd = datasets_dir / "ADSD-sample"
    mp = root / "mp"
    make_patches(adsd / "images", adsd / "annotations", mp)
    return data, run, adsd, mp


def prepare(case: Case, folder: Path, shared) -> dict[str, str]:
    data, run, adsd, mp = shared
    paths = {"tmp": folder, "data": folder / "data", "run": run, "frames": folder / "frames",
             "mp": folder / "mp"}  # fmt: skip
    shutil.copytree(data, paths["data"])
    if "{frames}" in case.args:
        shutil.copytree(adsd, paths["frames"])
    if "{mp}" in case.args:
        shutil.copytree(mp, paths["mp"])
    if "{tmp}/s.csv" in case.args:
        (folder / "s.csv").write_text(
            "path,label,split\ndata/train/positive/000.png,1,train\n"
            "data/train/negative/000.png,0,train\ndata/validation/positive/000.png,1,test\n"
            "data/validation/negative/000.png,0,test\n"
        )
    if case.id == "report-foreign":  # a finished run's small files
        (folder / "cmp").mkdir()
        for name in (".lqer-run", "config.yaml", "history.csv", "history.jsonl"):
            shutil.copy(run / name, folder / "cmp" / name)
    if case.setup:
        case.setup(folder)
    return {k: str(v) for k, v in paths.items()}


@pytest.fixture(scope="module")
def outcomes(shared, tmp_path_factory):
    run = shared[1]
    prepared = {}
    for case in CASES:
        folder = tmp_path_factory.mktemp(case.id)
        paths = prepare(case, folder, shared)
        prepared[case.id] = (paths, snapshot(folder))

    def execute(case):
        paths, before = prepared[case.id]
        args = shlex.split(case.args.format(**paths))
        return run_lqer(*args, cwd=Path(paths["tmp"]), timeout=240), before, paths

    run_before = snapshot(run)
    with ThreadPoolExecutor(max_workers=3) as pool:
        done = dict(zip([c.id for c in CASES], pool.map(execute, CASES), strict=True))
    assert snapshot(run) == run_before, "a case changed the trained run"
    return done


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_an_output_never_replaces_an_input_or_a_foreign_file(case, outcomes):
    result, before, paths = outcomes[case.id]
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert case.says in lines[0], lines[0]
    after = snapshot(Path(paths["tmp"]))
    assert after == before, "a file changed, vanished or appeared"


def test_every_writing_command_is_tried():
    from lqer.cli import _register, app

    _register()
    every = commands(typer.main.get_command(app))
    options = {(name, flag) for name, command in every.items() for param in command.params
               for flag in param.opts if flag in OUTPUT_OPTIONS}  # fmt: skip
    tried = {(c.command, c.option, c.way) for c in CASES}
    for name, flag in options:
        ways = {"same", "inside", "foreign"} - ({"foreign"} if name == "demo" else set())
        missing = [way for way in ways if (name, flag, way) not in tried]
        assert not missing, f"lqer {name} {flag}: no case tries it {', '.join(missing)}"
    for name, how in WRITES_WITHOUT_OPTION.items():
        assert (name, how, "foreign") in tried
    writers = {name for name, _ in options} | set(WRITES_WITHOUT_OPTION)
    assert set(every) - writers == WRITES_NOTHING, "classify the new command here"


def test_demo_never_writes_into_an_existing_folder(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "config.yaml").write_text("mine\n")
    result = run_lqer("demo", "--out", str(tmp_path / "mine"), "--epochs", "1", "--set",
                      "data.limit=40", "--set", "data.image_size=16", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "mine" / "config.yaml").read_text() == "mine\n"
    assert list((tmp_path / "mine").iterdir()) == [tmp_path / "mine" / "config.yaml"]
    [other] = [p for p in tmp_path.iterdir() if p.name.startswith("mine-")]
    assert (other / "best.pt").is_file()


# ----------------------------------------------------------------------------- io itself


def test_lqer_replaces_its_own_file_but_not_one_changed_since(tmp_path):
    path = tmp_path / "out.csv"
    with io.output_file(path) as tmp:
        tmp.write_text("first\n")
    assert io.written_by_lqer(path)
    with io.output_file(path) as tmp:
        tmp.write_text("second\n")
    assert path.read_text() == "second\n"
    path.write_text("edited by hand\n")
    with pytest.raises(LqerError, match="lqer did not write"), io.output_file(path) as tmp:
        tmp.write_text("third\n")
    assert path.read_text() == "edited by hand\n"


def test_a_folder_belongs_to_one_command(tmp_path):
    with io.owned_folder(tmp_path / "a", "scan"):
        (tmp_path / "a" / "boxes.csv").write_text("x\n")
    io.check_own_folder(tmp_path / "a", "scan")  # scan may write there again
    with pytest.raises(LqerError, match="the output of lqer's scan"):
        io.check_own_folder(tmp_path / "a", "explain")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x").write_text("")
    with pytest.raises(LqerError, match="lqer did not write"):
        io.check_own_folder(tmp_path / "b", "scan")


def test_a_locked_folder_refuses_a_second_command(tmp_path, tiny_dataset):
    out = tmp_path / "run"
    with io.locked(out):
        result = run_lqer("train", "--data", str(tiny_dataset), "--out", str(out), "--epochs",
                          "1", "--image-size", "16")  # fmt: skip
        with io.locked(out):  # the same process may take it again
            pass
    assert result.returncode == 2, result.stderr
    assert "in use by another lqer command" in result.stderr
    assert not out.exists()  # made for the lock, left empty, removed


def test_a_failed_run_leaves_no_empty_parent_folders(tmp_path):
    out = tmp_path / "runs" / "a" / "b"
    with io.locked(out):
        pass
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "keep").write_text("")
    with io.locked(out):
        pass
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["keep"]


def test_temporaries_of_killed_commands_are_removed_when_lqer_writes_there_again(tmp_path):
    folder = tmp_path / "scan"
    with io.owned_folder(folder, "scan"):
        pass
    (folder / ".f_overlay.png.abcd1234.tmp").write_bytes(b"half")
    (folder / ".notes.tmp").write_text("not lqer's")
    with io.owned_folder(folder, "scan"):
        pass
    assert sorted(p.name for p in folder.iterdir()) == [".lqer-scan", ".notes.tmp"]


def test_a_killed_augment_leaves_nothing_behind_after_the_next_run(tmp_path):
    data = make_tiny_dataset(tmp_path / "data")
    stale = data / "train" / ".augment.abcd1234.tmp"
    stale.mkdir()
    (stale / "000_aug_00.png").write_bytes(b"half a png")
    result = run_lqer("data", "augment", str(data / "train"), "--count", "1")
    assert result.returncode == 0, result.stderr
    assert not stale.exists() and "removed" in result.stderr
    assert len(list((data / "train" / "positive").glob("*_aug_00.png"))) == 24
    again = run_lqer("data", "augment", str(data / "train"), "--count", "1", "--overwrite")
    assert again.returncode == 0, again.stderr  # its own copies: replaced


# ----------------------------------------------------------------------------- readers


def test_readers_follow_linked_folders_once_and_skip_lqer_outputs(tmp_path):
    data = make_tiny_dataset(tmp_path / "data")
    extra = tmp_path / "extra"
    for i in range(3):
        write_image(extra / f"{i}.png", np.full((20, 20), 100, np.uint8))
    (data / "train" / "positive" / "more").symlink_to(extra)
    (extra / "loop").symlink_to(data / "train" / "positive")  # a loop back up
    with io.owned_folder(data / "train" / "positive" / "sweep", "noise-sweep"):
        write_image(data / "train" / "positive" / "sweep" / "plot.png", np.zeros((9, 9), np.uint8))
    items = list_folder(data / "train")
    positives = [p for p, label in items if label == 1]
    assert len(positives) == 24 + 3
    assert not any("sweep" in str(p) for p in positives)


def test_scan_into_its_own_input_folder_is_refused_before_it_reads_a_frame(tmp_path, datasets_dir):
    frames = shutil.copytree(datasets_dir / "ADSD-sample" / "images", tmp_path / "images")
    result = run_lqer("scan", str(frames), "--checkpoint", "lqer-padsd", "--out",
                      str(frames / "scan"))  # fmt: skip
    assert result.returncode == 2 and "lies inside" in result.stderr
    assert not (frames / "scan").exists()


# ----------------------------------------------------------------------------- compare


def tiny_compare(data: Path, out: Path, *more: str):
    return run_lqer("compare", "--out", str(out), "--models", "cnn", "--seeds", "0", "--n-boot",
                    "20", "--set", f"data.root={data}", "--set", "data.image_size=16", "--set",
                    "train.epochs=1", "--set", "train.progress=false", *more)  # fmt: skip


def test_compare_refuses_runs_of_data_that_has_changed(tmp_path):
    data = make_tiny_dataset(tmp_path / "data")
    out = tmp_path / "cmp"
    first = tiny_compare(data, out)
    assert first.returncode == 0, first.stderr
    for i in range(3):  # three test images replaced
        write_image(data / "validation" / "positive" / f"{i:03d}.png",
                    np.full((20, 20), 7 * i, np.uint8))  # fmt: skip
    before = snapshot(out)
    again = tiny_compare(data, out)
    assert again.returncode == 2, again.stderr
    assert "trained on other data" in again.stderr and "test split changed" in again.stderr
    assert snapshot(out) == before


def test_compare_checks_its_options_before_it_trains(tmp_path):
    data = make_tiny_dataset(tmp_path / "data")
    for more, says in (
        (["--models", ""], "--models"),
        (["--n-boot", "0"], "--n-boot"),
        (["--folds", "0,1"], "fold"),
        (["--set", "data.test_split=missing"], "missing"),
    ):
        out = tmp_path / f"cmp{len(says)}"
        result = tiny_compare(data, out, *more)
        assert result.returncode == 2, result.stderr
        assert says in result.stderr and result.stderr.count("\n") == 1, result.stderr
        assert not out.exists()


def test_failed_runs_exit_non_zero_and_are_retried(tmp_path):
    data = make_tiny_dataset(tmp_path / "data")
    out = tmp_path / "cmp"
    (data / "train" / "positive" / "bad.png").write_bytes(b"not a png")
    failed = tiny_compare(data, out)
    assert failed.returncode == 1
    assert "cnn seed 0 failed" in failed.stderr and "error.txt" in failed.stderr
    runs = json.loads((out / "comparison.json").read_text())["runs"]
    assert [r["status"] for r in runs] == ["failed"]
    (data / "train" / "positive" / "bad.png").unlink()
    retried = tiny_compare(data, out)
    assert retried.returncode == 0, retried.stderr
    runs = json.loads((out / "comparison.json").read_text())["runs"]
    assert [r["status"] for r in runs] == ["trained"]
    assert not (out / "runs" / "cnn-seed0" / "error.txt").exists()


def test_predict_notes_inputs_the_model_was_not_trained_on(shared, tmp_path):
    run = shared[1]
    folder = tmp_path / "images"
    write_image(folder / "blank.png", np.zeros((40, 40), np.uint8))
    write_image(
        folder / "frame.png", np.random.default_rng(0).integers(0, 255, (600, 600), np.uint8)
    )
    write_image(folder / "patch.png", np.random.default_rng(1).integers(0, 255, (40, 40), np.uint8))
    out = tmp_path / "p.csv"
    result = run_lqer(
        "predict", str(folder), "--checkpoint", str(run / "best.pt"), "--out", str(out)
    )
    assert result.returncode == 0, result.stderr
    assert "warning: the call may not apply to 2 image(s)" in result.stderr
    rows = {Path(r["file"]).name: r for r in csv.DictReader(out.open())}
    assert "blank or constant" in rows["blank.png"]["reason"]
    assert "far larger than a patch" in rows["frame.png"]["reason"]
    assert rows["patch.png"]["reason"] == "" and rows["patch.png"]["label"] != "skipped"


def test_the_default_evaluation_file_never_replaces_a_users_file(shared, tmp_path):
    data, run = shared[0], shutil.copytree(shared[1], tmp_path / "run")
    (run / "eval_validation.json").write_text("my notes\n")
    result = run_lqer("evaluate", "--checkpoint", str(run / "best.pt"), "--data",
                      str(data / "validation"))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (run / "eval_validation.json").read_text() == "my notes\n"
    [written] = run.glob("eval_validation-*.json")
    assert json.loads(written.read_text())["n"] == 24

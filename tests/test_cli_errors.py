"""Every mistake a user can make, through the real `lqer` command in a subprocess: one clear
line on stderr, exit code 2, no traceback, nothing deleted or half-written.

Each case lists its command (with {placeholders} for the paths below) and a piece of the
message it must print. Before and after each command every file under the case's folder is
hashed: none may vanish or change, and no temporary file may be left.
"""

from __future__ import annotations

import importlib.util
import json
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
from helpers import datasets_path, make_tiny_dataset, need_datasets, run_lqer, snapshot, tiny_config

from lqer.eval.metrics import NAMES as METRICS
from lqer.train import fit


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


# ---- inputs forged for section 5 -----------------------------------------------------------


def forged_checkpoint(**changes) -> Callable[[Paths], None]:
    """{tmp}/c.pt: the shared run's best.pt with some entries (dotted keys) replaced."""

    def setup(p: Paths) -> None:
        state = torch.load(p.run / "best.pt", weights_only=True)
        for key, value in changes.items():
            *parents, leaf = key.split(".")
            node = state
            for part in parents:
                node = node[part]
            node[leaf] = value
        torch.save(state, p.tmp / "c.pt")

    return setup


def forged_onnx(**meta: str) -> Callable[[Paths], None]:
    """{tmp}/m.onnx: a loadable ONNX model with the lqer metadata given."""

    def setup(p: Paths) -> None:
        import onnx
        from onnx import TensorProto, helper

        x, y = (helper.make_tensor_value_info(n, TensorProto.UINT8, [None]) for n in "xy")
        graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
        model.ir_version = 8
        for key, value in meta.items():
            model.metadata_props.add(key=f"lqer.{key}", value=value)
        onnx.save(model, p.tmp / "m.onnx")

    return setup


HAVE_ONNX = importlib.util.find_spec("onnx") and importlib.util.find_spec("onnxruntime")
RULES = ["chosen on validation for sensitivity >= 0.90", "fixed at 0.5"]
MANIFEST = {
    "models": ["lqer"], "seeds": [0], "n_boot": 10, "rules": RULES, "test_split": "validation",
    "data": {"0": {"splits": {"test": {"n": 4, "positives": 2, "prevalence": 0.5,
                                       "sha256": "00"}}}},
    "device": "CPU", "runs": [{"model": "lqer", "seed": 0, "status": "trained",
                               "run": "runs/lqer-seed0"}],
}  # fmt: skip
SUMMARY = "model,rule,metric,n_seeds,mean,sd,low,high\n" + "".join(
    f"lqer,{rule},{metric},1,0.5,nan,0.4,0.6\n" for rule in RULES for metric in METRICS
)
RESULTS = "model,seed,rule,threshold\n" + "".join(f"lqer,0,{rule},0.5\n" for rule in RULES)


def comparison(manifest: str | None = None, **tables: str) -> Callable[[Paths], None]:
    """{tmp}/cmp: a comparison folder as lqer compare leaves it, less its runs' files."""

    def setup(p: Paths) -> None:
        folder = p.tmp / "cmp"
        folder.mkdir()
        (folder / "config.yaml").write_text("train: {epochs: 1}\n")
        files = {"summary.csv": SUMMARY, "contrasts.csv": "", "results.csv": RESULTS, **tables}
        if manifest != "":
            files["comparison.json"] = manifest or json.dumps(MANIFEST)
        for name, text in files.items():
            (folder / name).write_text(text)

    return setup


def billion_laughs() -> str:
    text = 'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n'
    for i in range(1, 9):
        name, below = chr(ord("a") + i), chr(ord("a") + i - 1)
        text += f"{name}: &{name} [{', '.join([f'*{below}'] * 9)}]\n"
    return text


BOXES = "source,frame,x,y,w,h,score,above_threshold\n000.png,0,2,2,{w},{w},0.9,True\n"
EXPLAIN = "explain {data}/validation/positive/000.png --checkpoint {run}/best.pt --out {tmp}/x"
AUDIT = "data audit --train {data}/train --test {data}/validation"
SPLIT_CMD = "data split --out {tmp}/s.csv --root {data}"
PREDICT_TO = f"{PREDICT} --out {{tmp}}/p.csv"

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
        "lqer did not write",
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
    # 5. hostile input: bounds, YAML bombs, forged files, damaged comparisons
    Case("image-size-too-large", f"{TRAIN} --set data.image_size=32768", "must be at most 1024"),
    Case(
        "n-layers-too-many",
        f"{TRAIN} --set model.quantum.n_layers=100000000",
        "model.quantum.n_layers: must be at most 64",
    ),
    Case("set-5000-digits", f"{TRAIN} --set train.epochs={'1' * 5000}", "more than 4300 digits"),
    Case(
        "yaml-billion-laughs",
        "train --config {tmp}/c.yaml",
        "more than 10,000 values",
        write(Path("{tmp}/c.yaml"), billion_laughs()),
    ),
    Case(
        "yaml-duplicate-key",
        "train --config {tmp}/c.yaml",
        "duplicate key 'epochs' (line 3; first at line 2)",
        write(Path("{tmp}/c.yaml"), "train:\n  epochs: 3\n  epochs: 4\n"),
    ),
    Case(
        "yaml-5000-digits",
        "train --config {tmp}/c.yaml",
        "more than 4300 digits",
        write(Path("{tmp}/c.yaml"), "train:\n  epochs: " + "7" * 5000 + "\n"),
    ),
    Case(
        "checkpoint-forged-image-size",
        PREDICT_TO.replace("{run}/best.pt", "{tmp}/c.pt"),
        "data.image_size: must be at most 1024, got 32768",
        forged_checkpoint(**{"config.data.image_size": 32768}),
    ),
    Case(
        "checkpoint-forged-n-layers",
        PREDICT_TO.replace("{run}/best.pt", "{tmp}/c.pt"),
        "model.quantum.n_layers: must be at most 64",
        forged_checkpoint(**{"config.model.quantum.n_layers": 10**8}),
    ),
    Case(
        "checkpoint-stored-threshold-not-a-number",
        PREDICT_TO.replace("{run}/best.pt", "{tmp}/c.pt"),
        "c.pt: stored threshold: a threshold must be a number in [0, 1], got 'abc'",
        forged_checkpoint(threshold={"value": "abc", "rule": "forged"}),
    ),
    Case(
        "checkpoint-stored-threshold-out-of-range",
        PREDICT_TO.replace("{run}/best.pt", "{tmp}/c.pt"),
        "c.pt: stored threshold: a threshold must be a number in [0, 1], got 7",
        forged_checkpoint(threshold={"value": 7, "rule": "forged"}),
    ),
    Case(
        "checkpoint-is-a-run-folder",
        PREDICT_TO.replace("{run}/best.pt", "{run}"),
        "{run} is a folder, not a checkpoint file; give {run}/best.pt or {run}/last.pt",
    ),
    Case("predict-threshold-nan", f"{PREDICT_TO} --threshold nan", "--threshold: a threshold"),
    Case(
        "evaluate-threshold-over-one",
        "evaluate --checkpoint {run}/best.pt --data {data}/validation --out {tmp}/e.json "
        "--threshold 1.5",
        "--threshold: a threshold must be a number in [0, 1], got 1.5",
    ),
    Case(
        "scan-threshold-negative",
        "scan {data}/validation --checkpoint {run}/best.pt --out {tmp}/s --threshold -0.1",
        "--threshold",
    ),
    Case("explain-threshold-inf", f"{EXPLAIN} --threshold inf", "--threshold"),
    Case(
        "noise-sweep-threshold-nan",
        "noise-sweep --checkpoint {run}/best.pt --data {data}/validation --out {tmp}/n "
        "--threshold nan",
        "--threshold",
    ),
    Case(
        "ship-target-sensitivity-over-one",
        "ship {run} --name w --out {tmp}/w --target-sensitivity 1.5",
        "--target-sensitivity must lie in (0, 1]",
    ),
    Case(
        "scan-format-xml",
        "scan {data}/validation --checkpoint {run}/best.pt --out {tmp}/s --format xml",
        "--format must be one of voc, yolo, coco, not 'xml'",
    ),
    Case(
        "explain-box-zero-size",
        f"{EXPLAIN} --boxes {{tmp}}/b.csv",
        "a box of width 0",
        write(Path("{tmp}/b.csv"), BOXES.format(w=0)),
    ),
    Case(
        "explain-box-negative",
        f"{EXPLAIN} --boxes {{tmp}}/b.csv",
        "a box of width -4",
        write(Path("{tmp}/b.csv"), BOXES.format(w=-4)),
    ),
    *(
        [
            Case(
                "onnx-forged-image-size",
                "predict {data}/validation --onnx {tmp}/m.onnx --out {tmp}/p.csv",
                "m.onnx: its lqer metadata: lqer.image_size expected int, got 'abc'",
                forged_onnx(image_size="abc", threshold="0.5"),
            ),
            Case(
                "onnx-forged-threshold",
                "predict {data}/validation --onnx {tmp}/m.onnx --out {tmp}/p.csv",
                "lqer.threshold: a threshold must be a number in [0, 1], got 'half'",
                forged_onnx(image_size="32", threshold="half"),
            ),
        ]
        if HAVE_ONNX
        else []
    ),
    Case("audit-size-zero", f"{AUDIT} --size 0", "--size must be at least 16 px, got 0"),
    Case("audit-null-rate-two", f"{AUDIT} --null-rate 2", "--null-rate must be in (0, 1)"),
    Case("audit-max-distance-negative", f"{AUDIT} --max-distance -1", "--max-distance must be"),
    Case("audit-max-hamming-99", f"{AUDIT} --max-hamming 99", "--max-hamming must be in [0, 64]"),
    Case("audit-size-beyond-memory", f"{AUDIT} --size 100000", "TiB of memory;"),
    Case(
        "audit-split-file-and-folders",
        f"{AUDIT} --split-file {{tmp}}/s.csv",
        "not both",
        write(Path("{tmp}/s.csv"), SPLIT),
    ),
    Case("split-folds-1000", f"{SPLIT_CMD} --folds 1000", "--folds must be 2 to 100, got 1000"),
    Case("split-folds-beyond-groups", f"{SPLIT_CMD} --folds 80", "only 72 group(s)"),
    Case("split-rename-not-published", f"{SPLIT_CMD} --rename validation=test", "--rename"),
    Case(
        "split-rename-unknown-split",
        f"{SPLIT_CMD} --strategy published --rename valid=test",
        "'valid' is not a split of",
    ),
    Case(
        "report-comparison-not-json",
        "report {tmp}/cmp",
        "comparison.json: not readable JSON",
        comparison(manifest="{not json"),
    ),
    Case(
        "report-comparison-missing-keys",
        "report {tmp}/cmp",
        "comparison.json: no 'rules'",
        comparison(manifest="{}"),
    ),
    Case(
        "report-empty-tables",
        "report {tmp}/cmp",
        "summary.csv: empty, though",
        comparison(**{"summary.csv": "", "results.csv": ""}),
    ),
    Case(
        "report-summary-missing-columns",
        "report {tmp}/cmp",
        "summary.csv: no column n_seeds",
        comparison(**{"summary.csv": "model,rule,metric\nlqer,fixed at 0.5,auc\n"}),
    ),
    Case(
        "report-without-comparison-json",
        "report {tmp}/cmp",
        "no comparison.json",
        comparison(manifest=""),
    ),
    Case(
        "report-runs-without-predictions",
        "report {tmp}/cmp",
        "have no predictions files",
        comparison(),
    ),
    Case(
        "scan-frames-huge-range",
        "scan {data}/validation --checkpoint {run}/best.pt --out {tmp}/s --frames 1-10000000000",
        "--frames: more than 100,000 numbers",
    ),
]


@pytest.fixture(scope="module")
def shared(tmp_path_factory) -> tuple[Path, Path, Path | None]:
    """A tiny dataset and run; the ADSD sample only where the real datasets are (the few
    cases with {frames} need it, the rest do not)."""
    root = tmp_path_factory.mktemp("shared")
    data = make_tiny_dataset(root / "data")
    run = fit(tiny_config(data, root / "run", "train.epochs=1"))
    adsd = datasets_path() / "ADSD-sample"
    return data, run, adsd if adsd.is_dir() else None


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
    cases = [c for c in CASES if adsd is not None or "{frames}" not in c.args]
    for case in cases:
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
        done = dict(zip([c.id for c in cases], pool.map(execute, cases), strict=True))
    assert snapshot(run.parent) == shared_before, "a case changed the shared data or run"
    return done


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_clear_line(case, outcomes):
    if case.id not in outcomes:
        need_datasets()  # a {frames} case: skips, or fails under CI
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


def exif_with_a_tag_past_the_end() -> bytes:
    """A TIFF-style EXIF block whose one tag points 4 KiB past its end: Pillow warns."""
    import struct

    entry = struct.pack("<HHII", 0x010E, 2, 100, 0x1000)  # ImageDescription, 100 bytes
    return struct.pack("<2sHIH", b"II", 42, 8, 1) + entry + struct.pack("<I", 0)


def test_other_libraries_warnings_are_one_line_each(shared, tmp_path):
    import numpy as np
    from PIL import Image

    _, run, _ = shared
    pixels = np.random.default_rng(0).integers(0, 255, (20, 20), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "exif.png", exif=exif_with_a_tag_past_the_end())
    result = run_lqer("predict", str(tmp_path / "exif.png"), "--checkpoint", str(run / "best.pt"),
                      "--out", str(tmp_path / "p.csv"))  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines and all(line.startswith("warning: ") for line in lines), result.stderr


def test_show_warning_keeps_the_first_line_of_a_foreign_warning(capsys):
    from lqer.cli import _show_warning
    from lqer.errors import LqerWarning

    message = UserWarning("Corrupt EXIF data.  Expecting to read 12 bytes\nbut only got 4.")
    _show_warning(message, UserWarning, "/site-packages/PIL/TiffImagePlugin.py", 900)
    _show_warning(LqerWarning("a box covers the whole image"), LqerWarning, "patches.py", 1)
    assert capsys.readouterr().err == (
        "warning: Corrupt EXIF data.  Expecting to read 12 bytes\n"
        "warning: a box covers the whole image\n"
    )


def test_pydicom_log_records_reach_no_root_handler():
    """pydicom logs what it also warns about, some of it with a traceback; under the CLI a
    handler that a library put on the root logger must not print it."""
    code = (
        "import logging, sys\n"
        "logging.basicConfig()\n"
        "from lqer.cli import main\n"
        "sys.argv = ['lqer', 'models']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "logging.getLogger('pydicom').error('tag trouble', exc_info=ValueError('deep'))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "tag trouble" not in result.stderr and "Traceback" not in result.stderr

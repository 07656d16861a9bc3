"""The frame audit on ARCADE's real train and val splits, and its refusals."""

import csv
import json
import shutil

import pytest

from lqer.data.frame_audit import audit_frames, report
from lqer.errors import LqerError, as_flags


@pytest.fixture(scope="session")
def arcade(datasets_dir):
    root = datasets_dir / "ARCADE-stenosis"
    return [(root / s / "images", root / s / "annotations" / f"{s}.json") for s in ("train", "val")]


def test_arcade_holds_exactly_the_known_duplicates_and_empty_frames(arcade):
    audit = audit_frames(arcade)
    # the datasets README: train 148 = 799, 545 = 864, 86 = 916, and train 218 = val 58
    assert audit.duplicates == [
        [("train", "86"), ("train", "916")],
        [("train", "148"), ("train", "799")],
        [("train", "218"), ("val", "58")],
        [("train", "545"), ("train", "864")],
    ]
    assert audit.frames == audit.listed == {"train": 1000, "val": 200}
    assert audit.unannotated == {"train": ["218", "738", "888"], "val": []}
    assert audit.missing == audit.unlisted == {"train": [], "val": []}
    assert audit.boxes[("train", "218")] == 0 and audit.boxes[("val", "58")] == 2
    text = report(audit)
    assert "4 group(s), 1 across sets" in text
    assert "train 218 (0 boxes) = val 58 (2 boxes)" in text


def test_missing_and_unlisted_images_and_the_cli(arcade, tmp_path):
    """A COCO file naming an image that is not there, and an image it does not name."""
    from typer.testing import CliRunner

    from lqer.cli.data import app

    images, annotations = arcade[1]
    train_images, train_annotations = arcade[0]
    data = json.loads(train_annotations.read_text())  # three train frames, none of them 218
    keep = {im["id"] for im in data["images"][:3]}
    assert "218.png" not in {im["file_name"] for im in data["images"][:3]}
    data["images"] = data["images"][:3] + [{"id": 99999, "file_name": "gone.png"}]
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] in keep]
    small = tmp_path / "small"
    (small / "images").mkdir(parents=True)
    for im in data["images"][:3]:
        shutil.copy(train_images / im["file_name"], small / "images" / im["file_name"])
    shutil.copy(images / "58.png", small / "images" / "copy_of_58.png")  # listed nowhere
    (small / "small.json").write_text(json.dumps(data))
    audit = audit_frames([(small / "images", small / "small.json")])
    assert audit.missing == {"small": ["gone"]} and audit.unlisted == {"small": ["copy_of_58"]}
    assert audit.unannotated == {"small": ["gone"]}

    args = ["audit", "--frames", str(images), "--annotations", str(annotations), "--frames",
            str(small / "images"), "--annotations", str(small / "small.json")]  # fmt: skip
    result = CliRunner().invoke(app, [*args, "--duplicates", str(tmp_path / "d.csv")])
    assert result.exit_code == 0, result.output
    assert "val 58 (2 boxes) = small copy_of_58 (not listed)" in result.output
    assert "listed but no image file: 1: gone" in result.output
    with (tmp_path / "d.csv").open() as f:
        found = list(csv.DictReader(f))
    assert [(r["group"], r["set"], r["frame_id"], r["boxes"]) for r in found] == [
        ("0", "val", "58", "2"), ("0", "small", "copy_of_58", "")
    ]  # fmt: skip
    assert found[0]["sha256"] == found[1]["sha256"]
    rerun = CliRunner().invoke(app, [*args, "--duplicates", str(tmp_path / "d.csv")])
    assert rerun.exit_code == 0, rerun.output  # its own file: replaced


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--duplicates", "{ann}"], "is the input"),
        (["--duplicates", "{small}/images/d.csv"], "lies inside"),
        (["--duplicates", "{small}/mine.csv"], "lqer did not write"),
        (["--train", "{small}"], "--frames audits whole frames"),
        (["--annotations", "{ann}"], "one --annotations per --frames folder (1 --frames, 2"),
        (["--format", "json"], "--format must be one of"),
    ],
)
def test_the_frame_audit_refuses_in_one_line_before_any_work(arcade, tmp_path, extra, says):
    from typer.testing import CliRunner

    from lqer.cli.data import app

    small = tmp_path / "small"
    (small / "images").mkdir(parents=True)
    shutil.copy(arcade[1][0] / "58.png", small / "images" / "58.png")
    ann = small / "a.json"
    ann.write_text(json.dumps({"images": [{"id": 1, "file_name": "58.png"}]}))
    (small / "mine.csv").write_text("mine\n")
    paths = {"ann": ann, "small": small}
    args = ["audit", "--frames", str(small / "images"), "--annotations", str(ann)]
    result = CliRunner().invoke(app, [*args, *(e.format(**paths) for e in extra)])
    assert isinstance(result.exception, LqerError), result.output
    assert says in as_flags(str(result.exception)) and "\n" not in str(result.exception)
    assert (small / "mine.csv").read_text() == "mine\n"
    assert ann.read_text().startswith('{"images"')
    assert sorted(p.name for p in small.rglob("*")) == ["58.png", "a.json", "images", "mine.csv"]

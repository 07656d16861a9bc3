"""make-patches on the real ADSD-sample frames: geometry against the boxes, formats, errors."""

import csv
import json
import shutil
import warnings

import numpy as np
import pytest
from helpers import write_dicom
from PIL import Image

from lqer.data.annotations import Box, read_voc
from lqer.data.frames import list_frames, read_frames
from lqer.data.images import load_gray
from lqer.data.patches import PatchConfig, make_patches, plan_patches
from lqer.errors import LqerError, LqerWarning, as_flags


@pytest.fixture(scope="session")
def adsd(datasets_dir):
    return datasets_dir / "ADSD-sample"


def manifest(out):
    with (out / "manifest.csv").open() as f:
        return list(csv.DictReader(f))


def test_voc_reader_gives_the_two_boxes_of_frame_17(adsd):
    boxes = read_voc(adsd / "annotations" / "14_002_5_0017.xml")
    assert [(b.xmin, b.ymin, b.xmax, b.ymax) for b in boxes] == [
        (161, 173, 179, 187),
        (222, 174, 241, 186),
    ]
    assert {b.label for b in boxes} == {"Stenosis"}


def test_geometry_matches_the_adsd_boxes(adsd, tmp_path):
    out = tmp_path / "patches"
    summary = make_patches(adsd / "images", adsd / "annotations", out, PatchConfig(out_size=0))
    rows = manifest(out)
    assert (summary.positive, summary.negative) == (7, 26)
    # Frame 17's two boxes are 42 px apart: each one's side neighbour covers the other box.
    assert summary.dropped == {"overlaps a stenosis box": 2}
    boxes = {p.stem: read_voc(p) for p in (adsd / "annotations").glob("*.xml")}
    frames = {}
    for row in rows:
        box = boxes[row["frame_id"]][int(row["box"])]
        x, y, size = int(row["x"]), int(row["y"]), int(row["size"])
        assert size == 2 * round(max(box.width, box.height)) and size % 2 == 0 and size >= 32
        offset = {"centre": (0, 0), "left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}
        dx, dy = offset[row["position"]]
        cx, cy = box.centre
        assert (
            abs(x + size / 2 - dx * size - cx) <= 0.5 and abs(y + size / 2 - dy * size - cy) <= 0.5
        )
        assert x >= 0 and x + size <= 512 and y >= 0 and y + size <= 512
        assert int(row["label"]) == (row["position"] == "centre")
        if row["label"] == "0":  # a negative touches no stenosis box of its frame
            for other in boxes[row["frame_id"]]:
                assert not (x < other.xmax and other.xmin < x + size) or not (
                    y < other.ymax and other.ymin < y + size
                )
        frame = frames.setdefault(row["source"], load_gray(row["source"]))
        patch = load_gray(out / row["path"])
        np.testing.assert_array_equal(patch, frame[y : y + size, x : x + size])
        assert (row["patient"], row["sequence"]) == ("14", "002")
        assert row["frame"] == row["frame_id"][-4:]
    names = sorted(p.name for p in out.iterdir())
    assert names == [".lqer-patches", "manifest.csv", "negative", "positive"]


def test_patches_are_resampled_to_64_by_default(adsd, tmp_path):
    make_patches(adsd / "images", adsd / "annotations", tmp_path / "p")
    sizes = {Image.open(p).size for p in (tmp_path / "p").rglob("*.png")}
    assert sizes == {(64, 64)}


def test_small_and_border_patches_are_dropped():
    boxes = [Box(20, 100, 40, 120), Box(300, 300, 310, 305)]  # a 40 px square at x = 10; 20 px
    kept, dropped = plan_patches(boxes, 512, 512, scale=2.0, min_size=32)
    assert dropped == {"border": 1, "small": 5}  # the left square would start at x = -30
    assert sorted(s.position for s in kept) == ["centre", "down", "right", "up"]
    assert {(s.x, s.y, s.size) for s in kept if s.position == "centre"} == {(10, 90, 40)}


def copy_sample(adsd, tmp_path):
    shutil.copytree(adsd, tmp_path / "adsd")
    for path in (tmp_path / "adsd").rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return tmp_path / "adsd"


def test_bad_annotations_give_warnings_and_errors(adsd, tmp_path):
    data = copy_sample(adsd, tmp_path)
    xml = data / "annotations" / "14_002_5_0016.xml"
    xml.write_text(xml.read_text().replace("<xmax>206</xmax>", "<xmax>530</xmax>"))
    (data / "annotations" / "14_002_5_0021.xml").unlink()
    shutil.copy(xml, data / "annotations" / "99_001_1_0001.xml")
    summary = make_patches(data / "images", data / "annotations", tmp_path / "p")
    text = "\n".join(summary.warnings)
    assert "clipped to the 512x512 image" in text
    assert "1 frame(s) have no annotation" in text and "14_002_5_0021" in text
    assert "1 annotation(s) have no frame" in text and "99_001_1_0001" in text
    assert (tmp_path / "p" / "warnings.txt").read_text().count("\n") == len(summary.warnings)

    (data / "annotations" / "14_002_5_0017.xml").write_text("")
    with pytest.raises(LqerError, match="14_002_5_0017.xml: empty annotation file"):
        make_patches(data / "images", data / "annotations", tmp_path / "q")
    assert not (tmp_path / "q").exists()


def test_a_failure_halfway_leaves_no_tree(adsd, tmp_path):
    data = copy_sample(adsd, tmp_path)
    (data / "images" / "14_002_5_0019.bmp").write_bytes(b"BM not really a bitmap")
    with pytest.raises(LqerError, match="14_002_5_0019.bmp"):
        make_patches(data / "images", data / "annotations", tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adsd"]  # no output, no temp folder
    with pytest.raises(LqerError, match="exists"):
        make_patches(adsd / "images", adsd / "annotations", data)


def test_yolo_and_coco_give_the_same_patches_as_voc(adsd, tmp_path):
    make_patches(adsd / "images", adsd / "annotations", tmp_path / "voc")
    yolo = tmp_path / "yolo"
    yolo.mkdir()
    coco = {"images": [], "annotations": [], "categories": [{"id": 0, "name": "Stenosis"}]}
    for k, xml in enumerate(sorted((adsd / "annotations").glob("*.xml"))):
        boxes = read_voc(xml)
        lines = [
            f"0 {(b.xmin + b.xmax) / 1024} {(b.ymin + b.ymax) / 1024} {b.width / 512} "
            f"{b.height / 512}"
            for b in boxes
        ]
        (yolo / f"{xml.stem}.txt").write_text("\n".join(lines))
        coco["images"].append(
            {"id": k, "file_name": f"{xml.stem}.bmp", "width": 512, "height": 512}
        )
        coco["annotations"] += [
            {"id": len(coco["annotations"]) + i, "image_id": k, "category_id": 0,
             "bbox": [b.xmin, b.ymin, b.width, b.height]}
            for i, b in enumerate(boxes)
        ]  # fmt: skip
    (tmp_path / "coco.json").write_text(json.dumps(coco))
    make_patches(adsd / "images", yolo, tmp_path / "y", fmt="yolo", class_names=["Stenosis"])
    make_patches(adsd / "images", tmp_path / "coco.json", tmp_path / "c", fmt="coco")
    geometry = ["path", "label", "x", "y", "size"]
    expected = [[r[k] for k in geometry] for r in manifest(tmp_path / "voc")]
    for name in ("y", "c"):
        assert [[r[k] for k in geometry] for r in manifest(tmp_path / name)] == expected


def test_multiframe_dicom_yields_every_frame(adsd, tmp_path):
    bmps = sorted((adsd / "images").glob("*.bmp"))
    frames = np.stack([load_gray(p) for p in bmps])
    write_dicom(tmp_path / "14_002_5.dcm", frames)
    write_dicom(tmp_path / "inverted.dcm", 255 - frames[:1], "MONOCHROME1")
    refs = list_frames(tmp_path)
    assert [r.id for r in refs] == [
        "14_002_5_0001",
        *[f"14_002_5_{k:04d}" for k in range(2, 7)],
    ] + ["inverted"]
    decoded = dict((ref.id, image) for ref, image in read_frames(refs))
    for k, frame in enumerate(frames, start=1):
        np.testing.assert_array_equal(decoded[f"14_002_5_{k:04d}"], frame)
    np.testing.assert_array_equal(decoded["inverted"], frames[0])


def test_cli_make_patches_prints_counts_and_errors(adsd, tmp_path):
    from typer.testing import CliRunner

    from lqer.cli.data import app

    out = tmp_path / "p"
    args = ["make-patches", str(adsd / "images"), "--annotations", str(adsd / "annotations")]
    result = CliRunner().invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "6 frames -> 7 positive, 26 negative" in result.output
    result = CliRunner().invoke(app, [*args, "--out", str(out), "--format", "json"])
    assert isinstance(result.exception, LqerError) and "--format" in as_flags(str(result.exception))


def test_12_bit_dicom_frames_share_one_scale(tmp_path):
    bright = np.linspace(0, 4095, 64).reshape(8, 8)
    frames = np.stack([bright, bright / 4]).astype(np.uint16)  # the second frame is dark
    write_dicom(tmp_path / "seq.dcm", frames, bits_stored=12)
    decoded = [image for _, image in read_frames(list_frames(tmp_path))]
    for frame, image in zip(frames, decoded, strict=True):
        np.testing.assert_array_equal(image, np.round(frame / 4095 * 255).astype(np.uint8))


def test_output_never_overlaps_the_inputs(adsd, tmp_path):
    data = copy_sample(adsd, tmp_path)
    images, annotations = data / "images", data / "annotations"
    before = sorted(p.relative_to(data) for p in data.rglob("*"))
    refused = {
        images: "is the frames folder",
        data / "sub" / ".." / "images": "the frames folder",  # the same folder, resolved
        data: "the frames folder",  # holds both inputs
        images / "patches": "lies inside the frames folder",
        annotations / "patches": "`annotations`",
    }
    for out, message in refused.items():
        with pytest.raises(LqerError, match=message) as err:
            make_patches(images, annotations, out, overwrite=True)
        assert "\n" not in str(err.value)
    assert sorted(p.relative_to(data) for p in data.rglob("*")) == before
    coco = tmp_path / "coco.json"
    coco.write_text("{}")
    with pytest.raises(LqerError, match="`annotations`"):
        make_patches(images, coco, coco, fmt="coco", overwrite=True)
    assert coco.read_text() == "{}"


def test_overwrite_replaces_only_what_make_patches_wrote(adsd, tmp_path):
    args = (adsd / "images", adsd / "annotations")
    out = tmp_path / "p"
    make_patches(*args, out)
    make_patches(*args, out, overwrite=True)  # its own output: replaced
    with pytest.raises(LqerError, match="exists"):
        make_patches(*args, out)
    (out / "split.csv").write_text("mine")
    with pytest.raises(LqerError, match="not written by make-patches \\(it holds split.csv\\)"):
        make_patches(*args, out, overwrite=True)
    assert (out / "split.csv").read_text() == "mine"
    (out / "split.csv").unlink()
    shutil.copy(next((out / "positive").iterdir()), out / "positive" / "mine.png")
    with pytest.raises(LqerError, match="does not list positive/mine.png"):
        make_patches(*args, out, overwrite=True)
    assert (out / "positive" / "mine.png").is_file()

    other = tmp_path / "other"
    (other / "positive").mkdir(parents=True)
    with pytest.raises(LqerError, match="not written by make-patches \\(no readable manifest"):
        make_patches(*args, other, overwrite=True)
    (other / "manifest.csv").write_text("path,label,split\n")
    with pytest.raises(LqerError, match="lacks make-patches' columns"):
        make_patches(*args, other, overwrite=True)
    assert sorted(p.name for p in other.iterdir()) == ["manifest.csv", "positive"]


def test_work_folders_of_killed_runs_are_removed(adsd, tmp_path):
    stale = tmp_path / ".p.abcd_123.tmp"
    (stale / "positive").mkdir(parents=True)
    (stale / "negative").mkdir()
    (stale / "positive" / "x_b0_centre.png").write_bytes(b"half a png")
    old = tmp_path / ".p.zz99zz99.old"
    make_patches(adsd / "images", adsd / "annotations", old)  # a finished output, renamed away
    foreign = tmp_path / ".p.qqqqqqqq.tmp"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    other_output = tmp_path / ".q.abcd_123.tmp"
    other_output.mkdir()
    with pytest.warns(LqerWarning) as caught:
        make_patches(adsd / "images", adsd / "annotations", tmp_path / "p")
    messages = "\n".join(str(w.message) for w in caught)
    assert f"removed {stale}" in messages and f"removed {old}" in messages
    assert f"left {foreign} alone" in messages and "notes.txt" in messages
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [".p.qqqqqqqq.tmp", ".q.abcd_123.tmp", "p"]
    foreign.rename(tmp_path / "kept")
    with warnings.catch_warnings():
        warnings.simplefilter("error", LqerWarning)  # nothing left to remove: no warning
        make_patches(adsd / "images", adsd / "annotations", tmp_path / "p", overwrite=True)


def test_a_label_no_box_has_is_an_error_listing_the_labels(adsd, tmp_path):
    with pytest.raises(LqerError) as err:
        make_patches(
            adsd / "images", adsd / "annotations", tmp_path / "p", PatchConfig(labels=("stenosis",))
        )
    assert str(err.value) == "no box is labelled 'stenosis' (`label`); labels found: Stenosis (7)"
    assert not (tmp_path / "p").exists()
    from typer.testing import CliRunner

    from lqer.cli.data import app

    args = ["make-patches", str(adsd / "images"), "--annotations", str(adsd / "annotations")]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "p"), "--label", "stenosis"])
    assert isinstance(result.exception, LqerError) and "Stenosis (7)" in str(result.exception)
    cfg = PatchConfig(labels=("stenosis", "Stenosis"))
    summary = make_patches(adsd / "images", adsd / "annotations", tmp_path / "p", cfg)
    assert summary.positive == 7 and "no box is labelled 'stenosis' (`label`)" in summary.warnings


def test_whole_image_boxes_and_wrong_sizes_are_warnings(adsd, tmp_path):
    data = copy_sample(adsd, tmp_path)
    xml = data / "annotations" / "14_002_5_0016.xml"
    whole = (
        "<object><name>Stenosis</name><bndbox><xmin>5</xmin><ymin>0</ymin>"
        "<xmax>500</xmax><ymax>512</ymax></bndbox></object></annotation>"
    )
    xml.write_text(xml.read_text().replace("</annotation>", whole))
    other = data / "annotations" / "14_002_5_0018.xml"
    other.write_text(other.read_text().replace("<width>512</width>", "<width>1024</width>"))
    summary = make_patches(data / "images", data / "annotations", tmp_path / "p")
    text = "\n".join(summary.warnings)
    assert "14_002_5_0016: box (5,0)-(500,512) covers (nearly) the whole 512x512 image" in text
    assert "14_002_5_0018: the annotation gives the size 1024x512, the image is 512x512" in text
    assert len(summary.warnings) == 2
    # The whole-image box takes no negatives of the frame's real box with it.
    assert (summary.positive, summary.negative) == (7, 26) and "border" not in summary.dropped


def test_names_without_a_patient_warn_only_under_a_given_pattern(adsd, tmp_path):
    """ARCADE's frames are 1.png, 2.png...: the default pattern leaves their fields empty in
    silence (one count in the CLI's summary); a pattern the user gave still warns."""
    from typer.testing import CliRunner

    from lqer.cli.data import app
    from lqer.data.patches import ADSD_PATTERN

    data = tmp_path / "plain"
    for k, xml in enumerate(sorted((adsd / "annotations").glob("*.xml"))[:2], start=1):
        (data / "annotations").mkdir(parents=True, exist_ok=True)
        shutil.copy(xml, data / "annotations" / f"{k}.xml")
        (data / "images").mkdir(exist_ok=True)
        shutil.copy(adsd / "images" / f"{xml.stem}.bmp", data / "images" / f"{k}.bmp")
    summary = make_patches(data / "images", data / "annotations", tmp_path / "a")
    assert summary.warnings == [] and summary.unparsed == 2
    assert not (tmp_path / "a" / "warnings.txt").exists()
    assert {(r["patient"], r["sequence"], r["frame"]) for r in manifest(tmp_path / "a")} == {
        ("", "", "")
    }
    given = make_patches(data / "images", data / "annotations", tmp_path / "b",
                         PatchConfig(pattern=ADSD_PATTERN))  # fmt: skip
    assert len(given.warnings) == 1 and "2 frame id(s) do not match `pattern`" in given.warnings[0]
    args = ["make-patches", str(data / "images"), "--annotations", str(data / "annotations")]
    quiet = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "c")])
    assert quiet.exit_code == 0 and "warning" not in quiet.output
    assert quiet.output.count("2 frame id(s) are not ADSD names") == 1
    loud = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "d"), "--pattern", r"(\d+)_x"])
    assert "warning: 2 frame id(s) do not match --pattern" in loud.output

"""Whole-frame and mined negatives of make-patches, on the real ADSD-sample frames."""

import csv
import hashlib
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from lqer.data.annotations import Box, Detection, read_voc
from lqer.data.images import load_gray
from lqer.data.negatives import EDGE, parse_mix, split_count
from lqer.data.patches import PatchConfig, make_patches
from lqer.errors import LqerError, as_flags
from lqer.eval.mining import false_windows

# make-patches' output on ADSD-sample before whole-frame negatives existed (commit eff49e0):
# file names, decoded pixels and the manifest with the datasets folder cut from its paths
BEFORE = "1675859c24f75468da91a98f21ede873f3399589668d009c5c95293940c5335b"


@pytest.fixture(scope="session")
def adsd(datasets_dir):
    return datasets_dir / "ADSD-sample"


def rows(out):
    with (out / "manifest.csv").open() as f:
        return list(csv.DictReader(f))


def digest(out, root):
    h = hashlib.sha256()
    for path in sorted(out.rglob("*.png")):
        h.update(str(path.relative_to(out)).encode())
        h.update(np.asarray(Image.open(path)).tobytes())
    text = (out / "manifest.csv").read_text().replace(str(root.resolve()) + "/", "")
    return h.update(text.encode()) or h.hexdigest()


def tree(out):
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def boxes_of(adsd):
    return {p.stem: read_voc(p) for p in (adsd / "annotations").glob("*.xml")}


def overlaps(row, box):
    x, y, s = int(row["x"]), int(row["y"]), int(row["size"])
    return x < box.xmax and box.xmin < x + s and y < box.ymax and box.ymin < y + s


def test_no_frame_negatives_give_todays_output_byte_for_byte(adsd, datasets_dir, tmp_path):
    from typer.testing import CliRunner

    from lqer.cli.data import app

    make_patches(adsd / "images", adsd / "annotations", tmp_path / "lib")
    assert digest(tmp_path / "lib", datasets_dir) == BEFORE
    args = ["make-patches", str(adsd / "images"), "--annotations", str(adsd / "annotations")]
    plain = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "plain")])
    zero = ["--frame-negatives", "0", "--negative-mix", "vessel=1"]
    explicit = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "zero"), *zero])
    assert plain.exit_code == explicit.exit_code == 0, plain.output + explicit.output
    assert tree(tmp_path / "plain") == tree(tmp_path / "zero") == tree(tmp_path / "lib")
    assert "of the negatives" not in plain.output


def test_frame_negatives_keep_the_mix_the_sides_and_clear_of_every_box(adsd, tmp_path):
    cfg = PatchConfig(out_size=0, frame_negatives=8)
    summary = make_patches(adsd / "images", adsd / "annotations", tmp_path / "p", cfg)
    found = rows(tmp_path / "p")
    boxes = boxes_of(adsd)
    frame_rows = [r for r in found if r["position"].startswith("frame-")]
    # 8 per frame, 4:2:2 in each of the 6 frames; no kind ran short on these frames
    assert not {k for k in summary.dropped if k.startswith("no free")}
    for frame_id in boxes:
        kinds = [r["position"] for r in frame_rows if r["frame_id"] == frame_id]
        assert (
            sorted(kinds) == ["frame-background"] * 2 + ["frame-border"] * 2 + ["frame-vessel"] * 4
        )
    assert summary.positions["frame-vessel"] == 24 and summary.negative == 26 + 48
    sides = {}
    for row in found:
        if row["position"] == "centre":
            sides.setdefault(row["frame_id"], set()).add(int(row["size"]))
    frames = {}
    contrast = {"frame-vessel": [], "frame-background": []}
    for row in frame_rows:
        x, y, s = int(row["x"]), int(row["y"]), int(row["size"])
        assert row["label"] == "0" and row["path"].startswith("negative/")
        assert row["box"] == row["box_xmin"] == ""
        assert s in sides[row["frame_id"]]  # size is no cue
        assert x >= 0 and y >= 0 and x + s <= 512 and y + s <= 512
        assert not any(overlaps(row, box) for box in boxes[row["frame_id"]])
        frame = frames.setdefault(row["source"], load_gray(row["source"]))
        patch = load_gray(tmp_path / "p" / row["path"])
        np.testing.assert_array_equal(patch, frame[y : y + s, x : x + s])
        centre = patch[s // 4 : s // 4 + s // 2, s // 4 : s // 4 + s // 2]
        if row["position"] == "frame-border":  # at the frame edge, or holding dark vignette
            near = min(x, y, 512 - x - s, 512 - y - s) < EDGE
            assert near or np.percentile(patch, 10) < 0.5 * np.median(frame)
        else:  # a vessel darkens the centre against the window, background does not
            contrast[row["position"]].append(np.median(patch) - np.percentile(centre, 5))
    vessel, background = (np.median(contrast[k]) for k in ("frame-vessel", "frame-background"))
    assert vessel > 2 * background + 10, (vessel, background)


def test_frame_negatives_are_reproducible_and_follow_the_seed(adsd, tmp_path):
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        cfg = PatchConfig(frame_negatives=6, seed=seed, negative_mix={"border": 1, "vessel": 1})
        make_patches(adsd / "images", adsd / "annotations", tmp_path / name, cfg)
    assert tree(tmp_path / "a") == tree(tmp_path / "b")
    assert tree(tmp_path / "a") != tree(tmp_path / "c")
    kinds = {r["position"] for r in rows(tmp_path / "c") if r["label"] == "0"}
    assert "frame-background" not in kinds and {"frame-border", "frame-vessel"} <= kinds


def test_a_frame_without_positives_draws_the_runs_sides(adsd, tmp_path):
    """COCO lists a frame without boxes (ARCADE has three): its windows take the run's sides."""
    coco = {"images": [], "annotations": [], "categories": [{"id": 1, "name": "stenosis"}]}
    for k, (frame_id, boxes) in enumerate(sorted(boxes_of(adsd).items())):
        coco["images"].append({"id": k, "file_name": f"{frame_id}.bmp"})
        if frame_id != "14_002_5_0019":
            coco["annotations"] += [
                {"id": len(coco["annotations"]), "image_id": k, "category_id": 1,
                 "bbox": [b.xmin, b.ymin, b.width, b.height]} for b in boxes
            ]  # fmt: skip
    (tmp_path / "coco.json").write_text(json.dumps(coco))
    cfg = PatchConfig(out_size=0, frame_negatives=4)
    make_patches(adsd / "images", tmp_path / "coco.json", tmp_path / "p", cfg, fmt="coco")
    found = rows(tmp_path / "p")
    run_sides = {int(r["size"]) for r in found if r["position"] == "centre"}
    lonely = [r for r in found if r["frame_id"] == "14_002_5_0019"]
    assert len(lonely) == 4 and {r["position"][:6] for r in lonely} == {"frame-"}
    assert {int(r["size"]) for r in lonely} <= run_sides


def test_the_mix_is_shared_out_by_its_fractions():
    rng = np.random.default_rng(0)
    mix = parse_mix("vessel=2, border=1,background=1")
    assert mix == {"vessel": 0.5, "border": 0.25, "background": 0.25}
    assert split_count(8, mix, rng) == {"vessel": 4, "border": 2, "background": 2}
    totals = np.sum([list(split_count(5, mix, rng).values()) for _ in range(4000)], axis=0)
    assert all(sum(split_count(5, mix, rng).values()) == 5 for _ in range(50))
    np.testing.assert_allclose(totals / totals.sum(), [0.5, 0.25, 0.25], atol=0.01)


@pytest.mark.parametrize(
    ("text", "says"),
    [("vessel=abc", "is not kind=number"), ("pink=1", "unknown kind 'pink'"),
     ("vessel=-1", "vessel must be a share >= 0"), ("vessel=nan", "vessel must be a share"),
     ("vessel=0,border=0", "sum to 0"), ("vessel", "expected vessel=SHARE")],
)  # fmt: skip
def test_a_bad_mix_is_one_line_naming_the_option(text, says):
    with pytest.raises(LqerError, match="`negative_mix`") as err:
        parse_mix(text)
    assert says in str(err.value) and "\n" not in str(err.value)


def test_bad_counts_are_refused_before_any_work(adsd, tmp_path):
    with pytest.raises(LqerError, match="`frame_negatives` must be 0 to 1000, not -1"):
        PatchConfig(frame_negatives=-1)
    with pytest.raises(LqerError, match="`negative_mix`: unknown kind"):
        PatchConfig(negative_mix={"catheter": 1.0})
    from typer.testing import CliRunner

    from lqer.cli.data import app

    args = ["make-patches", str(adsd / "images"), "--annotations", str(adsd / "annotations"),
            "--out", str(tmp_path / "p"), "--mine", "lqer-padsd"]  # fmt: skip
    result = CliRunner().invoke(app, [*args, "--mine-per-frame", "0"])
    assert "--mine-per-frame must be 1 to 1000" in as_flags(str(result.exception))
    assert not (tmp_path / "p").exists()


def test_given_squares_become_mined_negatives_unless_they_cannot(adsd, tmp_path):
    box = read_voc(adsd / "annotations" / "14_002_5_0016.xml")[0]  # (179,148)-(206,167)
    mined = {"14_002_5_0016": [(10, 20, 48), (170, 140, 48), (480, 0, 48)],
             "14_002_5_0017": [(300, 300, 64)]}  # fmt: skip
    summary = make_patches(adsd / "images", adsd / "annotations", tmp_path / "p", mined=mined)
    found = [r for r in rows(tmp_path / "p") if r["position"] == "mined"]
    assert [(r["frame_id"], r["x"], r["y"], r["size"]) for r in found] == [
        ("14_002_5_0016", "10", "20", "48"), ("14_002_5_0017", "300", "300", "64")
    ]  # fmt: skip
    assert summary.dropped["mined square overlaps a stenosis box"] == 1
    assert summary.dropped["mined square outside the frame"] == 1
    assert overlaps({"x": 170, "y": 140, "size": 48}, box)
    assert found[0]["path"] == "negative/14_002_5_0016_mined_x10_y20_s48.png"


def test_false_windows_skip_candidates_at_a_stenosis():
    box = Box(100, 100, 120, 120)
    detections = [
        Detection(100, 100, 24, 24, 0.99),  # on the stenosis
        Detection(130, 100, 24, 24, 0.9),  # beside it: its 48 px window overlaps the box
        Detection(300, 300, 24, 24, 0.8),
        Detection(0, 0, 24, 24, 0.7),  # its window would start at -12: outside
        Detection(400, 100, 32, 32, 0.6),
        Detection(200, 300, 24, 24, 0.5),
    ]
    assert false_windows(detections, [box], 2, 512, 512) == [(288, 288, 48), (384, 84, 64)]
    assert false_windows(detections, [], 1, 512, 512) == [(88, 88, 48)]


def test_mining_with_the_shipped_model_adds_false_candidates(adsd, tmp_path):
    """Scan the six frames with lqer-padsd, keep 2 false candidates per frame (the cheap scan
    of 48 px windows at half-window steps), and cut them as negatives."""
    import torch
    from typer.testing import CliRunner

    from lqer.cli.data import app
    from lqer.eval.scan import crops
    from lqer.eval.scanners import scorer_for

    args = ["make-patches", str(adsd / "images"), "--annotations", str(adsd / "annotations"),
            "--out", str(tmp_path / "p"), "--mine", "lqer-padsd", "--mine-per-frame", "2",
            "--mine-sizes", "48", "--mine-stride", "0.5", "--device", "cpu",
            "--size", "0"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    mined = [r for r in rows(tmp_path / "p") if r["position"] == "mined"]
    assert len(mined) == 12 and "12 mined" in result.output
    boxes = boxes_of(adsd)
    score, image_size, _ = scorer_for("lqer-padsd", None, "cpu")
    for row in mined:
        x, y, s = int(row["x"]), int(row["y"]), int(row["size"])
        assert s == 48 and row["label"] == "0"
        cx, cy, q = x + s / 2, y + s / 2, s // 4  # the candidate is the central half
        for box in boxes[row["frame_id"]]:
            assert not overlaps(row, box)
            bx, by = box.centre
            assert not (box.xmin <= cx <= box.xmax and box.ymin <= cy <= box.ymax)
            assert not (x + q <= bx <= x + q + s / 2 and y + q <= by <= y + q + s / 2)
        frame = load_gray(row["source"])
        window = crops(torch.from_numpy(frame), torch.tensor([[x, y]]), s, image_size)
        assert score(window)[0] >= 0.05  # a candidate of the scan: above its min_score
        np.testing.assert_array_equal(load_gray(tmp_path / "p" / row["path"]),
                                      frame[y : y + s, x : x + s])  # fmt: skip


def test_the_output_is_checked_before_the_slow_scan(adsd, tmp_path):
    from typer.testing import CliRunner

    from lqer.cli.data import app

    data = tmp_path / "adsd"
    shutil.copytree(adsd, data)
    args = ["make-patches", str(data / "images"), "--annotations", str(data / "annotations"),
            "--mine", "lqer-padsd", "--out", str(data / "images" / "p")]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert isinstance(result.exception, LqerError)
    assert "lies inside the frames folder" in str(result.exception)
    assert "mining" not in result.output

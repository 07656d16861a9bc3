"""Detection metrics (`lqer.eval.detection`) on hand-made cases whose answers are worked out by
hand, COCO polygons read into boxes, properties on random frames, and `lqer scan --format
coco` on real ARCADE frames writing every metric."""

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lqer.data.annotations import Box, Detection, read_coco
from lqer.errors import LqerError
from lqer.eval.detection import (
    FP_RATES,
    box_report,
    challenge_score,
    coco_ap,
    detection_summary,
    dice,
    frame_challenge_score,
    froc,
    hits,
    plot_froc,
    region,
    score_at,
    sensitivity_at,
)

PROPERTY = settings(max_examples=60, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow])  # fmt: skip


def test_a_candidate_finds_a_stenosis_by_centres_up_to_three_times_its_size():
    stenosis = Box(100, 100, 120, 110)  # longer side 20
    assert hits(Detection(105, 100, 10, 10, 0.5), stenosis)  # its centre inside the stenosis
    assert hits(Detection(60, 60, 60, 60, 0.5), stenosis)  # the stenosis centre inside it
    assert not hits(Detection(130, 100, 10, 10, 0.5), stenosis)  # beside it
    # a frame-sized candidate covers every stenosis, but finds none
    assert not hits(Detection(0, 0, 512, 512, 0.5), stenosis)
    assert hits(Detection(80, 75, 60, 60, 0.5), stenosis)  # 3 x 20: still counts
    assert not hits(Detection(80, 75, 61, 61, 0.5), stenosis)  # over 3 x 20


# Three frames: two stenoses in f1, one in f2 and none in f3. Worked by hand, best first:
#   0.9 finds A       found 1/3, FP 0   0/3 FP/frame
#   0.8 false         found 1/3, FP 1   1/3
#   0.7 finds C       found 2/3, FP 1   1/3
#   0.6 false         found 2/3, FP 2   2/3
#   0.5 false (f3)    found 2/3, FP 3   1
#   0.4 false (f3)    found 2/3, FP 4   4/3
#   0.3 finds B       found 3/3, FP 4   4/3
#   0.2 huge over C   found 3/3, FP 5   5/3  (not a find: 200 px > 3 x 20 px)
A, B, C = Box(10, 10, 30, 30), Box(100, 100, 120, 120), Box(50, 50, 70, 70)
TRUTH = {"f1": [A, B], "f2": [C], "f3": []}
FOUND = {
    "f1": [Detection(12, 12, 16, 16, 0.9), Detection(300, 300, 20, 20, 0.6),
           Detection(104, 104, 12, 12, 0.3)],
    "f2": [Detection(400, 10, 20, 20, 0.8), Detection(55, 55, 10, 10, 0.7),
           Detection(-40, -40, 200, 200, 0.2)],
    "f3": [Detection(200, 200, 20, 20, 0.5), Detection(10, 10, 30, 30, 0.4)],
}  # fmt: skip


def test_froc_curve_and_table_on_three_frames():
    curve = froc(FOUND, TRUTH)
    assert [s.threshold for s in curve] == [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2]
    assert [s.found for s in curve] == [1, 1, 2, 2, 2, 2, 3, 3]
    assert [s.false_positives for s in curve] == [0, 1, 1, 2, 3, 4, 4, 5]
    assert all(s.boxes == 3 and s.frames == 3 for s in curve)
    table = sensitivity_at(curve)
    assert list(table) == list(FP_RATES)
    assert table == pytest.approx({0.25: 1 / 3, 0.5: 2 / 3, 1: 2 / 3, 2: 1, 4: 1, 8: 1})
    assert curve == [score_at(FOUND, TRUTH, s.threshold) for s in curve]  # one rule, two ways
    at = score_at(FOUND, TRUTH, 0.5)
    assert (at.found, at.false_positives, at.sensitivity, at.fp_per_frame) == (2, 3, 2 / 3, 1)


def test_a_rate_below_the_best_candidates_false_positives_scores_zero():
    truth = {"a": [A], "b": []}
    found = {"a": [Detection(12, 12, 16, 16, 0.4)], "b": [Detection(300, 300, 20, 20, 0.9)]}
    # the best candidate is false: 0.5 FP/frame before anything is found
    assert sensitivity_at(froc(found, truth)) == {0.25: 0, 0.5: 1, 1: 1, 2: 1, 4: 1, 8: 1}
    assert sensitivity_at(froc({}, truth)) == dict.fromkeys(FP_RATES, 0.0)


def test_box_report_marks_each_stenosis_found_or_missed_at_the_threshold():
    rows = box_report(FOUND, TRUTH, 0.5)
    assert [(r["frame_id"], r["xmin"], r["hit"], r["best_score"]) for r in rows] == [
        ("f1", 10, True, 0.9), ("f1", 100, False, 0.3), ("f2", 50, True, 0.7)]  # fmt: skip
    assert rows[0]["best_iou"] == round(16 * 16 / 400, 3)  # the 16 px box inside the 20 px one


def test_coco_ap_of_hand_made_cases():
    truth = {"a": [Box(10, 10, 30, 30)], "b": []}
    perfect = {"a": [Detection(10, 10, 20, 20, 0.8)]}
    assert coco_ap(perfect, truth) == pytest.approx((1.0, 1.0))
    # shifted 4 px: IoU 320 / 480 = 0.667, a match at IoU 0.50, 0.55, 0.60, 0.65 of the ten
    assert coco_ap({"a": [Detection(14, 10, 20, 20, 0.8)]}, truth) == pytest.approx((1.0, 0.4))
    # a false positive on the frame without stenosis, ranked first, halves the precision
    first = {**perfect, "b": [Detection(200, 200, 20, 20, 0.9)]}
    assert coco_ap(first, truth) == pytest.approx((0.5, 0.5))
    last = {**perfect, "b": [Detection(200, 200, 20, 20, 0.1)]}
    assert coco_ap(last, truth) == pytest.approx((1.0, 1.0))
    assert coco_ap({}, truth) == (0.0, 0.0)
    assert all(math.isnan(v) for v in coco_ap(perfect, {"a": []}))


def test_dice_and_the_challenge_score_of_hand_made_frames():
    stenosis = Box(10, 10, 30, 30)
    half = Detection(20, 10, 20, 20, 0.9)  # 200 of 400 px shared: Dice 400 / 800
    assert dice(region(half), region(stenosis)) == 0.5
    assert challenge_score({"a": [Detection(10, 10, 20, 20, 0.9)]}, {"a": [stenosis]}, 0.5) == 1
    assert challenge_score({"a": [half]}, {"a": [stenosis]}, 0.5) == 0.5
    assert challenge_score({"a": [half]}, {"a": [stenosis]}, 0.95) == 0  # below: not claimed
    # a triangle outline (200 px) inside the 20 px box (400 px): Dice 400 / 600
    triangle = Box(10, 10, 30, 30, polygon=(((10, 10), (30, 10), (10, 30)),))
    box = Detection(10, 10, 20, 20, 0.9)
    assert challenge_score({"a": [box]}, {"a": [triangle]}, 0.5) == pytest.approx(2 / 3)
    assert frame_challenge_score([], []) == 1  # nothing to find, nothing claimed
    assert frame_challenge_score([region(box)], []) == 0  # claims on a frame without stenosis
    assert frame_challenge_score([], [region(stenosis)]) == 0  # a missed stenosis
    other = Box(100, 100, 120, 120)
    # one stenosis found exactly, one missed: (1 + 0) / 2; a false claim beside: (1 + 0) / 2
    assert challenge_score({"a": [box]}, {"a": [stenosis, other]}, 0.5) == 0.5
    far = Detection(300, 300, 20, 20, 0.9)
    assert challenge_score({"a": [box, far]}, {"a": [stenosis]}, 0.5) == 0.5
    # over frames: the mean of 1 (exact), 1 (empty, nothing claimed) and 0 (missed)
    truth = {"a": [stenosis], "b": [], "c": [other]}
    assert challenge_score({"a": [box]}, truth, 0.5) == pytest.approx(2 / 3)


def test_a_self_crossing_outline_is_read_as_its_two_triangles():
    bowtie = Box(0, 0, 20, 20, polygon=(((0, 0), (20, 20), (20, 0), (0, 20)),))
    assert region(bowtie).area == pytest.approx(200)
    two_parts = Box(0, 0, 30, 10, polygon=(((0, 0), (10, 0), (10, 10), (0, 10)),
                                           ((20, 0), (30, 0), (30, 10), (20, 10))))  # fmt: skip
    assert region(two_parts).area == 200
    assert region(Box(0, 0, 10, 10, polygon=(((0, 0), (5, 5), (10, 10)),))).area == 100  # a line


def test_detection_summary_is_json_with_every_metric():
    summary = detection_summary(FOUND, TRUTH, 0.5)
    json.dumps(summary, allow_nan=False)
    assert summary["froc"] == {"0.25": 0.333333, "0.5": 0.666667, "1": 0.666667, "2": 1.0,
                               "4": 1.0, "8": 1.0}  # fmt: skip
    assert summary["froc_mean"] == round((1 / 3 + 2 / 3 + 2 / 3 + 1 + 1 + 1) / 6, 6)
    assert (summary["found"], summary["missed"], summary["false_positives"]) == (2, 1, 3)
    assert 0 < summary["ap50"] < 1 and 0 <= summary["ap"] <= summary["ap50"]
    assert 0 < summary["challenge_score"] < 1
    empty = detection_summary({}, {"a": []}, 0.5)
    json.dumps(empty, allow_nan=False)  # NaN is written as null
    assert empty["ap"] is None and empty["froc"]["1"] is None and empty["challenge_score"] == 1


def test_froc_plot_is_drawn_without_candidates_or_stenoses(tmp_path):
    for found, truth in (({}, TRUTH), (FOUND, {"f3": []}), (FOUND, TRUTH)):
        curve = froc(found, truth)
        plot_froc(curve, score_at(found, truth, 0.5), tmp_path / "froc.png")
        assert (tmp_path / "froc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        (tmp_path / "froc.png").unlink()


def test_coco_polygons_are_read_with_their_boxes(tmp_path):
    data = {
        "images": [{"id": 1, "file_name": "1.png"}],
        "categories": [{"id": 26, "name": "stenosis"}],
        "annotations": [
            {"image_id": 1, "category_id": 26, "bbox": [0, 0, 10, 10],
             "segmentation": [[0, 0, 10, 0, 10, 10], [20, 20, 30, 20, 30, 30, 20, 30]]},
            {"image_id": 1, "category_id": 26, "bbox": [0, 0, 10, 10],
             "segmentation": {"counts": "abc", "size": [512, 512]}},  # RLE: the box stands in
            {"image_id": 1, "category_id": 26, "bbox": [0, 0, 10, 10], "segmentation": [[1, 2]]},
            {"image_id": 1, "category_id": 26, "bbox": [0, 0, 10, 10]},
        ],
    }  # fmt: skip
    path = tmp_path / "coco.json"
    path.write_text(json.dumps(data))
    boxes = read_coco(path)["1"]
    assert boxes[0].polygon == (((0, 0), (10, 0), (10, 10)),
                                ((20, 20), (30, 20), (30, 30), (20, 30)))  # fmt: skip
    assert [b.polygon for b in boxes[1:]] == [None, None, None]
    assert boxes[0] == Box(0, 0, 10, 10, "stenosis", boxes[0].polygon)
    assert "polygon" not in repr(boxes[0])  # warnings that show a box stay one short line
    hash(boxes[0])
    not_coco = "not a COCO detection file.*segmentation"
    bad_ones = [([[0, 0, 10]], not_coco), ([0, 0, 1, 1, 2, 2], not_coco),
                ([[0, 0, "x", 1, 2, 3]], "segmentation coordinates must be numbers"),
                ([[0, 0, 1e999, 1, 2, 3]], "segmentation coordinates must be finite")]  # fmt: skip
    for bad, message in bad_ones:
        data["annotations"][0]["segmentation"] = bad
        path.write_text(json.dumps(data))
        with pytest.raises(LqerError, match=f"coco.json: {message}"):
            read_coco(path)


def test_arcade_polygons_are_read(datasets_dir):
    boxes = read_coco(datasets_dir / "ARCADE-stenosis/val/annotations/val.json")
    assert len(boxes) == 200 and sum(map(len, boxes.values())) == 406
    assert all(b.polygon for frame in boxes.values() for b in frame)
    first = boxes["1"][0]  # area 3314 in the file; its bbox bounds the outline
    assert region(first).area == pytest.approx(3314, rel=0.01)
    assert region(first).bounds == pytest.approx((first.xmin, first.ymin, first.xmax, first.ymax))


SIDE = st.integers(2, 60)
XY = st.integers(0, 200)
BOX = st.builds(lambda x, y, w, h: Box(x, y, x + w, y + h), XY, XY, SIDE, SIDE)
CANDIDATE = st.builds(Detection, XY, XY, st.integers(2, 200),
                      st.integers(2, 200), st.sampled_from([0.1, 0.3, 0.5, 0.7, 0.9]))  # fmt: skip
FRAMES = st.dictionaries(st.sampled_from("abcd"), st.tuples(st.lists(BOX, max_size=3),
                                                            st.lists(CANDIDATE, max_size=5)),
                         min_size=1)  # fmt: skip


@PROPERTY
@given(frames=FRAMES, threshold=st.floats(0, 1))
def test_metrics_stay_in_range_and_froc_never_falls(frames, threshold):
    truth = {k: boxes for k, (boxes, _) in frames.items()}
    found = {k: candidates for k, (_, candidates) in frames.items()}
    assert 0 <= challenge_score(found, truth, threshold) <= 1
    curve = froc(found, truth)
    assert curve == [score_at(found, truth, s.threshold) for s in curve]
    for before, after in zip(curve, curve[1:], strict=False):
        assert before.threshold > after.threshold
        assert before.found <= after.found and before.false_positives <= after.false_positives
    if any(truth.values()):
        table = list(sensitivity_at(curve).values())
        assert all(0 <= a <= b <= 1 for a, b in zip(table, table[1:], strict=False))
        ap50, ap = coco_ap(found, truth)
        assert 0 <= ap <= ap50 <= 1 or (not any(found.values()) and ap50 == ap == 0)


def test_scan_with_coco_annotations_writes_every_metric_on_arcade_frames(datasets_dir, tmp_path):
    """Two ARCADE val frames through `scan --format coco`: the summary holds every metric and
    the outlines, not only the boxes, reach the challenge score."""
    from lqer.eval.scan import ScanConfig
    from lqer.eval.scan_files import scan_files

    arcade = datasets_dir / "ARCADE-stenosis/val"
    out = tmp_path / "scan"
    frames = [arcade / "images/1.png", arcade / "images/10.png"]
    summary = scan_files("lqer-padsd", frames, out, ScanConfig(sizes=(48,), stride=0.5),
                         annotations=arcade / "annotations/val.json", fmt="coco", device="cpu",
                         progress=False)  # fmt: skip
    written = json.loads((out / "summary.json").read_text())
    assert written == json.loads(json.dumps(summary))
    truth = {k: v for k, v in read_coco(arcade / "annotations/val.json").items()
             if k in ("1", "10")}  # fmt: skip
    assert written["boxes"] == sum(map(len, truth.values()))
    assert set(written["froc"]) == {"0.25", "0.5", "1", "2", "4", "8"}
    for key in ("ap50", "ap", "challenge_score", "froc_mean"):
        assert 0 <= written[key] <= 1, key
    with open(out / "boxes.json") as f:
        rows = json.load(f)
    found = {k: [Detection(r["x"], r["y"], r["w"], r["h"], r["score"]) for r in rows
                 if r["source"] == f"{k}.png"] for k in truth}  # fmt: skip
    threshold = written["threshold"]
    assert written["challenge_score"] == round(challenge_score(found, truth, threshold), 6)
    as_boxes = {k: [Box(b.xmin, b.ymin, b.xmax, b.ymax) for b in v] for k, v in truth.items()}
    if any(d.score >= threshold for v in found.values() for d in v):  # then outlines matter
        assert round(challenge_score(found, as_boxes, threshold), 6) != written["challenge_score"]
    assert (out / "froc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

"""The one predictions file: what `lqer predict`, runs and comparisons write reads back."""

import json

import numpy as np
import pytest
import torch

from lqer.data.dataset import ImageSet
from lqer.errors import LqerError
from lqer.eval.predictions import SKIPPED, prediction_rows, read_predictions, write_predictions
from lqer.experiments import variants


def image_set(labels, bad=()):
    n = len(labels)
    paths = [f"img{i}.png" for i in range(n)]
    return ImageSet(torch.zeros(n, 1, 4, 4, dtype=torch.uint8), torch.tensor(labels), paths,
                    bad=list(bad))  # fmt: skip


def test_rows_round_trip_with_skipped_files_and_unknown_labels(tmp_path):
    known = image_set([0, 1, 1], bad=[("broken.png", "truncated")])
    unknown = image_set([-1, -1])
    rows = prediction_rows(known, np.array([0.2, 0.7, 0.4]), "lqer (q=zeros)", "test")
    rows += prediction_rows(unknown, np.array([0.9, 0.1]), "lqer", threshold=0.95)
    write_predictions(tmp_path / "p.csv", rows)
    read = read_predictions(tmp_path / "p.csv")
    assert [r.label for r in read] == ["no_stenosis", "stenosis", "no_stenosis", SKIPPED,
                                       "no_stenosis", "no_stenosis"]  # fmt: skip
    assert [r.true_label for r in read] == [0, 1, 1, None, None, None]
    assert read[3].reason == "truncated" and read[3].prob is None
    assert read[0].model == "lqer (q=zeros)" and read[0].split == "test" and read[4].split == ""
    assert read[:3] == rows[:3]


def test_comparison_reads_a_variant_and_leaves_out_skipped_files(tmp_path):
    val, test = image_set([0, 1]), image_set([1, 0, 1], bad=[("x.png", "bad")])
    rows = prediction_rows(val, np.array([0.3, 0.6]), "lqer (q=shuffle)", "val")
    rows += prediction_rows(test, np.array([0.8, 0.1, 0.5]), "lqer (q=shuffle)", "test")
    write_predictions(tmp_path / "predictions_q-shuffle.csv", rows)
    pred = variants.read_predictions(tmp_path / "predictions_q-shuffle.csv", seed=3)
    assert pred.name == "lqer (q=shuffle)" and pred.seed == 3
    assert pred.val_labels.tolist() == [0, 1] and pred.test_probs.tolist() == [0.8, 0.1, 0.5]
    assert pred.test_paths == ["img0.png", "img1.png", "img2.png"]


def test_a_file_of_another_format_is_an_error_naming_it(tmp_path):
    old = tmp_path / "predictions.csv"
    old.write_text("split,path,label,prob\ntest,a.png,1,0.5\n")
    with pytest.raises(LqerError, match="predictions.csv: not a predictions file"):
        read_predictions(old)


def test_predict_prints_a_table_or_json_with_the_labels_the_folders_give(tmp_path):
    import json

    from typer.testing import CliRunner

    from lqer.cli import _register, app
    from lqer.sample import SAMPLE_DIR

    _register()
    args = ["predict", str(SAMPLE_DIR / "test"), "--checkpoint", "lqer-padsd", "--device", "cpu"]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "p.csv")])
    assert result.exit_code == 0, result.output
    rows = read_predictions(tmp_path / "p.csv")
    truth = {r.file: r.true_label for r in rows}
    assert {truth[f] for f in truth if "/positive/" in f} == {1}
    assert {truth[f] for f in truth if "/negative/" in f} == {0}
    header, first = result.output.splitlines()[:2]
    assert header.split() == ["file", "P(stenosis)", "call", "true", "label", "note"]
    name = rows[0].file.rsplit("/", 2)
    assert first.split()[:4] == [
        f"{name[1]}/{name[2]}",
        f"{rows[0].prob:.3f}",
        rows[0].label,
        "no_stenosis" if rows[0].true_label == 0 else "stenosis",
    ]
    assert f"... and {len(rows) - 20} more" in result.output
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "q.csv"), "--json"])
    shown = json.loads(result.output)
    assert [(r["file"], r["prob"], r["true_label"]) for r in shown] == [
        (r.file, r.prob, r.true_label) for r in read_predictions(tmp_path / "q.csv")
    ]


def test_tta_averages_each_patch_with_its_mirror(tmp_path, monkeypatch, capsys):
    from helpers import run_cli
    from typer.testing import CliRunner

    from lqer.cli import _register, app
    from lqer.eval.evaluate import predict_logits
    from lqer.sample import SAMPLE_DIR
    from lqer.weights import LQER_PADSD

    model = LQER_PADSD.load()
    images = torch.randint(0, 256, (6, 1, 40, 40), dtype=torch.uint8)
    plain, mirrored = predict_logits(model, images, 32), predict_logits(model, images.flip(-1), 32)
    assert not torch.allclose(plain, mirrored)  # the model is not mirror-symmetric
    both = predict_logits(model, images, 32, flip=True)
    torch.testing.assert_close(both, (plain + mirrored) / 2, rtol=1e-4, atol=1e-5)

    _register()
    args = ["evaluate", "--data", str(SAMPLE_DIR / "test"), "--device", "cpu"]
    result = CliRunner().invoke(app, [*args, "--tta", "--out", str(tmp_path / "e.json")])
    assert result.exit_code == 0, result.output
    scored = json.loads((tmp_path / "e.json").read_text())
    plain = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "f.json")])
    assert scored["tta"] and not json.loads((tmp_path / "f.json").read_text())["tta"]
    assert plain.exit_code == 0 and scored["n"] > 0
    code, _, err = run_cli(monkeypatch, capsys, "predict", SAMPLE_DIR / "test", "--onnx", "m.onnx",
                           "--tta", "--out", tmp_path / "p.csv")  # fmt: skip
    assert code == 2 and "--tta works with --checkpoint" in err

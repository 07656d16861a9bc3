"""The one predictions file: what `lqer predict`, runs and comparisons write reads back."""

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

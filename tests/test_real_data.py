"""Real P-ADSD patches, a few hundred CPU training steps: LQER must learn well above chance.

The published `validation/` split (subsampled) serves as test; selection uses a hold-out of
`train/`.
"""

import json

import pytest

from lqer.config import load_config
from lqer.train import fit


@pytest.mark.slow
def test_lqer_learns_on_real_padsd(datasets_dir, tmp_path):
    cfg = load_config(
        None,
        [
            f"data.root={datasets_dir / 'P-ADSD'}", "data.limit=3000", "data.image_size=32",
            "model.name=lqer", "model.weights=none", "train.epochs=3", "train.batch_size=32",
            "train.lr_backbone=1e-3", "train.lr_head=3e-3", "train.progress=false",
            f"out_dir={tmp_path / 'run'}",
        ],
    )  # fmt: skip
    run = fit(cfg)
    history = [json.loads(line) for line in (run / "history.jsonl").open()]
    test = json.loads((run / "test_metrics.json").read_text())
    assert max(row["val_auc"] for row in history) > 0.70
    assert test["n"] == 3000 and test["auc"] > 0.70

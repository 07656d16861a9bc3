"""Dense scanning: the dilated trunk gives the strided network's numbers at every half step,
and a dense scan of a real frame runs through `lqer scan --dense`."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import run_lqer

from lqer.eval.dense import DenseScanner, dilated_trunk
from lqer.eval.scan import ScanConfig
from lqer.models.checkpoint import load_checkpoint


@pytest.mark.parametrize("stages", [1, 2])
def test_the_dilated_trunk_keeps_the_strided_numbers(stages):
    """Dilation instead of stride: every 2**stages-th output is the strided network's own; the
    ones between are those of the shifted windows (not compared: at 128 px every output sees
    the image border, which a shift moves)."""
    model, _, _ = load_checkpoint("lqer-padsd")
    strided = torch.nn.Sequential(*list(model.backbone.children())[:-2]).eval()
    dense = dilated_trunk(model.backbone, stages).eval()
    x = torch.randn(1, 3, 128, 128)
    with torch.no_grad():
        full = dense(x)
        assert full.shape[-1] == 128 // (32 // 2**stages)
        assert torch.allclose(full[..., :: 2**stages, :: 2**stages], strided(x), atol=1e-4)


def test_dense_windows_tile_the_frame_at_half_their_side(datasets_dir):
    model, cfg, _ = load_checkpoint("lqer-padsd")
    frame = torch.zeros(512, 512, dtype=torch.uint8)
    corners, probs = DenseScanner(model, 32, ScanConfig()).window_scores(frame, 64)
    assert len(corners) == len(probs) == 15 * 15  # (512 - 64) / 32 + 1 per side
    assert corners[:, 0].unique().tolist() == list(range(0, 449, 32))
    assert ((probs >= 0) & (probs <= 1)).all()


def test_scan_dense_writes_the_same_outputs(datasets_dir, tmp_path):
    frame = datasets_dir / "ADSD-sample" / "images" / "14_002_5_0016.bmp"
    out = tmp_path / "scan"
    result = run_lqer("scan", str(frame), "--checkpoint", "lqer-padsd", "--dense", "--stride",
                      "0.5", "--out", str(out))  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] == 1 and (out / "14_002_5_0016_heatmap.png").is_file()
    refused = run_lqer("scan", str(frame), "--checkpoint", "lqer-padsd", "--dense", "--stride",
                       "0.3", "--out", str(tmp_path / "x"))  # fmt: skip
    assert refused.returncode == 2 and "--dense" in refused.stderr

"""`lqer explain`: Grad-CAM maps of the shipped model, the randomisation sanity check of
Adebayo et al. 2018, and the command's files."""

import csv

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr
from typer.testing import CliRunner

from lqer.cli import _register, app
from lqer.data.dataset import _decode
from lqer.errors import as_flags
from lqer.eval.evaluate import predict_proba
from lqer.eval.explain import cam_maps, target_layer
from lqer.models.checkpoint import load_checkpoint

_register()


@pytest.fixture(scope="module")
def patches(datasets_dir):
    folder = datasets_dir / "P-ADSD" / "validation" / "positive"
    return sorted(folder.glob("*.png"))[:8]


def test_the_layer_is_the_deepest_with_a_readable_map():
    model, cfg, _ = load_checkpoint("lqer-padsd")
    assert cfg.data.image_size == 32
    assert target_layer(model, 32) is model.backbone.layer2[-1]  # 4x4; layer3 is 2x2
    assert target_layer(model, 128) is model.backbone.layer4[-1]


def test_maps_of_the_trained_model_differ_from_those_of_random_weights(patches):
    model, cfg, _ = load_checkpoint("lqer-padsd")
    size = cfg.data.image_size
    images = torch.stack([_decode(p, size, 10**8) for p in patches])
    trained = cam_maps(model, images, size)
    torch.manual_seed(0)
    for module in model.modules():  # the cascading randomisation, all at once
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
    random = cam_maps(model, images, size)
    assert trained.shape == random.shape == (8, size, size)
    assert all(m.std() > 0 for m in trained)  # a map that says something
    rho = [spearmanr(a.ravel(), b.ravel()).statistic for a, b in zip(trained, random, strict=True)]
    assert np.nanmean(rho) < 0.5, rho
    print(f"rank correlation trained vs random: mean {np.nanmean(rho):.3f}")


def test_explain_command_writes_overlays_and_the_predict_probabilities(patches, tmp_path):
    out = tmp_path / "explain"
    args = ["explain", *map(str, patches[:2]), "--checkpoint", "lqer-padsd", "--out", str(out),
            "--device", "cpu"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    with open(out / "explain.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    model, cfg, _ = load_checkpoint("lqer-padsd")
    images = torch.stack([_decode(p, 32, 10**8) for p in patches[:2]])
    expected = predict_proba(model, images, 32)
    np.testing.assert_allclose([float(r["prob_stenosis"]) for r in rows], expected, atol=1e-6)
    for p in patches[:2]:
        for method in ("gradcam", "gradcam++"):
            assert (out / f"{p.stem}_{method}.png").is_file()
    result = CliRunner().invoke(app, [*args, "--method", "saliency"], standalone_mode=False)
    assert "--method must be one of gradcam, gradcam++" in as_flags(str(result.exception))


def test_files_of_one_name_get_their_own_pictures_beside_a_colour_bar(patches, tmp_path):
    from PIL import Image

    from lqer.eval.explain import explain_files

    for folder, source in (("positive", patches[0]), ("negative", patches[1])):
        (tmp_path / "in" / folder).mkdir(parents=True)
        (tmp_path / "in" / folder / "0025.png").write_bytes(source.read_bytes())
    rows = explain_files("lqer-padsd", [tmp_path / "in"], tmp_path / "out", ("gradcam",),
                         device="cpu", progress=False)  # fmt: skip
    assert [row["id"] for row in rows] == ["negative_0025", "positive_0025"]
    assert rows[0]["prob_stenosis"] != rows[1]["prob_stenosis"]
    picture = Image.open(tmp_path / "out" / "positive_0025_gradcam.png")
    assert picture.height >= 256 and picture.width >= 2 * 256  # the patch is 40-50 px
    bar = np.asarray(picture.convert("RGB"))[:, int(picture.width * 0.86) :].reshape(-1, 3)
    assert len({tuple(px) for px in bar}) > 50  # the colour bar's gradient, right of the map

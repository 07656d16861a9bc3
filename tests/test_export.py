"""ONNX export: the circuit's Fourier series, parity with PyTorch on real patches, and
`lqer predict --onnx`."""

import csv
import math

import pytest
import torch
from typer.testing import CliRunner

from lqer.cli import _register, app
from lqer.errors import LqerError
from lqer.eval import export
from lqer.quantum import Circuit, QuantumLayer
from lqer.quantum.fourier import fourier_form
from lqer.quantum.layer import Execution
from lqer.quantum.noise import Noise

_register()
RUNNER = CliRunner()


@pytest.mark.parametrize(("encoding", "layers", "noise"), [
    ("ry", 2, Noise()), ("rx", 3, Noise()), ("rx", 1, Noise()),
    ("ry", 2, Noise(depolarizing=0.1, amplitude_damping=0.05, readout_error=0.02)),
])  # fmt: skip
def test_the_fourier_series_is_the_circuit(encoding, layers, noise):
    torch.manual_seed(0)
    circuit = Circuit(4, layers, encoding=encoding)
    layer = QuantumLayer(circuit, Execution(noise=noise)).double()
    with torch.no_grad():
        layer.weights.uniform_(0, 2 * math.pi)
    form = fourier_form(layer, torch.float64)
    assert form.degrees == [layers] * 4
    angles = (torch.rand(200, 4, dtype=torch.float64) - 0.5) * 4 * math.pi
    torch.testing.assert_close(form(angles), layer(angles), atol=1e-10, rtol=0)


def test_a_circuit_that_multiplies_inputs_is_refused():
    layer = QuantumLayer(Circuit(4, 2, ansatz="iqp"))
    with pytest.raises(LqerError, match="products of inputs"):
        fourier_form(layer)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("onnx") / "model.onnx"
    result = RUNNER.invoke(app, ["export", "--checkpoint", "lqer-padsd", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out, result.output


def test_export_matches_pytorch_on_real_patches(exported):
    out, output = exported
    assert "ONNX Runtime matches PyTorch on 250 patches" in output
    import onnx

    model = onnx.load(str(out))
    assert model.opset_import[0].version >= 17
    ops = {node.op_type for node in model.graph.node}
    assert {"Cos", "Sin", "Conv"} <= ops  # the circuit's series and the backbone, standard ops


def test_predict_with_onnx_gives_the_probabilities_of_pytorch(exported, tmp_path):
    out, _ = exported
    sample = str(export.SAMPLE)
    rows = {}
    for flag, model in (("--onnx", str(out)), ("--checkpoint", "lqer-padsd")):
        path = tmp_path / f"{flag[2:]}.csv"
        result = RUNNER.invoke(app, ["predict", sample, flag, model, "--out", str(path)])
        assert result.exit_code == 0, result.output
        assert "threshold 0.51" in result.output
        with open(path, newline="") as f:
            rows[flag] = list(csv.DictReader(f))
    assert len(rows["--onnx"]) == len(rows["--checkpoint"]) == 250
    for a, b in zip(rows["--onnx"], rows["--checkpoint"], strict=True):
        assert a["file"] == b["file"] and a["label"] == b["label"]
        assert abs(float(a["prob_stenosis"]) - float(b["prob_stenosis"])) < 1e-4


def test_export_fails_and_writes_nothing_without_parity(tmp_path, monkeypatch):
    monkeypatch.setattr(export, "TOLERANCE", 0.0)  # no float32 graph matches exactly
    out = tmp_path / "model.onnx"
    with pytest.raises(LqerError, match="differs from PyTorch"):
        export.export_onnx("lqer-padsd", out, export.SAMPLE)
    assert list(tmp_path.iterdir()) == []


def test_a_file_that_is_not_an_lqer_export_is_a_clear_error(tmp_path):
    bogus = tmp_path / "x.onnx"
    bogus.write_bytes(b"not a model")
    result = RUNNER.invoke(app, ["predict", str(export.SAMPLE), "--onnx", str(bogus)],
                           standalone_mode=False)  # fmt: skip
    assert "not a loadable ONNX model" in str(result.exception)
    result = RUNNER.invoke(app, ["predict", str(export.SAMPLE), "--onnx", str(bogus),
                                 "--checkpoint", "lqer-padsd"], standalone_mode=False)  # fmt: skip
    assert "give --checkpoint or --onnx, not both" in str(result.exception)


def test_scan_with_onnx_runtime_finds_what_pytorch_finds(exported, datasets_dir):
    from lqer.data.images import load_gray
    from lqer.eval.scan import ScanConfig, scan_frame, torch_scorer
    from lqer.models.checkpoint import load_checkpoint

    frame = load_gray(datasets_dir / "ADSD-sample/images/14_002_5_0016.bmp")[:160, 120:280]
    model, cfg, _ = load_checkpoint("lqer-padsd")
    scan = ScanConfig(stride=0.5)
    heat_pt, found_pt = scan_frame(torch_scorer(model, 32), frame, 32, scan)
    heat_ox, found_ox = scan_frame(export.OnnxModel(exported[0]).predict, frame, 32, scan)
    assert abs(heat_pt - heat_ox).max() < 1e-4
    assert [(d.x, d.y) for d in found_pt] == [(d.x, d.y) for d in found_ox]

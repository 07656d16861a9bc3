import pytest
import torch
from torchvision.models import resnet18

from lqer.config import ModelConfig, QuantumConfig
from lqer.errors import LqerError
from lqer.models.backbone import resnet18_backbone
from lqer.models.configured import from_config


def test_lqer_shapes_and_fusion():
    model = from_config(ModelConfig(quantum=QuantumConfig(n_qubits=3, n_layers=2)))
    assert model.classifier.in_features == 512 + 3
    logits = model(torch.randn(2, 3, 32, 32))
    assert logits.shape == (2, 2)
    q = model.head(model.backbone(torch.randn(5, 3, 32, 32)))
    assert q.shape == (5, 3) and q.abs().max() <= 1


def test_every_part_gets_gradients():
    model = from_config(ModelConfig())
    model(torch.randn(4, 3, 32, 32)).sum().backward()
    for name in ("head.projection.weight", "head.quantum.weights", "classifier.weight"):
        grad = model.get_parameter(name).grad
        assert grad is not None and grad.abs().sum() > 0, name
    groups = model.parameter_groups()
    assert len(groups["backbone"]) + len(groups["head"]) == len(list(model.parameters()))
    assert any(p is model.head.quantum.weights for p in groups["head"])


def test_resnet18_baseline_has_no_circuit():
    model = from_config(ModelConfig(name="resnet18"))
    assert model.head is None and model.classifier.in_features == 512


def test_weights_from_a_local_file(tmp_path):
    reference = resnet18(weights=None)
    torch.save(reference.state_dict(), tmp_path / "r18.pth")
    backbone = resnet18_backbone(str(tmp_path / "r18.pth"))
    assert torch.equal(backbone.conv1.weight, reference.conv1.weight)


def test_bad_weights_files(tmp_path):
    with pytest.raises(LqerError, match="neither"):
        resnet18_backbone(str(tmp_path / "missing.pth"))
    (tmp_path / "junk.pth").write_bytes(b"junk")
    with pytest.raises(LqerError, match="junk.pth"):
        resnet18_backbone(str(tmp_path / "junk.pth"))
    torch.save({"foo": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(LqerError, match="not a ResNet18 state dict"):
        resnet18_backbone(str(tmp_path / "other.pth"))


def test_imagenet_weights_without_network_say_where_to_put_them(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def no_network(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr("torchvision.models._api.load_state_dict_from_url", no_network)
    with pytest.raises(LqerError, match=r"resnet18-f37072fd\.pth"):
        resnet18_backbone("imagenet")


def test_image_input_norm_ignores_each_image_brightness_and_contrast(tmp_path):
    from lqer.config import load_config
    from lqer.models.checkpoint import load_checkpoint, save_checkpoint

    torch.manual_seed(0)
    x = torch.randn(4, 3, 32, 32)
    shifted = x * torch.tensor([0.5, 1.0, 2.0, 3.0]).view(4, 1, 1, 1) + 0.7
    fixed = from_config(ModelConfig(name="resnet18")).eval()
    assert not torch.allclose(fixed(x), fixed(shifted), atol=1e-3)
    cfg = load_config(None, ["model.name=lqer", "model.input_norm=image"])
    model = from_config(cfg.model).eval()
    torch.testing.assert_close(model(x), model(shifted), atol=1e-4, rtol=1e-4)
    save_checkpoint(tmp_path / "m.pt", model, cfg)  # the setting travels with the weights
    loaded = load_checkpoint(tmp_path / "m.pt")[0].eval()
    torch.testing.assert_close(loaded(shifted), model(x), atol=1e-4, rtol=1e-4)

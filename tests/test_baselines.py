"""Baselines and ablations: shapes, parameter counts, frozen circuit, test-time q ablation."""

import typing

import pytest
import torch

from lqer.config import ModelConfig
from lqer.models import MODELS
from lqer.models.baselines import ClassicalHead
from lqer.models.configured import from_config
from lqer.models.lqer import QuantumHead
from lqer.quantum import Circuit, QuantumLayer

NAMES = ["lqer", "resnet18", "cnn", "qcnn", "lqer-classical", "lqer-separable", "lqer-frozen",
         "lqer-dressed", "classical-dressed"]  # fmt: skip


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("name", NAMES)
def test_every_model_gives_two_logits_and_one_training_interface(name):
    torch.manual_seed(0)
    model = from_config(ModelConfig(name=name))
    images = torch.randn(3, 3, 32, 32)
    logits = model(images)
    assert logits.shape == (3, 2) and torch.isfinite(logits).all()
    groups = model.parameter_groups()
    assert set(groups) == {"backbone", "head"}
    grouped = {id(p) for group in groups.values() for p in group}
    assert grouped == {id(p) for p in model.parameters()}  # every parameter trained, once
    assert len(grouped) == sum(len(group) for group in groups.values())
    logits.sum().backward()
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert all(p.grad is not None for p in trainable)


def test_registry_and_config_agree():
    names = typing.get_args(typing.get_type_hints(ModelConfig)["name"])
    assert set(names) == set(MODELS) == set(NAMES)


@pytest.mark.parametrize("rotation", ["rot", "ry"])
def test_classical_head_has_the_parameter_count_of_projection_plus_circuit(rotation):
    circuit = Circuit(4, 2, rotation=rotation)
    quantum = QuantumHead(512, QuantumLayer(circuit))
    classical = ClassicalHead(512, circuit)
    assert (
        n_params(classical)
        == n_params(quantum)
        == 512 * 4 + 4 + 2 * 4 * (3 if rotation == "rot" else 1)
    )
    full_q = from_config(ModelConfig(name="lqer"))
    full_c = from_config(ModelConfig(name="lqer-classical"))
    assert n_params(full_c) == n_params(full_q)
    q = classical(torch.randn(5, 512))
    assert q.shape == (5, 4) and (q.abs() < 1).all()


@pytest.mark.parametrize("name", ["lqer-dressed", "classical-dressed", "lqer", "lqer-classical"])
def test_projection_norm_auto_is_batch_for_dressed_heads_only(name):
    head = from_config(ModelConfig(name=name)).head
    dressed = name.endswith("dressed")
    assert isinstance(head.norm, torch.nn.BatchNorm1d if dressed else torch.nn.Identity)
    chosen = from_config(ModelConfig(name=name, projection_norm="none" if dressed else "batch"))
    assert isinstance(chosen.head.norm, torch.nn.Identity if dressed else torch.nn.BatchNorm1d)


def test_dressed_twins_keep_equal_parameter_counts_with_the_norm():
    counts = {name: n_params(from_config(ModelConfig(name=name)).head)
              for name in ("lqer-dressed", "classical-dressed")}  # fmt: skip
    assert counts["lqer-dressed"] == counts["classical-dressed"] == 512 * 4 + 4 + 24 + 8


@pytest.mark.parametrize("make", [lambda: QuantumHead(512, QuantumLayer(Circuit(4, 2)), "batch"),
                                  lambda: ClassicalHead(512, Circuit(4, 2), "batch")])  # fmt: skip
def test_batch_norm_keeps_tanh_out_of_saturation_when_features_grow(make):
    # Features 50x their initial scale, as a backbone trained from scratch gives them: without
    # the norm most of tanh(z) sits at +-1, where its gradient is about 0.
    torch.manual_seed(0)
    features = 50 * torch.rand(256, 512)
    head = make()
    saturated = {}
    for norm in ("none", "batch"):
        z = head.projection(features)
        z = head.norm(z) if norm == "batch" else z
        saturated[norm] = (torch.tanh(z).abs() > 0.99).float().mean().item()
    assert saturated["none"] > 0.5 and saturated["batch"] < 0.05


def test_separable_circuit_has_no_entangler():
    model = from_config(ModelConfig(name="lqer-separable"))
    assert model.head.quantum.circuit.entangler == "none"
    assert model.head.quantum.circuit.cnots == ()
    assert from_config(ModelConfig(name="lqer")).head.quantum.circuit.cnots != ()


def test_frozen_circuit_gets_no_gradient_and_keeps_its_weights():
    torch.manual_seed(0)
    model = from_config(ModelConfig(name="lqer-frozen"))
    before = model.head.quantum.weights.detach().clone()
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    model(torch.randn(2, 3, 32, 32)).sum().backward()
    assert model.head.quantum.weights.grad is None
    assert model.head.projection.weight.grad is not None
    optimizer.step()
    assert torch.equal(model.head.quantum.weights, before)
    # a reloaded checkpoint is frozen too: the builder, not the training loop, freezes it
    rebuilt = from_config(ModelConfig(name="lqer-frozen"))
    rebuilt.load_state_dict(model.state_dict())
    assert not rebuilt.head.quantum.weights.requires_grad


def test_qcnn_runs_one_circuit_per_patch_on_the_lqer_simulator():
    model = from_config(ModelConfig(name="qcnn"))
    maps = []
    model.quanvolution.register_forward_hook(lambda m, i, o: maps.append(o))
    model(torch.randn(2, 3, 64, 64))
    assert maps[0].shape == (2, 4, 8, 8) and (maps[0].abs() <= 1 + 1e-6).all()
    assert model.parameter_groups()["backbone"] == []


def capture_q(model):
    seen = []
    model.classifier.register_forward_hook(lambda m, inputs, o: seen.append(inputs[0][:, 512:]))
    return seen


def test_test_time_q_ablation_zeros_and_shuffle():
    torch.manual_seed(0)
    model = from_config(ModelConfig(name="lqer")).eval()
    seen = capture_q(model)
    images = torch.randn(6, 3, 32, 32)
    with torch.no_grad():
        base = model(images)
        model.q_ablation = "zeros"
        zeros = model(images)
        model.q_ablation = "shuffle"
        shuffled = model(images)
    q, q_zero, q_shuffled = seen
    assert q.abs().sum() > 0 and torch.equal(q_zero, torch.zeros_like(q))
    assert not torch.allclose(base, zeros)
    # a permutation of the rows in which no row keeps its own q
    assert sorted(map(tuple, q_shuffled.tolist())) == sorted(map(tuple, q.tolist()))
    assert not (q_shuffled == q).all(dim=1).any()
    assert not torch.allclose(base, shuffled)


@pytest.mark.parametrize("name", ["lqer-dressed", "classical-dressed"])
def test_dressed_models_read_the_head_alone(name):
    torch.manual_seed(0)
    model = from_config(ModelConfig(name=name)).eval()
    assert model.classifier.in_features == 4  # q only, not [f, q]
    images = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        logits = model(images)
        model.q_ablation = "zeros"
        ablated = model(images)
    # with q = 0 every image gets the classifier's bias: nothing bypasses the head
    assert torch.equal(ablated, model.classifier.bias.expand(3, 2))
    assert not torch.allclose(logits, ablated)


def test_dressed_twins_have_equal_parameter_counts():
    quantum, classical = (
        from_config(ModelConfig(name=n)) for n in ("lqer-dressed", "classical-dressed")
    )
    assert n_params(quantum.head) == n_params(classical.head)
    assert n_params(quantum) == n_params(classical)


def test_separable_needs_an_ansatz_with_an_entangler():
    from lqer.errors import LqerError

    cfg = ModelConfig(name="lqer-separable").replace(
        quantum=ModelConfig().quantum.replace(ansatz="strongly-entangling")
    )
    with pytest.raises(LqerError, match="ansatz strongly-entangling"):
        from_config(cfg)

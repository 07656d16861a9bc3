import pytest

from lqer.config import ExperimentConfig, apply_overrides, load_config
from lqer.errors import LqerError


def test_overrides_are_typed():
    cfg = apply_overrides(
        ExperimentConfig(),
        ["train.epochs=3", "train.lr_head=1e-2", "model.quantum.n_layers=3", "data.limit=none"],
    )
    assert cfg.train.epochs == 3 and isinstance(cfg.train.epochs, int)
    assert cfg.train.lr_head == pytest.approx(0.01)
    assert cfg.model.quantum.n_layers == 3
    assert cfg.data.limit is None


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.epochs=many", "train.epochs"),
        ("train.nope=1", "train.nope"),
        ("model.quantum.entangler=star", "entangler"),
        ("epochs", "section.key=value"),
    ],
)
def test_bad_overrides_name_the_key(override, message):
    with pytest.raises(LqerError, match=message):
        apply_overrides(ExperimentConfig(), [override])


def test_yaml_round_trip(tmp_path):
    cfg = apply_overrides(ExperimentConfig(), ["train.seed=7", "model.quantum.n_qubits=5"])
    cfg.save(tmp_path / "c.yaml")
    assert load_config(tmp_path / "c.yaml") == cfg


def test_bad_yaml_names_the_file(tmp_path):
    (tmp_path / "c.yaml").write_text("train: {epochs: [\n")
    with pytest.raises(LqerError, match="c.yaml"):
        load_config(tmp_path / "c.yaml")
    (tmp_path / "d.yaml").write_text("train:\n  bogus: 1\n")
    with pytest.raises(LqerError, match="d.yaml.*train.bogus"):
        load_config(tmp_path / "d.yaml")


def test_shipped_configs_load():
    from pathlib import Path

    configs = sorted((Path(__file__).parents[1] / "configs").glob("*.yaml"))
    assert len(configs) >= 2
    for path in configs:
        load_config(path)

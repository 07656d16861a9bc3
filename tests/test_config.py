import os
from pathlib import Path

import pytest
import torch

from lqer.config import (
    RESUMABLE,
    DataConfig,
    ExperimentConfig,
    ModelConfig,
    QuantumConfig,
    from_dict,
    load_config,
)
from lqer.detection_config import DetectionConfig
from lqer.errors import LqerError
from lqer.guarded_yaml import YamlRefused, safe_yaml, shown
from lqer.models.configured import from_config
from lqer.sections import apply_overrides, changed_keys


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


@pytest.mark.parametrize(
    "override, message",
    [
        ("data.image_size=-5", "data.image_size: must be at least 16, got -5"),
        ("data.image_size=0", "data.image_size: must be at least 16, got 0"),
        ("data.image_size=15", "data.image_size: must be at least 16"),
        ("data.val_fraction=1.5", "data.val_fraction: must be less than 1, got 1.5"),
        ("data.val_fraction=0", "data.val_fraction: must be more than 0"),
        ("data.limit=0", "data.limit: must be at least 2, got 0"),
        ("data.limit=3", "data.limit: must be at least 4 when data.val_split is none"),
        ("data.limit=true", "data.limit: expected int, got True"),
        ("data.fold=-1", "data.fold: must be at least 0"),
        ("data.max_pixels=0", "data.max_pixels: must be at least 1"),
        ("data.skip_bad=maybe", "data.skip_bad: expected true or false, got 'maybe'"),
        ("data.root=[a, b]", "data.root: expected text"),
        ("model.name=foo", "model.name: 'foo' is not one of lqer, resnet18, cnn, qcnn,"),
        ("model.dropout=1.5", "model.dropout: must be less than 1, got 1.5"),
        ("model.dropout=1", "model.dropout: must be less than 1"),
        ("model.dropout=-0.1", "model.dropout: must be at least 0"),
        ("model.quantum.n_qubits=20", "model.quantum.n_qubits: must be at most 8, got 20"),
        ("model.quantum.n_qubits=0", "model.quantum.n_qubits: must be at least 1"),
        ("model.quantum.n_layers=0", "model.quantum.n_layers: must be at least 1"),
        ("model.quantum.shots=0", "model.quantum.shots: must be at least 1"),
        ("model.quantum.depolarizing=1.5", "model.quantum.depolarizing: must be at most 1"),
        ("model.quantum.amplitude_damping=-1", "model.quantum.amplitude_damping: must be at"),
        ("model.quantum.readout_error=2", "model.quantum.readout_error: must be at most 1"),
        ("model.quantum.backend=qiskit", "model.quantum.backend: expected native or pennylane"),
        ("model.quantum.backend=pennylanex", "model.quantum.backend: expected native or"),
        ("model.quantum.grad=adjoint", "model.quantum.grad: 'adjoint' is not one of backprop"),
        ("train.epochs=0", "train.epochs: must be at least 1, got 0"),
        ("train.epochs=-3", "train.epochs: must be at least 1, got -3"),
        ("train.epochs=abc", "train.epochs: expected int, got 'abc'"),
        ("train.epochs=2.5", "train.epochs: expected an integer, got 2.5"),
        ("train.epochs=true", "train.epochs: expected int, got True"),
        ("train.epochs=[", "train.epochs: not a YAML value"),
        ("train.batch_size=0", "train.batch_size: must be at least 2, got 0"),
        ("train.batch_size=1", "train.batch_size: must be at least 2, got 1"),
        ("train.lr_backbone=-1", "train.lr_backbone: must be at least 0"),
        ("train.lr_head=-1", "train.lr_head: must be more than 0, got -1"),
        ("train.lr_head=0", "train.lr_head: must be more than 0, got 0"),
        ("train.lr_head=nan", "train.lr_head: expected a finite number"),
        ("train.lr_head=true", "train.lr_head: expected float, got True"),
        ("train.weight_decay=-1e-4", "train.weight_decay: must be at least 0"),
        ("train.plateau_factor=0", "train.plateau_factor: must be more than 0"),
        ("train.plateau_factor=1", "train.plateau_factor: must be less than 1"),
        ("train.plateau_patience=-1", "train.plateau_patience: must be at least 0"),
        ("train.threads=0", "train.threads: must be at least 1"),
        ("train.devices=0", "train.devices: must be at least 1"),
        ("train.seed=-1", "train.seed: must be at least 0"),
        ("train.seed=4294967296", "train.seed: must be at most 4294967295"),
        ("train.amp=2", "train.amp: expected true or false, got 2"),
        ("train.imbalance=oversample", "train.imbalance: 'oversample' is not one of weighted"),
        ("train=3", "train: expected a mapping, got 3"),
        ("train.bogus=1", "unknown configuration key 'train.bogus'"),
        ("model.quantum.bogus=1", "unknown configuration key 'model.quantum.bogus'"),
        # upper bounds: each one says why
        ("data.image_size=32768", "data.image_size: must be at most 1024, got 32768 (16 to"),
        ("data.image_size=1025", "data.image_size: must be at most 1024"),
        ("data.limit=100000000", "data.limit: must be at most 10000000"),
        ("data.fold=100", "data.fold: must be at most 99, got 100 (fold<k> folders"),
        ("data.max_pixels=2000000000", "data.max_pixels: must be at most 1000000000"),
        ("model.quantum.n_layers=1.0e+8", "model.quantum.n_layers: must be at most 64"),
        ("model.quantum.n_layers=100000000", "model.quantum.n_layers: must be at most 64"),
        ("model.quantum.shots=100000000", "model.quantum.shots: must be at most 10000000"),
        ("train.epochs=100000", "train.epochs: must be at most 10000"),
        ("train.batch_size=5000", "train.batch_size: must be at most 4096"),
        ("train.plateau_patience=5000", "train.plateau_patience: must be at most 1000"),
        ("train.threads=5000", "train.threads: must be at most 1024"),
        ("train.devices=65", "train.devices: must be at most 64"),
        # values YAML reads but Python cannot hold, and echoes that must stay short
        ("train.epochs=" + "1" * 5000, "train.epochs: not a YAML value (a value Python cannot"),
        ("data.root=2024-13-45", "data.root: not a YAML value (a value Python cannot hold: mon"),
        ("train.epochs=&a [*a]", "train.epochs: not a YAML value (an alias refers to itself"),
        ("x" * 5000, "override 'xxxxxxx"),
        ("train." + "y" * 5000 + "=1", "unknown configuration key 'train.yyyy"),
        ("data.root=" + "[" * 5000, "data.root: not a YAML value"),
    ],
)
def test_bad_values_are_one_line_naming_the_key(override, message):
    with pytest.raises(LqerError) as caught:
        apply_overrides(ExperimentConfig(), [override])
    text = str(caught.value)
    assert text.startswith(message) and "\n" not in text and len(text) < 300


@pytest.mark.parametrize(
    "override, value",
    [
        ("train.epochs=3.0", 3),
        ('train.epochs="4"', 4),  # quoted: a string, read as an int
        ("train.amp=no", False),
        ("train.amp=YES", True),
        ("train.threads=none", None),
        ("data.test_split=null", None),
        ("data.root=2024", "2024"),
        ("data.val_fraction=0.5", 0.5),
        ("data.image_size=16", 16),
        ("model.quantum.backend=pennylane:default.mixed", "pennylane:default.mixed"),
        ("model.quantum.entangler=none", "none"),  # a choice, not None
        ("train.lr_head=1e30", 1e30),  # absurd but finite: the run itself reports divergence
        ("data.image_size=1024", 1024),  # the bounds themselves are allowed
        ("model.quantum.n_layers=64", 64),
        ("train.batch_size=4096", 4096),
        ("data.fold=99", 99),
    ],
)
def test_good_values_from_the_command_line(override, value):
    key = override.partition("=")[0]
    node = apply_overrides(ExperimentConfig(), [override])
    for part in key.split("."):
        node = getattr(node, part)
    assert node == value and type(node) is type(value)


def test_a_small_limit_is_fine_with_a_validation_folder():
    cfg = apply_overrides(ExperimentConfig(), ["data.val_split=val", "data.limit=2"])
    assert cfg.data.limit == 2


def test_assignment_is_validated_and_leaves_the_value_alone():
    cfg = ExperimentConfig()
    cfg.train.epochs = "3"
    assert cfg.train.epochs == 3
    cfg.out_dir = Path("runs") / "x"
    assert cfg.out_dir == os.path.join("runs", "x")
    for section, name, value, message in [
        (cfg.train, "epochs", 0, "train.epochs: must be at least 1"),
        (cfg.model, "name", "foo", "model.name:"),
        (cfg.model.quantum, "n_qubits", 9, "model.quantum.n_qubits: must be at most 8"),
        (cfg.data, "limit", 2, "data.limit: must be at least 4"),
        (cfg.train, "bogus", 1, "^unknown configuration key 'train.bogus'$"),
    ]:
        before = cfg.to_dict()
        with pytest.raises(LqerError, match=message):
            setattr(section, name, value)
        assert cfg.to_dict() == before


def test_constructors_and_replace_are_validated():
    with pytest.raises(LqerError, match="^data.image_size: must be at least 16"):
        DataConfig(image_size=8)
    with pytest.raises(LqerError, match="^model.quantum.n_qubits: must be at most 8"):
        ModelConfig(quantum={"n_qubits": 9})
    quantum = QuantumConfig(n_qubits=3)
    assert quantum.replace(n_qubits=4).n_qubits == 4 and quantum.n_qubits == 3
    with pytest.raises(LqerError, match="^model.quantum.shots: must be at least 1"):
        quantum.replace(shots=0)
    cfg = ExperimentConfig()
    copy = cfg.replace(model=cfg.model.replace(name="cnn"), out_dir="elsewhere")
    assert (copy.model.name, copy.out_dir, cfg.model.name) == ("cnn", "elsewhere", "lqer")
    with pytest.raises(LqerError, match="unknown configuration key 'model.nam'"):
        cfg.model.replace(nam="cnn")


def test_from_dict_wants_a_mapping():
    with pytest.raises(LqerError, match="expected a mapping at the top level"):
        from_dict([1, 2])  # type: ignore[arg-type]
    with pytest.raises(LqerError, match="^unknown configuration key '1'"):
        from_dict({1: 2})
    with pytest.raises(LqerError, match="^unknown configuration key 'train.3'"):
        from_dict({"train": {3: 2}})


@pytest.mark.parametrize("name", ["lqer", "resnet18", "cnn", "qcnn", "lqer-classical"])
def test_every_model_trains_at_the_smallest_image_size(name):
    size = DataConfig(image_size=16).image_size
    with pytest.raises(LqerError):
        DataConfig(image_size=size - 1)
    torch.manual_seed(0)
    model = from_config(ModelConfig(name=name, weights="none")).train()
    logits = model(torch.randn(2, 3, size, size))  # the smallest batch train.batch_size allows
    logits.sum().backward()
    assert logits.shape == (2, 2) and torch.isfinite(logits).all()


def test_yaml_round_trip(tmp_path):
    cfg = apply_overrides(ExperimentConfig(), ["train.seed=7", "model.quantum.n_qubits=5"])
    cfg.save(tmp_path / "c.yaml")
    assert load_config(tmp_path / "c.yaml") == cfg


def test_a_written_yaml_round_trips_through_save_and_load(tmp_path):
    (tmp_path / "c.yaml").write_text(
        "data:\n  root: /data/padsd\n  limit: 100\n  test_split: none\n  skip_bad: yes\n"
        "model:\n  name: lqer-separable\n  dropout: 0.25\n"
        "  quantum: {n_qubits: 6, shots: 512, backend: 'pennylane:default.mixed'}\n"
        "train:\n  epochs: 4\n  lr_head: 3.0e-3\n  threads: 2\n  amp: false\n"
        "out_dir: runs/x\n"
    )
    cfg = load_config(tmp_path / "c.yaml")
    assert cfg.data.test_split is None and cfg.data.skip_bad is True
    assert cfg.model.quantum.shots == 512 and cfg.train.lr_head == pytest.approx(3e-3)
    cfg.save(tmp_path / "saved.yaml")
    assert not list(tmp_path.glob(".saved.yaml.*.tmp"))  # written atomically, nothing left over
    again = load_config(tmp_path / "saved.yaml")
    assert again == cfg and again.to_dict() == cfg.to_dict()
    assert "model.quantum.shots" in changed_keys(ExperimentConfig(), again)


def test_bad_yaml_names_the_file(tmp_path):
    (tmp_path / "c.yaml").write_text("train: {epochs: [\n")
    with pytest.raises(LqerError, match="c.yaml"):
        load_config(tmp_path / "c.yaml")
    (tmp_path / "d.yaml").write_text("train:\n  bogus: 1\n")
    with pytest.raises(LqerError, match="d.yaml.*train.bogus"):
        load_config(tmp_path / "d.yaml")
    (tmp_path / "e.yaml").write_text("train:\n  epochs: 0\n")
    with pytest.raises(LqerError, match="e.yaml: train.epochs: must be at least 1, got 0"):
        load_config(tmp_path / "e.yaml")


@pytest.mark.parametrize(
    "content",
    [bytes(range(256)), os.urandom(512), b"\xff\xfetrain: {}\n", b"train:\n  epochs: \x01\n"],
    ids=["all-bytes", "random", "utf-16", "control-character"],
)
def test_binary_yaml_is_not_a_text_file(tmp_path, content):
    path = tmp_path / "c.yaml"
    path.write_bytes(content)
    with pytest.raises(LqerError) as caught:
        load_config(path)
    text = str(caught.value)
    assert text.startswith(f"{path}: not a text YAML file") and "\n" not in text


def test_an_executable_is_not_a_yaml_file():
    ls = Path("/bin/ls")
    if not ls.is_file():
        pytest.skip("no /bin/ls")
    with pytest.raises(LqerError, match="not a text YAML file"):
        load_config(ls)


@pytest.mark.parametrize(
    "content, message",
    [
        ("- 1\n- 2\n", "expected a mapping at the top level, got [1, 2]"),
        ("just text\n", "expected a mapping at the top level"),
        ("train: 3\n", "train: expected a mapping, got 3"),
        ("model:\n  quantum: [1]\n", "model.quantum: expected a mapping, got [1]"),
        ("!!python/object:os.system {}\n", "not valid YAML"),
    ],
)
def test_the_file_and_its_sections_must_be_mappings(tmp_path, content, message):
    (tmp_path / "c.yaml").write_text(content)
    with pytest.raises(LqerError) as caught:
        load_config(tmp_path / "c.yaml")
    assert str(caught.value).startswith(f"{tmp_path / 'c.yaml'}: {message}")


def test_unreadable_paths_are_one_line(tmp_path, monkeypatch):
    with pytest.raises(LqerError, match="config file not found"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(LqerError, match="is a folder"):
        load_config(tmp_path)
    (tmp_path / "c.yaml").write_text("train: {}\n")

    def refuse(self):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", refuse)
    with pytest.raises(LqerError, match=r"c.yaml: cannot read it \(Permission denied\)"):
        load_config(tmp_path / "c.yaml")


def test_an_empty_file_is_the_defaults(tmp_path):
    (tmp_path / "c.yaml").write_text("")
    assert load_config(tmp_path / "c.yaml") == ExperimentConfig()
    (tmp_path / "d.yaml").write_text("# nothing set yet\n")
    assert load_config(tmp_path / "d.yaml", ["train.epochs=2"]).train.epochs == 2


def test_changed_keys():
    old = ExperimentConfig()
    assert changed_keys(old, ExperimentConfig()) == []
    new = apply_overrides(
        old, ["train.epochs=30", "model.quantum.shots=100", "data.image_size=64", "train.amp=no"]
    )
    assert changed_keys(old, new) == [
        "data.image_size", "model.quantum.shots", "train.amp", "train.epochs"
    ]  # fmt: skip
    assert changed_keys(new, old) == changed_keys(old, new)
    assert [k for k in changed_keys(old, new) if k not in RESUMABLE] == [
        "data.image_size", "model.quantum.shots", "train.amp"
    ]  # fmt: skip


def test_resumable_keys_exist():
    values = ExperimentConfig().to_dict()
    for key in RESUMABLE:
        section, name = key.split(".")
        assert name in values[section], key


def test_shipped_configs_load():
    configs = sorted((Path(__file__).parents[1] / "configs").glob("*.yaml"))
    assert len(configs) >= 2
    for path in configs:
        try:
            load_config(path)
        except LqerError as e:
            assert "lqer detector train" in str(e), e  # a detector's config: refused by name
            load_config(path, kind=DetectionConfig)


def billion_laughs(levels: int = 9) -> str:
    """The classic: each level lists the one below nine times, 9^9 strings from ~400 bytes."""
    text = 'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n'
    for i in range(1, levels):
        name, below = chr(ord("a") + i), chr(ord("a") + i - 1)
        text += f"{name}: &{name} [{', '.join([f'*{below}'] * 9)}]\n"
    return text


@pytest.mark.parametrize(
    "content, message",
    [
        (billion_laughs(), "not valid YAML (more than 10,000 values once aliases expand (line"),
        ("train:\n  epochs: 3\n  seed: 1\n  epochs: 4\n", "duplicate key 'epochs' (line 4; fi"),
        ("train: {}\nmodel: {}\ntrain: {epochs: 2}\n", "duplicate key 'train' (line 3; first"),
        ("train:\n  epochs: " + "7" * 5000 + "\n", "an integer of more than 4300 digits"),
        ("x: &x [*x]\n", "an alias refers to itself"),
    ],
    ids=["billion-laughs", "duplicate-key", "duplicate-section", "5000-digits", "self-alias"],
)
def test_hostile_yaml_is_refused_in_one_short_line(tmp_path, content, message):
    path = tmp_path / "c.yaml"
    path.write_text(content)
    with pytest.raises(LqerError) as caught:
        load_config(path)
    text = str(caught.value)
    assert text.startswith(f"{path}: not valid YAML") and message in text
    assert "\n" not in text and len(text) < 250


def test_aliases_and_merge_keys_that_stay_small_are_fine(tmp_path):
    (tmp_path / "c.yaml").write_text(
        "model:\n  quantum: {n_qubits: &n 3, n_layers: 2}\ntrain: {epochs: *n, seed: *n}\n"
    )
    cfg = load_config(tmp_path / "c.yaml")
    assert (cfg.model.quantum.n_qubits, cfg.train.epochs, cfg.train.seed) == (3, 3, 3)
    merged = safe_yaml("a: &a {x: 1, y: 2}\nb:\n  <<: *a\n  y: 3\n")
    assert merged["b"] == {"x": 1, "y": 3}  # an explicit key overrides a merged one


def test_the_node_bound_counts_expanded_values():
    nine = "[" + ", ".join(["1"] * 9) + "]"
    small = f"a: &a {nine}\nb: [{', '.join(['*a'] * 9)}]\n"
    assert len(safe_yaml(small)["b"]) == 9
    with pytest.raises(YamlRefused, match="10,000"):
        safe_yaml(billion_laughs(5))  # 9^5 strings from 5 lines


def test_messages_show_a_bounded_part_of_a_shared_reference_bomb():
    value: list = ["lol"] * 10
    for _ in range(30):  # 10^30 strings if expanded; a forged checkpoint can hold this
        value = [value] * 10
    with pytest.raises(LqerError) as caught:
        from_dict({"train": {"epochs": value}})
    assert str(caught.value).startswith("train.epochs: expected int, got [[[")
    assert len(str(caught.value)) < 150
    assert shown(10**5000) == "<an integer of 16610 bits>"


def test_the_cpu_config_is_the_recipe_the_results_use():
    """configs/padsd-cpu.yaml must stay configs/padsd.yaml with results/grid.sh's RECIPE."""
    import re
    import shlex

    from helpers import REPO

    grid = (REPO / "results" / "grid.sh").read_text()
    words = shlex.split(re.search(r'RECIPE="([^"]*)"', grid).group(1))
    recipe = [
        w for w in words if w != "--set" and not w.startswith(("train.progress", "train.threads"))
    ]
    grid_cfg = load_config(REPO / "configs" / "padsd.yaml", recipe).to_dict()
    cpu_cfg = load_config(REPO / "configs" / "padsd-cpu.yaml").to_dict()
    grid_cfg.pop("out_dir"), cpu_cfg.pop("out_dir")
    assert cpu_cfg == grid_cfg

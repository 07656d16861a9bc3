import torch

from lqer.config import DataConfig
from lqer.data.dataset import load_folder
from lqer.data.pack import load_packed_experiment, read_pack, write_pack


def test_pack_round_trip_and_experiment(tiny_dataset, tmp_path):
    counts = write_pack(tiny_dataset, ["train", "validation"], tmp_path / "pack")
    assert counts == {"train": 48, "validation": 24}
    packed, folder = read_pack(tmp_path / "pack", "train"), load_folder(tiny_dataset / "train", 64)
    assert torch.equal(packed.images, folder.images) and torch.equal(packed.labels, folder.labels)
    assert packed.paths[0] == "train/negative/000.png"

    data = load_packed_experiment(tmp_path / "pack", DataConfig(image_size=32), seed=0)
    assert sorted(data) == ["test", "train", "val"]
    assert len(data["train"]) + len(data["val"]) == 48 and len(data["test"]) == 24
    assert data["test"].images.shape[1:] == (1, 32, 32) and data["test"].images.dtype == torch.uint8

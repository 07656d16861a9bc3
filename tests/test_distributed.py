"""DistributedDataParallel on the CPU: 2 gloo processes must follow the single-process run.

Both runs see the same global batches: each rank augments the whole batch from the same random
stream and keeps its slice, the loss is normalised by the global batch's class weights, and
batch norm takes global statistics. What remains is floating-point summation order.
"""

import copy
import json

import pytest
import torch
from helpers import tiny_config

from lqer.config import ModelConfig
from lqer.models.checkpoint import read_checkpoint
from lqer.models.configured import from_config
from lqer.train import distributed, fit
from lqer.train.steps import TrainBatches, batch_indices, train_epoch

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def sgd_epoch(model, group):
    """Three steps of plain SGD over imbalanced, augmented toy images; SGD keeps rounding
    differences as small as they start (Adam's first steps would magnify them)."""
    generator = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (40, 1, 12, 12), dtype=torch.uint8, generator=generator)
    labels = (torch.arange(40) % 4 == 0).long()  # 10 positives, 30 negatives
    weight = torch.tensor([0.7, 2.0])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    batches = batch_indices(labels, 14, balanced=False, seed=3)  # 14, 14, 12
    torch.manual_seed(5)
    pipeline = TrainBatches(12, "all", channels_last=False)
    sums, seen, _, _ = train_epoch(
        distributed.wrap(model, group), optimizer, images, labels, batches, pipeline, weight, group
    )
    return group.sum(sums), int(group.sum(torch.tensor(seen)))


def _ddp_worker(out_path):
    group = distributed.setup("cpu")
    torch.manual_seed(0)
    model = distributed.sync_batch_norm(from_config(ModelConfig(name="lqer")), group.device)
    sums, seen = sgd_epoch(model, group)
    if group.main:
        torch.save({"model": model.state_dict(), "sums": sums, "seen": seen}, out_path)
    distributed.teardown(group)


def test_ddp_steps_match_one_process(tmp_path):
    torch.manual_seed(0)
    model = from_config(ModelConfig(name="lqer"))
    before = copy.deepcopy(model.state_dict())
    sums, seen = sgd_epoch(model, distributed.Group())

    distributed.launch(_ddp_worker, 2, tmp_path / "ddp.pt")
    ddp = torch.load(tmp_path / "ddp.pt", weights_only=True)
    assert ddp["seen"] == seen == 40
    torch.testing.assert_close(ddp["sums"], sums, rtol=1e-4, atol=0)
    # Per tensor, the two updates agree to rounding, amplified by batch norm over 14 images
    # (about 0.5% here); per-rank batch norm statistics would differ by over 100%.
    for name, value in model.state_dict().items():
        if value.is_floating_point():
            step, ddp_step = value - before[name], ddp["model"][name] - before[name]
            assert step.norm() > 0, name
            assert (ddp_step - step).norm() < 0.03 * step.norm(), name


def history(run):
    return [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]


# One thread per process and small learning rates: AdamW's first steps are sign-like for
# gradients near zero, so at the usual rates rounding (summation order across ranks, BLAS
# kernels, thread counts) moved these losses by up to 2%. At these rates it moves them by
# about 1e-6, while per-rank batch statistics or loss weights would move them by far more.
QUIET = ("train.epochs=1", "train.threads=1", "train.lr_backbone=1e-5", "train.lr_head=1e-4")


def test_fit_on_two_processes_matches_and_resumes(tiny_dataset, tmp_path):
    single = history(fit(tiny_config(tiny_dataset, tmp_path / "single", *QUIET)))[0]
    cfg = tiny_config(tiny_dataset, tmp_path / "ddp", *QUIET, "train.devices=2")
    first = history(fit(cfg))[0]
    for key in ("train_loss", "train_accuracy", "val_loss", "val_auc", "lr_head"):
        assert first[key] == pytest.approx(single[key], rel=1e-4), key
    a = read_checkpoint(tmp_path / "single" / "last.pt")["model"]
    b = read_checkpoint(tmp_path / "ddp" / "last.pt")["model"]
    # A weight whose gradient rounds to the other sign moves by up to 2 lr_head a step.
    assert max((a[k].float() - b[k].float()).abs().max().item() for k in a) < 1e-3

    cfg.train.epochs = 2
    run = fit(cfg, resume=True)
    rows = history(run)
    assert [r["epoch"] for r in rows] == [1, 2] and rows[0] == first  # written once, by rank 0
    assert read_checkpoint(run / "last.pt")["epoch"] == 2
    assert json.loads((run / "test_metrics.json").read_text())["n"] == 24

"""DistributedDataParallel plumbing, kept out of the training loop.

One process per device. `torchrun`, or `launch` behind `lqer train --devices N`, starts the
processes and sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT; `setup` joins
them into one process group: NCCL on GPUs, gloo on the CPU.

The recipe does not depend on the number of processes. Every rank draws the same global batch
of `batch_size` images and trains on its own slice of it, the loss is normalised by the global
batch, and batch norm takes its statistics over the global batch. N processes therefore follow
the single-process run up to floating-point rounding, with the same hyperparameters.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from lqer.device import pick_device
from lqer.errors import LqerError


@dataclass(frozen=True)
class Group:
    """This process's place among the training processes; a lone process is a group of one."""

    rank: int = 0
    world: int = 1
    local_world: int = 1  # processes on this machine, which share its cores
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def main(self) -> bool:
        """Rank 0 alone prints, logs and writes checkpoints."""
        return self.rank == 0

    def part(self, n: int) -> slice:
        """This rank's contiguous slice of `n` items; slice lengths differ by at most one."""
        return slice(n * self.rank // self.world, n * (self.rank + 1) // self.world)

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.world > 1:
            dist.all_reduce(tensor)
        return tensor

    def gather(self, local: torch.Tensor, n: int) -> torch.Tensor:
        """All `n` rows, in order, from every rank's `part(n)` of them."""
        if self.world == 1:
            return local
        longest = -(-n // self.world)
        padded = local.new_zeros((longest, *local.shape[1:]), device=self.device)
        padded[: len(local)] = local
        chunks = [torch.empty_like(padded) for _ in range(self.world)]
        dist.all_gather(chunks, padded)
        lengths = [len(range(n)[Group(r, self.world).part(n)]) for r in range(self.world)]
        rows = [chunk[:length] for chunk, length in zip(chunks, lengths, strict=True)]
        return torch.cat(rows).to(local.device)

    def concat(self, local: torch.Tensor) -> torch.Tensor:
        """Every rank's rows on the CPU, in rank order; the ranks may hold different counts."""
        local = local.cpu()
        if self.world == 1:
            return local
        parts = [None] * self.world
        dist.all_gather_object(parts, local)
        return torch.cat(parts)


def launched() -> bool:
    """Whether this process is one of several that torchrun or `launch` started."""
    return int(os.environ.get("WORLD_SIZE", 1)) > 1


def setup(device_name: str = "auto") -> Group:
    """Join the process group that the environment describes (or none, for a lone process)."""
    device = pick_device(device_name)
    if not launched():
        return Group(device=device)
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", world))
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise LqerError(
                f"{local_world} processes per node but {torch.cuda.device_count()} GPU(s) here"
            )
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, device_id=device if device.type == "cuda" else None)
    return Group(rank, world, local_world, device)


def teardown(group: Group) -> None:
    if group.world > 1 and dist.is_initialized():
        dist.destroy_process_group()


def cpu_threads(group: Group) -> int:
    """The cores of this machine shared out among its training processes."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) // group.local_world)


class _SumOverRanks(torch.autograd.Function):
    """y = sum of x over the ranks; every rank's loss depends on y, so the gradient sums too."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        x = x.clone()
        dist.all_reduce(x)
        return x

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class GlobalBatchNorm(nn.BatchNorm2d):
    """BatchNorm2d with statistics over the global batch of all ranks.

    The CPU counterpart of `nn.SyncBatchNorm`, which runs on GPUs only; same state dict.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        dims, shape = (0, 2, 3), (1, -1, 1, 1)
        count = torch.full((1,), x.numel() / x.shape[1], dtype=x.dtype, device=x.device)
        sums = _SumOverRanks.apply(torch.cat([x.sum(dims), count]))
        count = sums[-1].detach()
        mean = sums[:-1] / count
        centred = x - mean.view(shape)
        var = _SumOverRanks.apply(centred.square().sum(dims)) / count
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                momentum = self.momentum or 1 / float(self.num_batches_tracked)
                self.running_mean.lerp_(mean, momentum)
                self.running_var.lerp_(var * count / (count - 1), momentum)
        y = centred * torch.rsqrt(var + self.eps).view(shape)
        return y * self.weight.view(shape) + self.bias.view(shape) if self.affine else y


def sync_batch_norm(model: nn.Module, device: torch.device) -> nn.Module:
    """Batch norm over the global batch: torch's SyncBatchNorm on GPUs, GlobalBatchNorm else."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    for name, child in model.named_children():
        if type(child) is nn.BatchNorm2d:
            norm = GlobalBatchNorm(
                child.num_features, child.eps, child.momentum, child.affine,
                child.track_running_stats,
            )  # fmt: skip
            norm.load_state_dict(child.state_dict())
            setattr(model, name, norm)
        else:
            sync_batch_norm(child, device)
    return model


def wrap(model: nn.Module, group: Group) -> nn.Module:
    """The model that the training steps call: DDP averages the gradients across ranks."""
    if group.world == 1:
        return model
    ids = [group.device.index] if group.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def launch(fn, world: int, *args) -> None:
    """Run `fn(*args)` in `world` local processes joined as one group, as torchrun would."""
    env = {"WORLD_SIZE": str(world), "LOCAL_WORLD_SIZE": str(world),
           "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port())}  # fmt: skip
    try:
        mp.spawn(_child, args=(env, fn, args), nprocs=world, join=True)
    except mp.ProcessRaisedException as e:
        last = str(e).strip().splitlines()[-1]
        prefix = f"{LqerError.__module__}.{LqerError.__name__}: "
        if last.startswith(prefix):  # a bad option or file: say so in one line, as usual
            raise LqerError(last.removeprefix(prefix)) from None
        raise


def _child(rank: int, env: dict[str, str], fn, args) -> None:
    os.environ.update(env, RANK=str(rank), LOCAL_RANK=str(rank))
    fn(*args)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

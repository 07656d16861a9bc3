"""One epoch's training steps and the hold-out's scores, apart from the loop that calls them,
so that a benchmark or the DDP tests run exactly the steps training runs."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import AveragedModel
from tqdm.auto import tqdm

from lqer.data.dataset import ImageSet
from lqer.data.transforms import ToFloat, augmentation, standardize
from lqer.errors import LqerError
from lqer.eval.evaluate import predict_logits
from lqer.train.distributed import Group


def batch_indices(
    labels: torch.Tensor, batch_size: int, balanced: bool, seed: int, min_size: int = 2
) -> list[torch.Tensor]:
    """Shuffled index batches for one epoch; `balanced` draws both classes equally often.

    A last batch of fewer than `min_size` images is dropped: batch norm cannot train on one
    image, and under DDP every rank needs at least one.
    """
    generator = torch.Generator().manual_seed(seed)
    n = len(labels)
    if balanced:
        counts = torch.bincount(labels.cpu(), minlength=2).float()
        weights = (1.0 / counts)[labels.cpu()]
        order = torch.multinomial(weights, n, replacement=True, generator=generator)
    else:
        order = torch.randperm(n, generator=generator)
    batches = list(order.to(labels.device).split(batch_size))  # one copy to the device an epoch
    return batches if len(batches[-1]) >= min_size else batches[:-1]


def class_weights(labels: torch.Tensor) -> torch.Tensor:
    """Inverse-frequency weights, normalised so that a balanced set gets weight 1."""
    counts = torch.bincount(labels, minlength=2).float()
    return counts.sum() / (2 * counts)


class TrainBatches:
    """uint8 images (B, 1, S, S) -> the model's training input, augmented per sample.

    The whole global batch is augmented on every rank, from the same random stream, before
    a rank keeps its slice: DDP then sees exactly the images a single process would, and the
    augmentation, at the stored size, costs little beside the model.
    """

    def __init__(self, image_size: int, augment: str, channels_last: bool, intensity: str = "mild"):
        self.augment = augmentation(image_size, intensity) if augment != "none" else None
        self.positives_only = augment == "positives"
        self.to_float, self.prepare = ToFloat(), standardize(image_size)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def __call__(self, raw: torch.Tensor, labels: torch.Tensor, part: slice) -> torch.Tensor:
        if self.augment is None:
            x = self.to_float(raw[part])
        elif self.positives_only:
            keep = (labels == 1).view(-1, 1, 1, 1)
            x = torch.where(keep, self.augment(raw), self.to_float(raw))[part]
        else:
            x = self.augment(raw)[part]
        return self.prepare(x).contiguous(memory_format=self.memory_format)


def train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    images: torch.Tensor,
    labels: torch.Tensor,
    batches: list[torch.Tensor],
    pipeline: TrainBatches,
    weight: torch.Tensor,
    group: Group | None = None,
    use_amp: bool = False,
    bar: tqdm | None = None,
    ema: AveragedModel | None = None,
) -> tuple[torch.Tensor, int, torch.Tensor, torch.Tensor]:
    """One pass over `batches`; returns (sum of batch loss x batch size, correct) on the device,
    the number of images, and the stenosis logit margins and labels, for this rank's share.
    The bar shows the epoch's mean loss so far; `ema` averages the weights after each step."""
    group = group or Group()
    loss_sum = torch.zeros((), device=images.device)
    correct = torch.zeros((), dtype=torch.long, device=images.device)
    seen, shown, margins, targets, losses = 0, 0, [], [], []
    for step, index in enumerate(batches):
        y_all = labels[index]
        part = group.part(len(index))
        x, y = pipeline(images[index], y_all, part), y_all[part]
        with torch.autocast(images.device.type, torch.bfloat16, enabled=use_amp):
            logits = model(x)
        # The weighted mean over the global batch; DDP averages gradients over the ranks.
        loss = F.cross_entropy(logits.float(), y, weight=weight, reduction="sum")
        loss = loss * (group.world / weight[y_all].sum())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if ema is not None:
            ema.update_parameters(model)
        loss_sum += loss.detach() * (len(index) / group.world)
        losses.append(loss.detach())
        correct += (logits.argmax(1) == y).sum()
        margins.append((logits[:, 1] - logits[:, 0]).detach().float())
        targets.append(y)
        seen += len(y)
        if bar is not None:
            shown += len(index)
            if images.device.type == "cpu" or step % 10 == 0:  # reading it waits for a GPU
                bar.set_postfix(loss=f"{loss_sum.item() / shown:.4f}", refresh=False)
            bar.update()
    first_bad = _first_non_finite(losses)
    any_bad = group.sum(torch.tensor(float(first_bad is not None), device=images.device))
    if any_bad.item():  # every rank stops, so none waits for the others
        raise Diverged(first_bad + 1 if first_bad is not None else None, len(batches))
    sums = torch.stack([loss_sum, correct.to(loss_sum.dtype)])
    return sums, seen, torch.cat(margins), torch.cat(targets)


class Diverged(Exception):
    """The loss became NaN or infinite at step `step` of `steps`."""

    def __init__(self, step: int | None, steps: int):
        super().__init__(f"step {step if step is not None else '?'} of {steps}")
        self.step, self.steps = step, steps


def diverged(epoch: int, what: str, tc) -> LqerError:
    """What to tell the user, and which checkpoint still holds a sound model."""
    kept = f"; last.pt holds epoch {epoch - 1}" if epoch > 1 else ""
    return LqerError(
        f"training diverged in epoch {epoch}, {what}; try a lower learning rate "
        f"(train.lr_head={tc.lr_head:g}, train.lr_backbone={tc.lr_backbone:g}){kept}"
    )


def _first_non_finite(values: list[torch.Tensor]) -> int | None:
    """Checked once an epoch, so that the steps never wait for the GPU."""
    if not values:
        return None
    bad = (~torch.isfinite(torch.stack(values))).nonzero()
    return int(bad[0]) if len(bad) else None


def evaluate(model: nn.Module, data: ImageSet, weight: torch.Tensor, group: Group):
    """Logits of every image (each rank scores its slice) and the weighted mean loss."""
    part = group.part(len(data))
    logits = predict_logits(model, data.images[part], data.size, group.device)
    logits = group.gather(logits, len(data))
    return logits, F.cross_entropy(logits, data.labels, weight=weight.cpu()).item()

"""Training throughput of ResNet18 and LQER on whatever device is present.

For each image size and batch size it times, in the same run:
  bare  the model's own step: forward, backward and AdamW on a ready float batch;
  loop  the training loop's `train_epoch`: index uint8 images on the device, augment,
        standardise, then the same step; the difference is the loop's overhead.
each in float32 and in bf16 autocast with channels_last, and prints images/s, the seconds one
P-ADSD training pass would take at that rate, the ratios LQER / ResNet18 and bf16 / float32,
and the precision training picks on this device (`lqer.device.training_precision`). Data are
random tensors of the real shapes: speed does not depend on pixel values.

`--epochs` instead reports the time per epoch (training pass plus scoring the 15% selection
hold-out) of the configs' recipe (batch 64) on A-DSSS fold 0 and P-ADSD at each size,
extrapolated from a few measured steps.

    python benchmarks/train_throughput.py                  # a few minutes on a 2-core CPU
    python benchmarks/train_throughput.py --epochs
    python benchmarks/train_throughput.py --batch-sizes 256 --sizes 224 --steps 50 --compile
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from lqer.config import ModelConfig
from lqer.data.layout import list_folder
from lqer.device import cpu_flags, cpu_name, pick_device, training_precision
from lqer.eval.evaluate import predict_logits
from lqer.models.configured import from_config
from lqer.train.distributed import Group, cpu_threads
from lqer.train.steps import TrainBatches, batch_indices, train_epoch

REPO = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("LQER_DATASETS", REPO.parent / "shared" / "datasets"))
PADSD_TRAIN = 20_444  # P-ADSD train/ less the 15% selection hold-out (the configs' recipe)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_model(name: str, device: torch.device, compile_: bool, bf16: bool):
    model = from_config(ModelConfig(name=name)).to(device)
    if bf16:  # bf16 goes with channels_last, as in training
        model = model.to(memory_format=torch.channels_last)
    if compile_:
        model.backbone.compile()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device.type == "cuda" or None)
    return model.train(), optimizer


def time_bare(name, size, batch, steps, warmup, device, compile_, bf16) -> float:
    """Images/s of forward + backward + AdamW on one ready, standardised batch."""
    model, optimizer = make_model(name, device, compile_, bf16)
    x = torch.randn(batch, 3, size, size, device=device)
    if bf16:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 2, (batch,), device=device)
    for step in range(warmup + steps):
        if step == warmup:
            synchronize(device)
            started = time.perf_counter()
        with torch.autocast(device.type, torch.bfloat16, enabled=bf16):
            logits = model(x)
        loss = F.cross_entropy(logits.float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    synchronize(device)
    return batch * steps / (time.perf_counter() - started)


def time_loop(name, size, batch, steps, warmup, device, compile_, bf16) -> float:
    """Images/s of the training loop's own epoch function on uint8 images on the device."""
    model, optimizer = make_model(name, device, compile_, bf16)
    n = batch * (warmup + steps)
    images = torch.randint(0, 256, (n, 1, size, size), dtype=torch.uint8, device=device)
    labels = (torch.rand(n, device=device) < 0.2).long()
    weight = torch.tensor([0.6, 2.5], device=device)
    batches = batch_indices(labels, batch, balanced=False, seed=0)
    pipeline = TrainBatches(size, "all", channels_last=bf16)
    amp = bf16
    args = (optimizer, images, labels)
    train_epoch(model, *args, batches[:warmup], pipeline, weight, use_amp=amp)
    synchronize(device)
    started = time.perf_counter()
    sums, *_ = train_epoch(model, *args, batches[warmup:], pipeline, weight, use_amp=amp)
    sums.tolist()  # the loop reads its sums once an epoch; that wait belongs to the epoch
    return batch * steps / (time.perf_counter() - started)


def time_eval(name, size, device, n=256) -> float:
    model, _ = make_model(name, device, compile_=False, bf16=False)
    images = torch.randint(0, 256, (n, 1, size, size), dtype=torch.uint8)
    predict_logits(model, images[:32], size, device)
    started = time.perf_counter()
    predict_logits(model, images, size, device)
    return n / (time.perf_counter() - started)


def throughput(args, device) -> None:
    """Both precisions on every device, and which one training picks here."""
    print(
        "| model | size | batch | precision | bare img/s | loop img/s | loop/bare | "
        "s per P-ADSD train pass | LQER/ResNet18 (loop) | bf16/float32 (loop) | training uses |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")  # fmt: skip
    for size in args.sizes:
        chosen = "bf16" if training_precision(device, size, True, True).bf16 else "float32"
        for batch in args.batch_sizes:
            loop = {}
            for name in ("resnet18", "lqer"):
                for bf16 in (False, True):
                    timing = (name, size, batch, args.steps, args.warmup, device, args.compile)
                    bare, ips = time_bare(*timing, bf16), time_loop(*timing, bf16)
                    loop[name, bf16] = ips
                    ratio = f"{ips / loop['resnet18', bf16]:.3f}" if name == "lqer" else ""
                    gain = f"{ips / loop[name, False]:.2f}" if bf16 else ""
                    print(f"| {name} | {size} | {batch} | {'bf16' if bf16 else 'float32'} | "
                          f"{bare:.1f} | {ips:.1f} | {ips / bare:.2f} | {PADSD_TRAIN / ips:.1f} | "
                          f"{ratio} | {gain} | {chosen} |", flush=True)  # fmt: skip


def split_sizes(folder: Path) -> tuple[int, int]:
    """(training images, selection hold-out) under the configs' 15% hold-out of `folder`."""
    n = len(list_folder(folder))
    return n - round(0.15 * n), round(0.15 * n)


def epochs(args, device) -> None:
    sets = {
        "A-DSSS fold0": split_sizes(DATASETS / "A-DSSS" / "fold0" / "train"),
        "P-ADSD": split_sizes(DATASETS / "P-ADSD" / "train"),
    }
    batch = 64
    print(f"Time per epoch of LQER (batch {batch}, training pass + scoring the hold-out), "
          f"extrapolated from {args.steps} measured steps and 256 scored images.\n")  # fmt: skip
    print("| size | train img/s | scoring img/s | " + " | ".join(f"{k} s/epoch" for k in sets), "|")
    print("|---|---|---|" + "---|" * len(sets))
    for size in args.sizes:
        bf16 = training_precision(device, size, True, True).bf16
        train_ips = time_loop(
            "lqer", size, batch, args.steps, args.warmup, device, args.compile, bf16
        )
        eval_ips = time_eval("lqer", size, device)
        cells = [f"{n / train_ips + m / eval_ips:.0f}" for n, m in sets.values()]
        print(f"| {size} | {train_ips:.1f} | {eval_ips:.1f} | " + " | ".join(cells) + " |",
              flush=True)  # fmt: skip
    print("\n" + ", ".join(f"{k}: {t} train / {v} hold-out images" for k, (t, v) in sets.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--sizes", type=int, nargs="+", default=[224, 112, 64])
    parser.add_argument("--batch-sizes", type=int, nargs="+")
    parser.add_argument("--steps", type=int, help="timed steps (default: CPU 2, GPU 30)")
    parser.add_argument("--warmup", type=int, help="untimed steps first (CPU 1, GPU 10)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the backbone")
    parser.add_argument("--epochs", action="store_true", help="time per epoch of both sets")
    parser.add_argument("--threads", type=int, help="CPU threads (default: all cores)")
    args = parser.parse_args()
    device = pick_device(args.device)
    gpu = device.type == "cuda"
    args.batch_sizes = args.batch_sizes or ([128, 256, 512] if gpu else [16, 32])
    args.steps = args.steps or (30 if gpu else 2)
    args.warmup = args.warmup or (10 if gpu else 1)
    torch.set_num_threads(args.threads or cpu_threads(Group()))
    torch.backends.cudnn.benchmark = gpu  # as the training loop does
    torch.manual_seed(0)
    name = torch.cuda.get_device_name(device) if gpu else cpu_name()
    if not gpu:
        amx = "amx_bf16" in cpu_flags()
        name += ", AMX bf16" if amx else ", no AMX (bf16 not used for training)"
    print(f"device: {device} ({name}), torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f}"
          f"{', compiled backbone' if args.compile else ''}\n")  # fmt: skip
    (epochs if args.epochs else throughput)(args, device)


if __name__ == "__main__":
    main()

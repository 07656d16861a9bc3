"""Inference throughput of an exported model in ONNX Runtime against PyTorch, on the CPU.

Exports the checkpoint (with its parity check), then times both on the same uint8 patches at
the model's input size, at each batch size, in the same run, and prints patches/s and the
ratio ONNX Runtime / PyTorch. Threads: the same number for both.

    python benchmarks/export.py                       # the shipped model
    python benchmarks/export.py --threads 1 --batch-sizes 1 64 256
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from lqer.device import cpu_name
from lqer.eval.evaluate import predict_proba
from lqer.eval.export import OnnxModel, export_onnx
from lqer.models.checkpoint import load_checkpoint


def rate(rounds: int, n: int, fn, *args) -> float:
    """n / seconds of fn(*args) that handles n patches: the median of `rounds` calls after a
    warm-up."""
    fn(*args)
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - start)
    return n / sorted(times)[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="lqer-padsd")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 64, 512])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, cfg, _ = load_checkpoint(args.checkpoint)
    size = cfg.data.image_size
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.onnx"
        result = export_onnx(args.checkpoint, path)
        session = OnnxModel(path, threads=args.threads)
        print(f"{args.checkpoint} at {size} px; CPU {cpu_name()}, {args.threads} threads; "
              f"parity {result['max_difference']:.1e} on {result['patches']} patches")  # fmt: skip
        print(f"  {'batch':>6} {'pytorch/s':>10} {'onnxrt/s':>10} {'onnx/pytorch':>13}")
        for batch in args.batch_sizes:
            images = torch.randint(0, 256, (max(batch, 512 // batch * batch), 1, size, size),
                                   dtype=torch.uint8)  # fmt: skip
            with torch.inference_mode():
                ours = rate(args.rounds, len(images), predict_proba, model, images, size, "cpu",
                            batch)  # fmt: skip
            theirs = rate(args.rounds, len(images), session.predict, images, batch)
            print(f"  {batch:>6} {ours:>10.0f} {theirs:>10.0f} {theirs / ours:>13.2f}")


if __name__ == "__main__":
    main()

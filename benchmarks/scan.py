"""Frames per second of `lqer scan` on a 512x512 frame, on the CPU and on a GPU where present.

For each stride it times, in the same run:
  scan   `scan_frame` on a real ADSD frame: cut and resize every window, the model, heatmap
         and suppression;
  model  the model alone on the same number of ready windows (the baseline: what the
         windows cost before any overhead);
and prints frames/s, windows per frame, and scan / model (the overhead of everything but the
model), in PyTorch on each device and, on the CPU, with the model exported to ONNX Runtime
(`lqer scan --onnx`). The target of issue 13 is 1 frame/s on the 2-core CPU and 30 frames/s
on a GPU.

With `--detectors`, each whole-frame detector (a run's best.pt or shipped weights) is timed on
the same frame, in the same run, and set against today's window scan at stride 0.25 (issue
22: at least 5 frames/s and 10x the window scan on the CPU; 100 frames/s on a GPU).

    python benchmarks/scan.py                   # the shipped model, strides 0.25 and 0.5
    python benchmarks/scan.py --threads 1 --rounds 5
    python benchmarks/scan.py --detectors lqer-arcade results/detection/runs/*/best.pt \
        --dense lqer-padsd results/detection/window/runs/lqer-seed0/best.pt:64,96,128,192
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from lqer.data.images import load_gray
from lqer.device import cpu_name
from lqer.eval.dense import DenseScanner
from lqer.eval.export import OnnxModel, export_onnx
from lqer.eval.scan import DENSE_STRIDES, ScanConfig, crops, scan_frame, torch_scorer, windows
from lqer.eval.scanners import with_flip
from lqer.models.checkpoint import load_checkpoint
from lqer.models.detector import detect_frame, load_detector

FRAME = Path(__file__).resolve().parents[2] / "shared/datasets/ADSD-sample/images/14_002_5_0016.bmp"


def timed(rounds: int, fn, *args) -> float:
    """The median of `rounds` timings of fn(*args), after one warm-up call."""
    fn(*args)
    times = []
    for _ in range(rounds):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn(*args)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="lqer-padsd")
    parser.add_argument("--frame", type=Path, default=FRAME)
    parser.add_argument("--strides", type=float, nargs="+", default=[0.25, 0.5])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--detectors", nargs="*", default=[], help="Detector checkpoints.")
    parser.add_argument("--dense", nargs="*", default=[],
                        help="Patch classifiers to scan densely, as CHECKPOINT or "
                             "CHECKPOINT:SIDE,SIDE,... (window sides; default 48,64).")  # fmt: skip
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    frame = load_gray(args.frame)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(f"frame {args.frame.name} {frame.shape[1]}x{frame.shape[0]}; CPU {cpu_name()}, "
          f"{torch.get_num_threads()} threads")  # fmt: skip
    model, cfg, _ = load_checkpoint(args.checkpoint)
    size = cfg.data.image_size
    engines = [(torch.cuda.get_device_name() if name == "cuda" else "cpu, pytorch",
                torch_scorer(model.to(name).eval(), size, name)) for name in devices]  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        export_onnx(args.checkpoint, Path(folder) / "m.onnx")
        engines.append(("cpu, onnx runtime", OnnxModel(Path(folder) / "m.onnx").predict))
    window_scan = None
    for label, score in engines:
        print(f"\n{label}: {args.checkpoint}, windows resized to {size} px")
        print(f"  {'stride':>6} {'windows':>8} {'scan fps':>9} {'model fps':>10} "
              f"{'scan/model':>11}")  # fmt: skip
        for stride in args.strides:
            scan = ScanConfig(stride=stride)
            ready = torch.cat([
                crops(torch.from_numpy(frame), windows(*frame.shape, s, stride), s, size)
                for s in scan.sizes
            ])  # fmt: skip
            t_scan = timed(args.rounds, scan_frame, score, frame, size, scan)
            t_model = timed(args.rounds, score, ready)
            print(f"  {stride:>6} {len(ready):>8} {1 / t_scan:>9.2f} {1 / t_model:>10.2f} "
                  f"{t_scan / t_model:>11.2f}")  # fmt: skip
            window_scan = window_scan or t_scan  # the first engine at the first stride: today's
    for spec in args.dense:
        checkpoint, _, sides = spec.partition(":")
        model, cfg, _ = load_checkpoint(checkpoint)
        sizes = tuple(int(s) for s in sides.split(",")) if sides else (48, 64)
        for name in devices:
            for stride in (0.5, 0.25):
                scan = ScanConfig(sizes=sizes, stride=stride, dense=True)
                dense = DenseScanner(model.to(name), cfg.data.image_size, scan,
                                     DENSE_STRIDES[stride], name)  # fmt: skip
                t = timed(args.rounds, dense, frame)
                print(f"\n{name}: dense scan of {checkpoint}, windows {sizes} px every "
                      f"{stride} side: {1 / t:.2f} frames/s, {window_scan / t:.1f}x the window "
                      "scan")  # fmt: skip
    for checkpoint in args.detectors:
        model, detector_cfg, _ = load_detector(checkpoint)
        size = detector_cfg.data.input_size
        for name in devices:
            model.to(name)
            for flip in (False, True):  # the test-time flip doubles the passes
                cfg = with_flip(detector_cfg, flip)
                t = timed(args.rounds, detect_frame, model, frame, cfg)
                print(
                    f"\n{name}: detector {checkpoint} ({detector_cfg.model.head} head, frames at "
                    f"{size} px{', flip' * flip}): {1 / t:.2f} frames/s, "
                    f"{window_scan / t:.1f}x the window scan"
                )


if __name__ == "__main__":
    main()

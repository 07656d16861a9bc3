"""How fast the command line answers when no model runs: `--help`, every subcommand's `--help`,
and usage or configuration errors, beside `python -c pass` measured in the same run.

Each figure is the median wall time of a fresh process over `--rounds` runs. The target (issue
23) is under 0.5 s on a quiet 2-core machine; a busy machine shows more.

    python benchmarks/startup.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from lqer.device import cpu_name

LQER = [sys.executable, "-m", "lqer"]
COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "lqer --help": [*LQER, "--help"],
    "lqer train --set train.epochz=3 (a typo)": [*LQER, "train", "--set", "train.epochz=3"],
    "lqer train --config missing.yaml": [*LQER, "train", "--config", "missing.yaml"],
    "lqer scan (no frames: usage error)": [*LQER, "scan"],
    "lqer predict --threshold 2 (out of range)": [*LQER, "predict", "x.png", "--threshold", "2"],
}


def subcommands() -> list[list[str]]:
    """Every command and group of `lqer`, as typer registers them."""
    import typer.main

    from lqer.cli import _register, app

    _register()
    group = typer.main.get_command(app)
    found = []
    for name, command in group.commands.items():
        found.append([name])
        found += [[name, sub] for sub in getattr(command, "commands", {})]
    return found


def median_seconds(argv: list[str], rounds: int) -> tuple[float, int]:
    times, code = [], 0
    for _ in range(rounds):
        start = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, cwd=Path(__file__).parent)
        times.append(time.perf_counter() - start)
        code = done.returncode
    return statistics.median(times), code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    commands = dict(COMMANDS)
    for words in subcommands():
        commands[f"lqer {' '.join(words)} --help"] = [*LQER, *words, "--help"]
    load = os.getloadavg()[0]
    print(f"lqer start-up, median of {args.rounds} runs; {cpu_name()}, load average {load:.1f}")
    base, _ = median_seconds(commands.pop("python -c pass"), args.rounds)
    print(f"  {'python -c pass':50s} {base:6.3f} s")
    worst = 0.0
    for label, argv in commands.items():
        seconds, code = median_seconds(argv, args.rounds)
        worst = max(worst, seconds)
        print(f"  {label:50s} {seconds:6.3f} s  exit {code}  ({seconds / base:4.1f}x python)")
    print(f"slowest {worst:.3f} s: {'under' if worst < 0.5 else 'OVER'} the 0.5 s target")


if __name__ == "__main__":
    main()

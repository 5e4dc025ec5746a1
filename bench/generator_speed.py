"""How fast ``gam-depth-synth`` renders: frames per CPU second of ``render_sequence`` on one core.

Cases: the plain rooms at 96x128, 128x160 and 480x640, the rich rooms at 192x256 with one and with
nine rays per pixel (``--supersample 3``, the rich training sets). Each case renders ``--frames``
frames of sequences 0..2 of seed 30 (robot, hand-held, robot); the figure is the median over
sequences and rounds of frames / CPU seconds (``time.process_time``: less disturbed by other jobs
than the wall clock, but not immune on a shared machine).

``--compare TREE`` renders the same cases with the generator of another source tree (e.g. ``git
worktree add /tmp/before <commit>``) in alternating rounds, and prints this tree's speed as a ratio
to it, both measured in the same run. Usage::

    .venv/bin/python bench/generator_speed.py [--rounds 3] [--frames 6] [--compare /tmp/before] [--output out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CASES = [("plain", 96, 128, 1), ("plain", 128, 160, 1), ("plain", 480, 640, 1), ("rich", 192, 256, 1),
         ("rich", 192, 256, 3)]


def measure(frames: int) -> dict[str, list[float]]:
    """Frames per CPU second of each case, one figure per sequence (run in the tree on ``sys.path``)."""
    from training.synthetic.generate import render_sequence

    rates: dict[str, list[float]] = {}
    for style, height, width, supersample in CASES:
        for index in range(3):
            started = time.process_time()
            render_sequence(30, index, frames, height, width, "robot" if index % 2 == 0 else "handheld",
                            0.8 if style == "plain" else None, 65.0, "none", style, supersample)
            rates.setdefault(f"{style} {height}x{width} x{supersample * supersample} rays",
                             []).append(frames / (time.process_time() - started))
    return rates


def measure_in(tree: Path, frames: int) -> dict[str, list[float]]:
    """:func:`measure` in a fresh one-thread process importing ``training`` from ``tree``."""
    env = os.environ | {"PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1"}
    output = subprocess.run([sys.executable, __file__, "--measure", str(frames)], env=env, cwd=tree, check=True,
                            capture_output=True, text=True).stdout
    return json.loads(output.splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--frames", type=int, default=6, help="frames per sequence and case")
    parser.add_argument("--compare", type=Path, default=None, help="another source tree to measure beside this one")
    parser.add_argument("--output", type=Path, default=None, help="JSON file for the results")
    parser.add_argument("--measure", type=int, default=0, help=argparse.SUPPRESS)  # the subprocess's side
    args = parser.parse_args(argv)
    if args.measure:
        print(json.dumps(measure(args.measure)))
        return 0
    # Only here, after the measuring side returned: that side must import `training` from its own tree.
    sys.path.insert(0, str(REPO))
    from bench.report import report_header, write_report

    trees = {"this": REPO, **({"compare": args.compare.resolve()} if args.compare else {})}
    rates: dict[str, dict[str, list[float]]] = {name: {} for name in trees}
    for _ in range(args.rounds):
        for name, tree in trees.items():  # alternating: both trees see the same load over the run
            for case, values in measure_in(tree, args.frames).items():
                rates[name].setdefault(case, []).extend(values)
    report = {**report_header(argv), "trees": {name: str(tree) for name, tree in trees.items()}, "cases": {}}
    for case, values in rates["this"].items():
        row = {"frames_per_cpu_s": statistics.median(values), "samples": values}
        if "compare" in rates:
            row["compare_frames_per_cpu_s"] = statistics.median(rates["compare"][case])
            row["ratio"] = row["frames_per_cpu_s"] / row["compare_frames_per_cpu_s"]
        report["cases"][case] = row
        print(f"{case}: {row['frames_per_cpu_s']:.1f} frames/CPU s"
              + (f" ({row['ratio']:.2f}x the compared tree's {row['compare_frames_per_cpu_s']:.1f})"
                 if "ratio" in row else ""), flush=True)
    write_report(args.output, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

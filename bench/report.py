"""What every benchmark's JSON report starts with and how it is written (one place for every script).

Usage::

    report = {**report_header(argv), "results": ...}
    write_report(args.output, report)      # no-op for None
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any


def report_header(argv: list[str] | None, **machine: Any) -> dict[str, Any]:
    """``command`` (the script's name and arguments) and ``machine`` (platform, CPU count, 1-minute load
    when the report is written, Python, and any ``machine`` extras such as the thread count or the load
    before the run), as the report's first keys."""
    arguments = argv if argv is not None else sys.argv[1:]
    return {"command": " ".join([Path(sys.argv[0]).name, *arguments]),
            "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "load_1min": os.getloadavg()[0],
                        "python": platform.python_version(), **machine}}


def write_report(path: Path | None, report: dict[str, Any]) -> None:
    """Write ``report`` as indented JSON to ``path`` (its folder created); nothing when ``path`` is None."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")


def name_path_argument(option: str, what: str):
    """An argparse ``type`` for ``NAME=PATH`` options (``option`` and ``what`` name them in the error):
    returns ``(name, Path)``."""

    def parse(text: str) -> tuple[str, Path]:
        name, sep, path = text.partition("=")
        if not sep or not name or not path:
            raise argparse.ArgumentTypeError(f"{option} {text!r}: expected NAME={what}")
        return name, Path(path)

    return parse


def checkpoint_sets_parser(description: str, checkpoint_help: str, per_sequence: int) -> argparse.ArgumentParser:
    """The arguments of the scripts that score one model on folders of generated sequences: ``--checkpoint``,
    ``--set NAME=FOLDER`` (repeated), ``--per-sequence``, ``--threads`` and ``--output``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--checkpoint", required=True, type=Path, help=checkpoint_help)
    parser.add_argument("--set", dest="sets", action="append", type=name_path_argument("--set", "FOLDER"),
                        required=True, help="NAME=FOLDER of generated sequence folders (repeat)")
    parser.add_argument("--per-sequence", type=int, default=per_sequence)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", type=Path, default=None, help="JSON file for the results")
    return parser


def write_sets_report(args: argparse.Namespace, argv: list[str] | None, seconds: float, sets: dict[str, Any]) -> None:
    """The JSON report of a :func:`checkpoint_sets_parser` script: header, checkpoint, frames per sequence, run
    time and the per-set results."""
    write_report(args.output, {**report_header(argv), "checkpoint": str(args.checkpoint),
                               "per_sequence": args.per_sequence, "seconds": round(seconds, 1), "sets": sets})

"""Is one checkpoint better than another on new rooms, or is the difference the rooms' noise?

Checkpoints of one recipe differ by 0.005-0.02 AbsRel on a validation set, and a set of six rooms
scores rooms from 0.10 to 0.34: which rooms happen to be in the set decides more than the
checkpoint. This script reads ``bench/fit_gap.py`` reports (each scores every sequence, i.e. every
room, alone) of several checkpoints on the same folder, pairs the rooms by name, and reports for each
checkpoint against the first: the mean per-room difference, its standard error over rooms (paired:
what is common to both checkpoints cancels) and how many rooms got better. A difference within
about two standard errors is not a measured effect. Usage::

    .venv/bin/python bench/compare_rooms.py --set validation27 --report r320c=gap_r320c.json \\
        --report r480=gap_r480.json --output bench/results/compare_rooms.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.report import name_path_argument, report_header, write_report  # noqa: E402


def paired_room_differences(base: dict[str, float], other: dict[str, float]) -> dict[str, float]:
    """``other - base`` per room (rooms named in both), summarised.

    Returns ``rooms``, ``mean_difference`` (negative: ``other`` has the lower AbsRel),
    ``standard_error`` (sample standard deviation of the differences / sqrt(rooms); NaN for one room)
    and ``rooms_better`` (rooms where ``other`` is strictly lower).

    Raises
    ------
    ValueError
        When the two share no room.
    """
    rooms = sorted(set(base) & set(other))
    if not rooms:
        raise ValueError("the two reports share no room (sequence names differ: were they run on the same folder?)")
    differences = [other[room] - base[room] for room in rooms]
    mean = sum(differences) / len(differences)
    if len(differences) > 1:
        variance = sum((d - mean) ** 2 for d in differences) / (len(differences) - 1)
        error = math.sqrt(variance / len(differences))
    else:
        error = math.nan
    return {"rooms": len(rooms), "mean_difference": mean, "standard_error": error,
            "rooms_better": sum(d < 0 for d in differences)}


def room_scores(report_path: Path, set_name: str) -> dict[str, float]:
    """Per-room model AbsRel of one set of a ``bench/fit_gap.py`` report: ``{sequence: abs_rel}``.

    Raises
    ------
    ValueError
        Unreadable file or a set the report lacks, naming the file.
    """
    try:
        report = json.loads(report_path.read_text())
        sequences = report["sets"][set_name]["sequences"]
        return {row["sequence"]: float(row["abs_rel"]) for row in sequences}
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"{report_path}: not a readable JSON report ({error})") from error
    except (KeyError, TypeError) as error:
        raise ValueError(f"{report_path}: no per-sequence scores of set {set_name!r} (a bench/fit_gap.py report?)") \
            from error


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", required=True, help="the set name inside the reports (fit_gap.py's --set NAME)")
    parser.add_argument("--report", action="append", type=name_path_argument("--report", "FILE"), required=True,
                        help="NAME=FILE of a bench/fit_gap.py report; the first is the base (repeat)")
    parser.add_argument("--output", type=Path, default=None, help="JSON file for the results")
    args = parser.parse_args(argv)
    if len(args.report) < 2:
        parser.error("give at least two --report: the first is compared with each of the others")
    try:
        scores = {name: room_scores(path, args.set) for name, path in args.report}
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    base_name = args.report[0][0]
    base = scores[base_name]
    rows = {}
    print(f"{base_name}: mean per-room AbsRel {sum(base.values()) / len(base):.4f} over {len(base)} rooms")
    for name, _ in args.report[1:]:
        row = paired_room_differences(base, scores[name])
        row["mean_abs_rel"] = sum(scores[name].values()) / len(scores[name])
        rows[name] = row
        print(f"{name}: mean {row['mean_abs_rel']:.4f}; minus {base_name}: {row['mean_difference']:+.4f} "
              f"(standard error {row['standard_error']:.4f}), better in {row['rooms_better']} of {row['rooms']} rooms")
    write_report(args.output, {**report_header(argv), "set": args.set, "base": base_name,
                               "reports": {name: str(path) for name, path in args.report},
                               "base_mean_abs_rel": sum(base.values()) / len(base), "compared": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

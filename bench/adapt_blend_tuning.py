"""Choose ``gam-depth-adapt --blend`` on tuning rooms, never on the benchmark's held-out rooms.

Takes the last fine-tuning checkpoint of each seed's run of ``bench/adapt_building.py`` (the
weights before blending), blends it with the shipped model at several weights
(:func:`training.checkpointing.blend_checkpoints`), exports each blend and scores it on two tuning
sets used for nothing else: rooms 11-12 of the new building (seed 60; the benchmark trains on rooms
0-5, reports room 6 and holds out 7-10) and four rooms of the original plain style (seed 62; the
benchmark's original held-out rooms are seed 23).

    .venv/bin/python bench/adapt_blend_tuning.py --weights 1.0 0.7 0.5 0.3
    # each blend with its BatchNorm statistics re-estimated on 8 frames of each fine-tuning room
    .venv/bin/python bench/adapt_blend_tuning.py --weights 0.7 0.5 --batchnorm-frames 8

Prints the AbsRel per weight (mean over the seeds' runs) and writes the raw figures as JSON.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from adapt_building import BUILDING, model_size, scores  # noqa: E402

from bench.report import report_header, write_report  # noqa: E402
from gam_depth_ros.export import export_checkpoint  # noqa: E402
from training.adapt import DEFAULT_CHECKPOINT, DEFAULT_ONNX  # noqa: E402
from training.checkpointing import blend_checkpoints, latest_checkpoint  # noqa: E402
from training.synthetic.generate import render_sequence, write_folder  # noqa: E402

TUNING_ROOMS = (11, 12)  # of the new building (BUILDING["seed"])
ORIGINAL_TUNING = {"seed": 62, "sequences": 4, "frames": 60}
FRAMES = 60


def render_tuning_sets(folder: Path, height: int, width: int) -> dict[str, Path]:
    """The new building's tuning rooms at the model's size; the original style's at 192x256 (as before)."""
    new, original = folder / "new_building", folder / "original"
    for room in TUNING_ROOMS:
        target = new / f"room_{room:02d}"
        if not target.exists():
            write_folder(render_sequence(BUILDING["seed"], room, FRAMES, height, width, "robot",
                                         BUILDING["camera_height"], style=BUILDING["style"],
                                         supersample=BUILDING["supersample"], fps=BUILDING["fps"]), target)
    for index in range(ORIGINAL_TUNING["sequences"]):
        target = original / f"seq_{index:04d}"
        if not target.exists():
            write_folder(render_sequence(ORIGINAL_TUNING["seed"], index, ORIGINAL_TUNING["frames"], 192, 256,
                                         "robot", 0.8), target)
    return {"new_building": new, "original": original}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=float, nargs="+", default=[1.0, 0.7, 0.5, 0.3])
    parser.add_argument("--runs", type=Path, default=REPO / "output" / "adapt_building",
                        help="bench/adapt_building.py's --data: its run_seed* folders are in RUNS/HxW")
    parser.add_argument("--data", type=Path, default=REPO / "output" / "adapt_tuning",
                        help="tuning renders go to DATA/HxW (the model's input size)")
    parser.add_argument("--batchnorm-frames", type=int, default=0, metavar="N",
                        help="re-estimate each blend's BatchNorm statistics on N frames of each of the new building's "
                             "fine-tuning rooms (RUNS/HxW/bags/*_frames); 0: blended like the weights (default)")
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results" / "adapt_blend_tuning.json")
    args = parser.parse_args(argv)
    height, width = model_size()
    args.runs, args.data = args.runs / f"{height}x{width}", args.data / f"{height}x{width}"
    folders = render_tuning_sets(args.data, height, width)
    shipped = scores(DEFAULT_ONNX, folders)
    runs = sorted(p for p in args.runs.glob("run_seed*") if latest_checkpoint(p / "train"))
    if not runs:
        raise SystemExit(f"{args.runs}: no run_seed*/train checkpoints; run bench/adapt_building.py first")
    # The frames every run fine-tuned on (bench/adapt_building.py extracts them from its bags).
    building_frames = sorted((args.runs / "bags").glob("room_*_frames")) if args.batchnorm_frames else []
    if args.batchnorm_frames and not building_frames:
        raise SystemExit(f"{args.runs / 'bags'}: no room_*_frames folders to re-estimate BatchNorm statistics on")
    results: dict[str, dict] = {}
    for weight in args.weights:
        for run in runs:
            blended = blend_checkpoints(DEFAULT_CHECKPOINT, latest_checkpoint(run / "train"), weight,
                                        args.data / f"{run.name}_blend{weight:g}.pt", building_frames,
                                        args.batchnorm_frames)
            export_checkpoint(blended, blended.with_suffix(".onnx"))
            results.setdefault(f"{weight:g}", {})[run.name] = scores(blended.with_suffix(".onnx"), folders)
            print(weight, run.name, {k: round(v["abs_rel"], 4) for k, v in results[f"{weight:g}"][run.name].items()},
                  flush=True)
    print(f"{'blend':>6s} " + " ".join(f"{key:>20s}" for key in shipped))
    print(f"{'shipped':>6s} " + " ".join(f"{row['abs_rel']:20.3f}" for row in shipped.values()))
    means = {}
    for weight, per_run in results.items():
        means[weight] = {key: statistics.fmean(r[key]["abs_rel"] for r in per_run.values()) for key in shipped}
        print(f"{weight:>6s} " + " ".join(f"{means[weight][key]:20.3f}" for key in shipped))
    out = {**report_header(argv),
           "tuning_sets": {"new_building": {"seed": BUILDING["seed"], "rooms": list(TUNING_ROOMS), "frames": FRAMES},
                           "original": ORIGINAL_TUNING},
           "runs": [r.name for r in runs], "batchnorm_frames_per_room": args.batchnorm_frames,
           "batchnorm_rooms": [p.name for p in building_frames], "shipped": shipped, "blends": results,
           "mean_abs_rel": means}
    write_report(args.output, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

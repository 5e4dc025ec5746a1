"""Benchmark of ``gam-depth-adapt``: does the default run pay off in a building the model never saw?

The "new building" is rendered by the generator in the ``relit`` style (the plain rooms' kinds of
furniture in other materials, under tinted point lights; training/synthetic/relit_scene.py), seen
by a smaller robot (camera 0.45 m high instead of 0.8 m) at 15 Hz instead of 30 Hz, recorded as
bags with odometry and ``/tf_static``, at the shipped model's input size (192x256 today; into
``--data``/``HxW``, so renders made for another model size are never reused). Seed 60: rooms 0-5
are the robot's recordings (``--bags``), room 6 the evaluation bag of the adapt report
(``--eval-bag``), rooms 7-10 the held-out rooms scored here and used for nothing else.
Forgetting is measured on the original held-out rooms
(``output/plain_heldout``, seed 23, the speed/accuracy benchmark's). Each adapt seed is one full
default run (``--seed``); the table gives mean and spread over them.

    .venv/bin/python bench/adapt_building.py --seeds 0 1 2 --output bench/results/adapt_building.json

Prints a table and writes the raw figures as JSON (command, machine load, minutes per run).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.report import report_header, write_report  # noqa: E402
from gam_depth_ros.export import export_checkpoint  # noqa: E402
from gam_depth_ros.inference import create_backend  # noqa: E402
from gam_depth_ros.metadata import read_metadata  # noqa: E402
from training import adapt  # noqa: E402
from training.evaluate import backend_predictor, evaluate_items, sequence_folder_items  # noqa: E402
from training.synthetic.generate import render_sequence, write_bag, write_folder  # noqa: E402

BUILDING = {"seed": 60, "style": "relit", "camera_height": 0.45, "fps": 15.0, "frames": 150, "supersample": 2}
TRAIN_ROOMS, EVAL_ROOM, HELDOUT_ROOMS = range(0, 6), 6, range(7, 11)
ORIGINAL = {"seed": 23, "sequences": 8, "frames": 60}  # output/plain_heldout of bench/speed_accuracy.py
PER_SEQUENCE = 10


def model_size() -> tuple[int, int]:
    """(height, width) of the shipped model's input: the size the benchmark renders at."""
    metadata = read_metadata(adapt.DEFAULT_ONNX)
    return metadata.input_height, metadata.input_width


def render_building(folder: Path, height: int, width: int) -> tuple[list[Path], Path, Path]:
    """Bags of the training rooms, the evaluation bag, and the held-out rooms' folders (made once)."""
    heldout = folder / "heldout"
    bags = [folder / "bags" / f"room_{i:02d}" for i in TRAIN_ROOMS]
    eval_bag = folder / "eval" / f"room_{EVAL_ROOM:02d}"
    for index in [*TRAIN_ROOMS, EVAL_ROOM, *HELDOUT_ROOMS]:
        bag = eval_bag if index == EVAL_ROOM else (bags[index] if index in TRAIN_ROOMS else None)
        target = bag or heldout / f"room_{index:02d}"
        if target.exists():
            continue
        sequence = render_sequence(BUILDING["seed"], index, BUILDING["frames"], height, width, "robot",
                                   BUILDING["camera_height"], style=BUILDING["style"],
                                   supersample=BUILDING["supersample"], fps=BUILDING["fps"])
        target.parent.mkdir(parents=True, exist_ok=True)
        write_bag(sequence, target) if bag else write_folder(sequence, target)
        print(f"rendered {target}", flush=True)
    return bags, eval_bag, heldout


def render_original(folder: Path, height: int, width: int) -> None:
    for index in range(ORIGINAL["sequences"]):
        target = folder / f"seq_{index:04d}"
        if not target.exists():
            write_folder(render_sequence(ORIGINAL["seed"], index, ORIGINAL["frames"], height, width, "robot", 0.8),
                         target)


def scores(model: Path, folders: dict[str, Path]) -> dict:
    """Median-scaled and metric AbsRel / δ1 / object AbsRel of an ONNX model on each held-out set."""
    backend = create_backend("onnxruntime", model, threads=2)
    predict = backend_predictor(backend, backend.metadata.depth_scale)
    out = {}
    for name, folder in folders.items():
        for protocol, median in (("median", True), ("metric", False)):
            result = evaluate_items(predict, sequence_folder_items(folder, PER_SEQUENCE), median_scaling=median)
            out[f"{name}_{protocol}"] = {"abs_rel": result["depth"]["abs_rel"], "delta1": result["depth"]["delta1"],
                                         "object_abs_rel": result["obstacles"].get("object_abs_rel")}
    return out


def summary(runs: list[dict], shipped: dict, field: str = "scores") -> dict:
    """Per held-out set: shipped AbsRel, the adapted runs' mean and spread, the change in percent."""
    out = {}
    for key, base in shipped.items():
        values = [run[field][key]["abs_rel"] for run in runs]
        mean = statistics.fmean(values)
        out[key] = {"shipped": base["abs_rel"], "adapted_mean": mean,
                    "adapted_std": statistics.stdev(values) if len(values) > 1 else 0.0,
                    "change_percent": 100 * (mean - base["abs_rel"]) / base["abs_rel"]}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--data", type=Path, default=REPO / "output" / "adapt_building",
                        help="renders go to DATA/HxW (the model's input size), runs beside them")
    parser.add_argument("--original-heldout", type=Path, default=REPO / "output" / "plain_heldout")
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results" / "adapt_building.json")
    parser.add_argument("--adapt-arg", action="append", default=[], help="extra gam-depth-adapt argument")
    args = parser.parse_args(argv)
    height, width = model_size()
    args.data = args.data / f"{height}x{width}"
    bags, eval_bag, heldout = render_building(args.data, height, width)
    render_original(args.original_heldout, 192, 256)
    folders = {"new_building": heldout, "original": args.original_heldout}
    shipped = scores(adapt.DEFAULT_ONNX, folders)
    runs = []
    for seed in args.seeds:
        start = time.monotonic()
        run_dir = args.data / f"run_seed{seed}"
        adapt_argv = ["--bags", *map(str, bags), "--eval-bag", str(eval_bag), "--output", str(run_dir),
                      "--rectified", "--seed", str(seed), *args.adapt_arg]
        if adapt.main(adapt_argv) != 0:
            raise SystemExit(f"gam-depth-adapt failed for seed {seed}")
        minutes = (time.monotonic() - start) / 60
        # the ablation of --blend: the last fine-tuning checkpoint alone (blend 1)
        report = json.loads((run_dir / "report.json").read_text())
        unblended = run_dir / "fine_tuned_only.onnx"
        export_checkpoint(report["fine_tuned_checkpoint"], unblended)
        runs.append({"seed": seed, "minutes": minutes, "blend": report["blend"],
                     "scores": scores(run_dir / "model" / "gam_depth_adapted.onnx", folders),
                     "fine_tuned_only_scores": scores(unblended, folders)})
        print(json.dumps(runs[-1]), flush=True)
    table, ablation = summary(runs, shipped), summary(runs, shipped, "fine_tuned_only_scores")
    for title, rows in (("gam-depth-adapt (default)", table), ("fine-tuned only (--blend 1)", ablation)):
        print(f"{title:28s} {'shipped':>8s} {'adapted (mean ± std)':>22s} {'change':>8s}")
        for key, row in rows.items():
            print(f"  {key:26s} {row['shipped']:8.3f} {row['adapted_mean']:12.3f} ± {row['adapted_std']:.3f} "
                  f"{row['change_percent']:+7.1f} %")
    result = {**report_header(argv),
              "building": BUILDING, "rooms": {"train": list(TRAIN_ROOMS), "eval_bag": EVAL_ROOM,
                                              "heldout": list(HELDOUT_ROOMS)},
              "original_heldout": ORIGINAL | {"folder": str(args.original_heldout)}, "per_sequence": PER_SEQUENCE,
              "shipped": shipped, "runs": runs, "summary": table,
              "summary_fine_tuned_only": ablation}
    write_report(args.output, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Floor mode room by room: does a model's floor give metres, and where does it give nothing?

Renders robot bags of rooms ``--first-room`` .. ``--first-room + --rooms - 1`` of generator seed
``--seed`` (the robot camera: ``--camera-height``, pitched 0.2 rad down), replays each through
``gam-depth-bag-eval --scale-mode floor`` (the node's own scaling code) and reports per room: frames
published (with a metric scale), metric AbsRel of what was published, the median-scaled AbsRel of the
same frames, the used scale against the one median scaling implies (``scale_ratio``: 1 is right),
the true floor share of the frames and why frames gave no measurement. Usage::

    .venv/bin/python bench/floor_rooms.py --seed 58 --rooms 10 --output bench/results/floor_rooms_seed58.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.report import report_header, write_report  # noqa: E402
from gam_depth_ros.demo_model import SOURCE_TREE_DEMO_MODEL  # noqa: E402
from gam_depth_ros.evaluation.bag_eval import main as bag_eval  # noqa: E402
from training.synthetic.generate import TOPICS, render_sequence, write_bag  # noqa: E402
from training.synthetic.room import LABEL  # noqa: E402
from training.synthetic.trajectory import ROBOT_PITCH  # noqa: E402


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=SOURCE_TREE_DEMO_MODEL, help="ONNX model or checkpoint")
    parser.add_argument("--seed", type=int, required=True, help="generator seed of the rooms (docs/data.md)")
    parser.add_argument("--first-room", type=int, default=0)
    parser.add_argument("--rooms", type=int, default=10)
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--height", type=int, default=192)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--style", default="rich", help="room style of the generator (rich, plain, ...)")
    parser.add_argument("--camera-height", type=float, default=0.8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", type=Path, default=None, help="JSON report")
    return parser.parse_args(argv)


def room_report(args: argparse.Namespace, room: int, work: Path) -> dict:
    """Render room ``room``, replay it in floor mode, and summarise ``gam-depth-bag-eval``'s report."""
    sequence = render_sequence(args.seed, room, args.frames, args.height, args.width, "robot",
                               camera_height=args.camera_height, style=args.style)
    bag = write_bag(sequence, work / f"room{room}" / "bag")
    output = work / f"room{room}" / "eval"
    status = bag_eval(["--bag", str(bag), "--image-topic", TOPICS["image"], "--camera-info-topic",
                       TOPICS["camera_info"], "--depth-topic", TOPICS["depth"], "--model", str(args.model),
                       "--threads", str(args.threads), "--scale-mode", "floor", "--camera-height",
                       str(args.camera_height), "--camera-pitch-deg", str(math.degrees(-ROBOT_PITCH)),
                       "--output", str(output)])
    if status != 0:
        raise RuntimeError(f"gam-depth-bag-eval failed on room {room} (exit {status})")
    report = json.loads((output / "report.json").read_text())
    summary = report["summary"]
    published = summary["frames"] - summary["frames_without_scale"]
    row = {"room": room, "frames": summary["frames"], "published": published,
           "true_floor_share": float(np.mean(sequence.labels == LABEL["floor"])),
           "rejections": report.get("floor_rejections", {})}
    if published:
        used = summary["scale"]["used"]["median"]
        implied = summary["scale"]["median_scaling_factor"]["median"]
        row |= {"metric_abs_rel": summary["metric"]["abs_rel"], "median_abs_rel": summary["median"]["abs_rel"],
                "scale_ratio": used / implied}
    return row


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    start = time.time()
    with tempfile.TemporaryDirectory() as folder:
        rows = [room_report(args, room, Path(folder)) for room in range(args.first_room, args.first_room + args.rooms)]
    for row in rows:
        scored = (f"metric AbsRel {row['metric_abs_rel']:.3f} (median-scaled {row['median_abs_rel']:.3f}), "
                  f"scale x{row['scale_ratio']:.2f}" if row["published"] else "nothing published")
        print(f"room {row['room']}: floor {100 * row['true_floor_share']:.1f} % of pixels, "
              f"{row['published']}/{row['frames']} frames published, {scored}")
    published = [row for row in rows if row["published"]]
    summary = {"rooms": len(rows), "rooms_published": len(published),
               "frames_published": sum(row["published"] for row in rows), "frames": sum(row["frames"] for row in rows),
               "rooms_within_10_percent": sum(abs(math.log(row["scale_ratio"])) < math.log(1.1) for row in published)}
    print(json.dumps(summary))
    write_report(args.output, {**report_header(argv, threads=args.threads), "model": str(args.model),
                               "seconds": time.time() - start, "summary": summary, "rooms": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

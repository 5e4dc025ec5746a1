"""``gam-depth-adapt``: adapt the shipped model to a robot's own recordings in one command.

The loop of README "Adapting to your building"::

    scripts/gam-depth-adapt --bags recordings/*.bag --eval-bag recordings/eval_with_depth --output adapted/

1. **extract** every bag (image, camera_info, odometry + ``/tf_static``; topics found by type when
   there is one of each) - one sequence per bag, source frames spaced by motion (odometry) or time;
   plus ``--replay-rooms`` rooms of the shipped model's own training style (rendered once by the
   generator, seed 20 like the demo model's data, as bags with odometry): rehearsal, so the model
   does not forget the rooms it knew while it learns the new building;
2. **self-labels** (unless ``--no-self-labels``): the starting model's semantic head labels every
   frame, low-confidence pixels void (:mod:`training.self_labels`), so the semantic constraint works;
3. **fine-tune** from ``--checkpoint`` with ``config/finetune_rosbag.yaml`` (camera poses from the
   odometry when the bags have it, else the pose network);
4. **export** to ONNX (+ metadata), ready for ``depth.launch.py model_path:=...``: the last
   checkpoint, or with ``--blend`` below 1 its blend with the starting model (weight of the
   fine-tuned weights, :func:`training.checkpointing.blend_checkpoints`); 1 is the default since the
   192x256 model (chosen on tuning rooms: blends broke its metric scale, docs/training.md);
5. **evaluate** the starting model and the adapted one with ``gam-depth-bag-eval`` on the
   evaluation bag (it needs a depth topic);
6. **report**: ``report.md`` / ``report.json`` with the before/after table (median-scaled and metric,
   overall and object pixels) and the evaluation figures.

Each stage prints its number, what it does and how long it took; fine-tuning shows a progress bar
with a time estimate on a terminal (log lines otherwise). Exit status 0, or 2 with a message naming
the bag, topic or file at fault.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CHECKPOINT = REPO / "models" / "demo" / "gam_depth_demo.safetensors"
DEFAULT_ONNX = REPO / "models" / "demo" / "gam_depth_demo.onnx"
DEFAULT_CONFIG = REPO / "config" / "finetune_rosbag.yaml"
IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")
POSE_TYPES = ("nav_msgs/msg/Odometry", "geometry_msgs/msg/PoseStamped", "geometry_msgs/msg/PoseWithCovarianceStamped")
NOT_COLOUR = ("depth", "label", "semantic", "infra", "mask", "disparity")  # image topics that are not the camera
TABLE_KEYS = (("abs_rel", "AbsRel"), ("rmse", "RMSE m"), ("delta1", "δ1"))
# Fine-tuning speed of config/finetune_rosbag.yaml on 2 CPU cores at 192x256 (bench/adapt_building.py, seed 0,
# 2026-12-07: 1540 steps of 4 images in 1524 s); other input sizes scale it by their pixel count.
CPU_IMAGES_PER_S_192X256 = 4.0
REPLAY_SEED = 20  # the demo model's training rooms (rich style, waypoints 0.8 m from walls; docs/training.md)
REPLAY_WAYPOINT_MARGIN = 0.8
LOG = logging.getLogger("training.adapt")


class AdaptError(RuntimeError):
    """A stage cannot run; the message names the bag, topic or file."""


def bag_topics(bag: Path) -> dict[str, str]:
    """``{topic: message type}`` of a rosbag2 folder."""
    from rosbags.highlevel import AnyReader

    try:
        with AnyReader([bag]) as reader:
            return {c.topic: c.msgtype for c in reader.connections}
    except Exception as error:  # rosbags raises its own reader errors
        raise AdaptError(f"{bag}: cannot open rosbag2: {error}") from error


def pick_topic(topics: dict[str, str], types: tuple[str, ...], given: str | None, what: str, bag: Path,
               required: bool = True, keep=lambda topic: True) -> str:
    """The topic ``given``, or the only one of ``types`` that ``keep`` accepts; '' when optional and none."""
    if given:
        if given not in topics:
            raise AdaptError(f"{bag}: {what} topic {given!r} is not in the bag; it has {sorted(topics)}")
        return given
    found = sorted(t for t, kind in topics.items() if kind in types and keep(t))
    if len(found) == 1:
        return found[0]
    if not found and not required:
        return ""
    raise AdaptError(f"{bag}: {'several' if found else 'no'} {what} topics ({found or sorted(topics)}); "
                     f"name one with --{what.replace(' ', '-')}-topic")


class Stages:
    """Numbered stage lines with durations."""

    def __init__(self, total: int) -> None:
        self.total, self.number, self.started = total, 0, time.monotonic()

    def begin(self, text: str) -> float:
        self.number += 1
        print(f"[{self.number}/{self.total}] {text}", flush=True)
        return time.monotonic()

    def end(self, start: float, text: str = "") -> None:
        print(f"      done in {time.monotonic() - start:.0f} s{': ' + text if text else ''}", flush=True)


def replay_bags(folder: Path, rooms: int, size: tuple[int, int], image_topic: str, info_topic: str,
                odometry_topic: str) -> list[Path]:
    """``rooms`` bags of the demo model's training rooms (seed 20, mixed motion, 150 frames at 30 Hz), made once.

    Their topics are renamed to the robot's (``image_topic``, ``info_topic``) so one config reads all bags.
    The colour is rendered with one ray per pixel, not the training data's 3x3: the same rooms, depth and
    poses for a ninth of the rays (measured beside a training run at 192x256: 31 frames in 2.4 s at one ray,
    11 frames in 5.5 s at 3x3).
    """
    from training.synthetic.generate import render_sequence, write_bag

    bags = []
    for index in range(rooms):
        bag = folder / f"replay_{index:02d}"
        if not bag.exists():
            motion = "robot" if index % 2 == 0 else "handheld"
            sequence = render_sequence(REPLAY_SEED, index, 150, *size, motion, None, style="rich",
                                       waypoint_margin=REPLAY_WAYPOINT_MARGIN)
            write_bag(sequence, bag,
                      topics={"image": image_topic, "camera_info": info_topic, "odometry": odometry_topic})
        bags.append(bag)
    return bags


def training_overrides(args: argparse.Namespace, bags: list[Path], image: str, info: str, odometry: str) -> list[str]:
    """``--set`` overrides of ``config/finetune_rosbag.yaml`` for this run."""
    overrides = [f"data.path={json.dumps([str(b) for b in bags])}", f"data.options.topic={image}",
                 f"networks.init_checkpoint={args.checkpoint}", f"train.output_dir={args.output / 'train'}",
                 f"train.seed={args.seed}", f"train.progress_bar={str(sys.stderr.isatty()).lower()}"]
    overrides.append(f"data.options.camera_info_topic={info}" if info else "data.options.camera_info_topic=null")
    if not info and args.intrinsics:
        overrides.append(f"data.options.intrinsics={json.dumps(args.intrinsics)}")
    if args.rectified:
        overrides.append("data.options.undistort=false")
    if odometry:
        overrides += [f"data.options.odometry_topic={odometry}", "networks.pose_source=data"]
    if not args.no_self_labels:
        overrides.append(f"loss.semantic_weight={args.semantic_weight}")
    if args.epochs:
        overrides.append(f"train.epochs={args.epochs}")
    return overrides + list(args.set)


def evaluation(args: argparse.Namespace, model: Path, name: str, image: str, info: str, depth: str,
               labels: str) -> dict:
    """``gam-depth-bag-eval`` (offline) of ``model`` on the evaluation bag; its report dict."""
    from gam_depth_ros.evaluation.bag_eval import evaluate
    from gam_depth_ros.evaluation.bag_eval import parse_args as bag_eval_args

    argv = ["--bag", str(args.eval_bag), "--image-topic", image, "--depth-topic", depth, "--model", str(model),
            "--output", str(args.output / name), "--threads", "2"]
    if info:
        argv += ["--camera-info-topic", info]
    if labels:
        argv += ["--label-topic", labels]
    return evaluate(bag_eval_args(argv))


def run(args: argparse.Namespace) -> dict:
    """The six stages of the module docstring; returns the report dict (also written to ``--output``)."""
    from gam_depth_ros.checkpoint import CheckpointError
    from gam_depth_ros.config_io import ConfigError
    from gam_depth_ros.evaluation.bag_reader import BagError
    from gam_depth_ros.export import ExportError, export_checkpoint
    from training.checkpointing import blend_checkpoints
    from training.config import load_training_config
    from training.data.common import DataError
    from training.data.factory import make_dataset, sequences
    from training.distributed import init_distributed
    from training.self_labels import write_self_labels
    from training.trainer import NonFiniteLossError, Trainer

    if args.eval_bag.resolve() in {b.resolve() for b in args.bags}:
        raise AdaptError(f"{args.eval_bag}: the evaluation bag is one of --bags; use a recording not trained on")
    first = args.bags[0]
    topics = bag_topics(first)
    image = pick_topic(topics, IMAGE_TYPES, args.image_topic, "image", first,
                       keep=lambda t: not any(word in t for word in NOT_COLOUR))
    info = pick_topic(topics, ("sensor_msgs/msg/CameraInfo",), args.camera_info_topic, "camera info", first,
                      required=not args.intrinsics, keep=lambda t: "depth" not in t)
    odometry = pick_topic(topics, POSE_TYPES, args.odometry_topic, "odometry", first, required=False)
    eval_topics = bag_topics(args.eval_bag)
    depth = pick_topic(eval_topics, ("sensor_msgs/msg/Image",), args.depth_topic, "depth", args.eval_bag,
                       keep=lambda t: "depth" in t)
    labels = pick_topic(eval_topics, ("sensor_msgs/msg/Image",), None, "label", args.eval_bag, required=False,
                        keep=lambda t: "label" in t)
    # the evaluation bag may come from another recording setup: its own topics when the names differ
    eval_image = image if image in eval_topics else pick_topic(
        eval_topics, IMAGE_TYPES, None, "image", args.eval_bag, keep=lambda t: not any(w in t for w in NOT_COLOUR))
    eval_info = info if info in eval_topics else pick_topic(
        eval_topics, ("sensor_msgs/msg/CameraInfo",), None, "camera info", args.eval_bag, required=False,
        keep=lambda t: "depth" not in t)
    print(f"bags: {len(args.bags)}; image {image}, camera_info {info or '(--intrinsics)'}, "
          f"odometry {odometry or 'none (pose network)'}; evaluation image {eval_image}, depth {depth}", flush=True)
    args.output.mkdir(parents=True, exist_ok=True)
    stages = Stages(5 if args.no_self_labels else 6)
    try:
        bags = list(args.bags)
        if args.replay_rooms:
            if not odometry or not info:
                raise AdaptError("--replay-rooms needs bags with odometry and camera_info (or --replay-rooms 0)")
            model = load_training_config(args.config).model
            bags += replay_bags(args.output / "replay", args.replay_rooms, (model.height, model.width), image, info,
                                odometry)
        config = load_training_config(args.config, training_overrides(args, bags, image, info, odometry))
        start = stages.begin(f"extracting frames from every bag (cached beside each bag; {args.replay_rooms} "
                             "replay rooms)")
        dataset = make_dataset(config.data, config.frame_ids, config.model.height, config.model.width, train=True)
        stages.end(start, f"{len(dataset)} training samples")
        if not args.no_self_labels:
            start = stages.begin(f"self-labels from {args.checkpoint.name} (void below {args.min_confidence})")
            targets = make_dataset(config.data, (0,), config.model.height, config.model.width, train=False)
            count = write_self_labels(sequences(targets), args.checkpoint, args.min_confidence, overwrite=True)
            stages.end(start, f"{count} label images")
        steps = -(-len(dataset) // config.train.batch_size) * config.train.epochs
        rate = CPU_IMAGES_PER_S_192X256 * 192 * 256 / (config.model.height * config.model.width)
        start = stages.begin(f"fine-tuning: {config.train.epochs} epochs, about {steps} steps "
                             f"(~{steps * config.train.batch_size / rate / 60:.0f} min at {rate:.1f} images/s on 2 CPU "
                             "cores, less on a GPU)")
        result = Trainer(config, init_distributed()).fit()
        stages.end(start, f"{result.step} steps, checkpoint {result.checkpoint}")
        start = stages.begin(f"exporting to ONNX ({args.blend:g} fine-tuned + {1 - args.blend:g} starting weights)")
        onnx = args.output / "model" / "gam_depth_adapted.onnx"
        onnx.parent.mkdir(parents=True, exist_ok=True)
        export_checkpoint(blend_checkpoints(args.checkpoint, result.checkpoint, args.blend, onnx.with_suffix(".pt")),
                          onnx)
        stages.end(start, str(onnx))
        start = stages.begin(f"evaluating before and after on {args.eval_bag}")
        evals = {}
        for name, model in (("before", args.baseline_model), ("after", onnx)):
            evals[name] = evaluation(args, model, f"eval_{name}", eval_image, eval_info, depth, labels)
        stages.end(start)
    except (ConfigError, DataError, CheckpointError, ExportError, NonFiniteLossError, BagError) as error:
        raise AdaptError(str(error)) from error
    start = stages.begin("writing the report")
    report = {"bags": [str(b) for b in args.bags], "eval_bag": str(args.eval_bag), "checkpoint": str(args.checkpoint),
              "baseline_model": str(args.baseline_model), "model": str(onnx), "self_labels": not args.no_self_labels,
              "odometry": odometry, "steps": result.step, "fine_tuned_checkpoint": str(result.checkpoint),
              "blend": args.blend, "minutes": (time.monotonic() - stages.started) / 60,
              "before": evals["before"]["summary"], "after": evals["after"]["summary"]}
    (args.output / "report.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    (args.output / "report.md").write_text(report_markdown(report), encoding="utf-8")
    stages.end(start, str(args.output / "report.md"))
    print(f"deploy: ros2 launch gam_depth_ros depth.launch.py model_path:={onnx.resolve()}", flush=True)
    return report


def before_after_rows(report: dict) -> list[tuple[str, float | None, float | None]]:
    """``(metric name, before, after)`` for the depth and object-pixel scores, median-scaled and metric."""
    rows = []
    for protocol in ("median", "metric"):
        for key, name in TABLE_KEYS:
            rows.append((f"{name} ({protocol})", *(report[w].get(protocol, {}).get(key) for w in ("before", "after"))))
        rows.append((f"object AbsRel ({protocol})", *(report[w].get("obstacles", {}).get(protocol, {})
                                                      .get("object_abs_rel") for w in ("before", "after"))))
    return rows


def report_markdown(report: dict) -> str:
    """``report.md``: the before/after table and the figures of both evaluations."""
    def cell(value):
        return "-" if value is None else f"{value:.3f}"

    lines = ["# gam-depth-adapt report", "",
             f"Fine-tuned {report['checkpoint']} on {len(report['bags'])} bag(s) for {report['steps']} steps "
             f"({report['minutes']:.1f} min in all; exported as {report['blend']:g} fine-tuned + "
             f"{1 - report['blend']:g} starting weights; self-labels {'on' if report['self_labels'] else 'off'}; "
             f"poses from {report['odometry'] or 'the pose network'}). Evaluated on {report['eval_bag']}.", "",
             "| score | before | after | change |", "|---|---|---|---|"]
    for name, before, after in before_after_rows(report):
        change = "-" if before in (None, 0) or after is None else f"{100 * (after - before) / before:+.1f} %"
        lines.append(f"| {name} | {cell(before)} | {cell(after)} | {change} |")
    lines += ["", "Lower is better except δ1. Figures: `eval_before/` and `eval_after/` (report.md, PNGs).",
              "", f"Model for the node: `{report['model']}` (metadata JSON beside it).", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gam-depth-adapt", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--bags", nargs="+", required=True, type=Path, help="the robot's recordings (rosbag2)")
    parser.add_argument("--eval-bag", required=True, type=Path, help="a recording with a depth topic, not in --bags")
    parser.add_argument("--output", required=True, type=Path, help="folder for the run, model and report")
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT, help="model to start from")
    parser.add_argument("--baseline-model", type=Path, default=DEFAULT_ONNX,
                        help="ONNX model scored as 'before' (default: the shipped model)")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="fine-tuning config")
    parser.add_argument("--image-topic", help="colour images (default: the bag's only Image/CompressedImage topic)")
    parser.add_argument("--camera-info-topic", help="CameraInfo (default: found by type)")
    parser.add_argument("--odometry-topic", help="nav_msgs/Odometry or PoseStamped (default: found by type)")
    parser.add_argument("--depth-topic", help="ground-truth depth in --eval-bag (default: a topic with 'depth')")
    parser.add_argument("--intrinsics", type=json.loads, help='JSON {"fx":..,"fy":..,"cx":..,"cy":..,"width":..,'
                                                               '"height":..} when the bags have no CameraInfo')
    parser.add_argument("--rectified", action="store_true", help="the image topic is rectified (no undistortion)")
    parser.add_argument("--no-self-labels", action="store_true", help="fine-tune without the semantic loss")
    parser.add_argument("--replay-rooms", type=int, default=3,
                        help="generated rooms of the original training style trained on too (0: none)")
    parser.add_argument("--min-confidence", type=float, default=0.5, help="self-labels: void below this confidence")
    parser.add_argument("--semantic-weight", type=float, default=0.1, help="self-labels: weight of the semantic loss")
    parser.add_argument("--blend", type=float, default=1.0,
                        help="weight of the fine-tuned weights in the exported model, the rest the starting "
                             "model's (1: fine-tuned only, chosen on tuning rooms for the 192x256 model; "
                             "docs/training.md)")
    parser.add_argument("--epochs", type=int, default=0, help="fine-tuning epochs (0: the config's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="any config override")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="      %(message)s")
    try:
        run(args)
    except AdaptError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

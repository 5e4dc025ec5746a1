"""The demo behind ``make demo``: a robot's rosbag replayed live through ``depth_node``.

1. The sample bag ``output/demo/sample_bag`` (a robot driving through a rich-style synthetic room
   never trained on: colour images, camera info, ground-truth depth and labels at 30 Hz) is generated if absent.
2. ``gam-depth-bag-eval --mode live`` starts the node with the shipped demo model
   (``models/demo/gam_depth_demo.onnx``), replays the bag to it over DDS, scores depth and labels
   against the ground truth, measures latency and records the node's outputs.
3. The report summary is printed with where the pictures and the recorded bag are.

Without the shipped model (``--model`` missing) a seeded random network stands in, loudly:
its numbers are then meaningless.

    python scripts/demo.py [--output output/demo] [--frames 90] [--image-size 240x320] [--mode live]
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gam_depth_ros.evaluation.bag_eval import evaluate, parse_args  # noqa: E402
from training.synthetic.generate import TOPICS, render_sequence, write_bag  # noqa: E402

LOG = logging.getLogger("demo")
DEMO_MODEL = REPO / "models" / "demo" / "gam_depth_demo.onnx"
SAMPLE_SEED = 7  # used for nothing else (docs/data.md): rooms the model never saw
SAMPLE_STYLE = "rich"  # the shipped model's training style (textures, lights, clutter)
RANDOM_MODEL_BANNER = ("\n" + "!" * 100 + "\n!! WARNING: %s not found: the demo uses a seeded RANDOM network.\n"
                       "!! The pipeline runs end to end, but its depth and label numbers are meaningless.\n"
                       + "!" * 100)


def parse_size(text: str) -> tuple[int, int]:
    height, width = (int(v) for v in text.lower().split("x"))
    return height, width


def sample_bag(path: Path, frames: int, size: tuple[int, int]) -> Path:
    """Generate the sample bag unless it exists with the same settings."""
    stamp = path.with_name(path.name + ".settings.json")
    settings = {"seed": SAMPLE_SEED, "style": SAMPLE_STYLE, "frames": frames, "size": list(size)}
    if path.exists() and stamp.exists() and json.loads(stamp.read_text()) == settings:
        return path
    shutil.rmtree(path, ignore_errors=True)
    LOG.info("rendering the sample bag (%d frames of %dx%d, robot camera 0.8 m above the floor) ...",
             frames, size[1], size[0])
    write_bag(render_sequence(SAMPLE_SEED, 0, frames, size[0], size[1], "robot", style=SAMPLE_STYLE), path)
    stamp.write_text(json.dumps(settings))
    return path


def random_model(folder: Path) -> Path:
    """Seeded random-init compact network exported to ONNX (only when the demo model is missing)."""
    from gam_depth_ros.export import export_random_model
    from gam_depth_ros.model_config import ModelConfig

    return export_random_model(folder / "random_init.onnx", ModelConfig(height=96, width=128, base_channels=32))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=REPO / "output" / "demo")
    parser.add_argument("--frames", type=int, default=90, help="frames of the sample bag (30 Hz)")
    parser.add_argument("--image-size", type=parse_size, default=(240, 320), help="camera image HxW")
    parser.add_argument("--model", type=Path, default=DEMO_MODEL)
    parser.add_argument("--mode", choices=("live", "offline"), default="live")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args.output.mkdir(parents=True, exist_ok=True)
    bag = sample_bag(args.output / "sample_bag", args.frames, args.image_size)
    model = args.model
    stand_in = not model.is_file()
    if stand_in:
        LOG.warning(RANDOM_MODEL_BANNER, model)
        model = random_model(args.output)
    recorded = args.output / "recorded_bag"
    shutil.rmtree(recorded, ignore_errors=True)
    eval_args = parse_args([
        "--bag", str(bag), "--image-topic", TOPICS["image"], "--camera-info-topic", TOPICS["camera_info"],
        "--depth-topic", TOPICS["depth"], "--label-topic", TOPICS["labels"], "--model", str(model),
        "--mode", args.mode, "--output", str(args.output / "report"), "--record", str(recorded),
    ])
    report = evaluate(eval_args)
    summary, timing = report["summary"], report["timing"]
    median, metric = summary.get("median", {}), summary.get("metric", {})
    lines = [f"demo: {report['frames']} frames of {bag.name} through depth_node ({args.mode}) with {model.name}"]
    if "latency_ms" in timing:
        latency = timing["latency_ms"]
        lines.append(f"  frames sent {timing['sent']}, processed {timing['processed']}, dropped {timing['dropped']}; "
                     f"{timing['throughput_fps']:.1f} frames/s; latency p50 {latency['p50']:.0f} ms, "
                     f"p95 {latency['p95']:.0f} ms, p99 {latency['p99']:.0f} ms")
    lines.append(f"  depth, median-scaled: AbsRel {median.get('abs_rel', float('nan')):.3f}, "
                 f"RMSE {median.get('rmse', float('nan')):.3f} m, delta1 {median.get('delta1', float('nan')):.3f}")
    lines.append(f"  depth, metric (model scale): AbsRel {metric.get('abs_rel', float('nan')):.3f}")
    if "semantic" in summary:
        lines.append(f"  semantics: mIoU {summary['semantic']['miou']:.3f}, "
                     f"pixel accuracy {summary['semantic']['pixel_acc']:.3f}")
    lines.append(f"  report: {args.output / 'report' / 'report.md'} (pictures beside it: "
                 f"{', '.join(report['figures'])})")
    lines.append(f"  recorded bag (inputs + node outputs, plays in Foxglove/RViz): {recorded}")
    print("\n".join(lines))
    if stand_in:  # again after the summary, where people look
        LOG.warning(RANDOM_MODEL_BANNER, args.model)
    return 0


if __name__ == "__main__":
    sys.exit(main())

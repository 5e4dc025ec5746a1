"""The stand-in demo: indoor-looking images -> network through ONNX Runtime -> depth/semantic PNGs.

Until a trained demo model and the rosbag replay through the node exist, this renders a few
procedural rooms, exports a network (the shipped model if one is given, else a seeded random
initialisation: its output is not meaningful depth yet), runs it with the ONNX Runtime backend and
writes depth and semantic pictures plus a montage with the ground truth.

    python scripts/demo.py [--output output/demo] [--frames 4] [--size 288x384]
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gam_depth_ros.colorize import colorize_depth, colorize_labels  # noqa: E402
from gam_depth_ros.inference import create_backend  # noqa: E402
from training.synthetic.room import intrinsics, look_at_pose, random_room, render  # noqa: E402

LOG = logging.getLogger("demo")


def parse_size(text: str) -> tuple[int, int]:
    height, width = (int(v) for v in text.lower().split("x"))
    return height, width


def make_random_model(output_dir: Path, height: int, width: int) -> Path:
    """Seeded random-init network exported to ONNX (stand-in until a trained model ships)."""
    import torch

    from gam_depth_ros.checkpoint import save_checkpoint
    from gam_depth_ros.export import export_checkpoint
    from gam_depth_ros.model_config import ModelConfig
    from gam_depth_ros.networks import GamDepthNet

    torch.manual_seed(0)
    checkpoint = save_checkpoint(output_dir / "random_init.pt", GamDepthNet().state_dict(),
                                 ModelConfig(height=height, width=width))
    onnx_path = output_dir / "random_init.onnx"
    export_checkpoint(checkpoint, onnx_path)
    return onnx_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=Path("output/demo"))
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--size", type=parse_size, default=(288, 384), help="network input HxW")
    parser.add_argument("--image-size", type=parse_size, default=(480, 640), help="camera image HxW")
    parser.add_argument("--model", type=Path, help="an exported .onnx model (default: random init)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args.output.mkdir(parents=True, exist_ok=True)
    model_path = args.model or make_random_model(args.output, *args.size)
    backend = create_backend("onnxruntime", model_path)
    LOG.info("model %s on %s (network input %dx%d)", model_path, backend.device, *backend.input_size)
    if args.model is None:
        LOG.info("note: untrained random-init network, so depth and labels are not meaningful yet")

    rng = np.random.default_rng(7)
    img_h, img_w = args.image_size
    K = intrinsics(img_w, img_h)
    rows = []
    for index in range(args.frames):
        room = random_room(rng)
        R, t = look_at_pose(np.array([rng.uniform(-0.5, 0.5), 0.0, 0.0]), rng.uniform(-0.4, 0.4), -0.1)
        view = render(room, K, R, t, img_w, img_h)
        prediction = backend.infer(view.image)
        depth_m = prediction.depth * backend.metadata.depth_scale
        lo, hi = backend.metadata.min_depth, backend.metadata.max_depth
        pictures = {
            "image": view.image,
            # The prediction is relative depth: stretch its own 2-98 % range so structure shows.
            "depth": colorize_depth(depth_m, *np.percentile(depth_m, [2, 98]) + [0, 1e-6]),
            "semantic": colorize_labels(prediction.labels),
            "gt_depth": colorize_depth(view.depth, lo, hi),
            "gt_semantic": colorize_labels(view.labels),
        }
        for name in ("image", "depth", "semantic"):
            Image.fromarray(pictures[name]).save(args.output / f"frame{index:02d}_{name}.png")
        rows.append(np.concatenate(list(pictures.values()), axis=1))
        LOG.info("frame %d: depth %.2f..%.2f m, %d classes, %.1f ms inference", index,
                 float(depth_m.min()), float(depth_m.max()), len(np.unique(prediction.labels)),
                 1e3 * prediction.inference_s)
    montage = args.output / "montage.png"
    Image.fromarray(np.concatenate(rows, axis=0)).save(montage)
    LOG.info("wrote %d frames to %s/ (frameNN_{image,depth,semantic}.png)", args.frames, args.output)
    LOG.info("montage (image | depth | semantic | ground-truth depth | ground-truth labels): %s", montage)
    return 0


if __name__ == "__main__":
    sys.exit(main())

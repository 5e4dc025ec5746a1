"""How much the training rooms teach: the photometric signal and the gradient-aware mask's reach.

For each room style of the generator (``plain``, ``rich``) this renders sequences in memory and, on
frame pairs ``stride`` apart, measures with the trainer's own functions
(:func:`training.losses.photometric_error`, :func:`training.geometry.warp`,
:func:`training.image_ops.gradient_magnitude`, :func:`training.losses.gradient_aware_mask`):

- ``warp_error_true``: the photometric error (0.85 SSIM + 0.15 L1) of the source frame warped into
  the target with the *true* depth and the *true* relative pose, over pixels that land inside the
  source image;
- ``warp_error_constant``: the same with a constant depth (the target's median depth) instead;
- ``signal``: ``1 - true / constant`` -- how much better the right geometry explains the target than
  a flat guess. The larger, the more a depth network gains from getting the geometry right;
- ``signal_objects``: the same restricted to object pixels (labels other than wall, floor, ceiling):
  whether furniture carries photometric evidence of its depth;
- ``mask_lift_fraction``: the fraction of target pixels the gradient-aware mask lifts above beta by
  more than 1 % of the way, with the paper's values (beta 0.1, gamma1 0.1, gamma2 40), and
  ``gradient_p99`` (the 99th percentile of the mask's gradient m).

Usage::

    .venv/bin/python bench/photometric_signal.py --sequences 8 --frames 31 --stride 10 \\
        --height 192 --width 256 --output bench/results/photometric_signal.json

Variants: every style of the generator (``plain``, ``rich`` with one ray per pixel: textures finer
than a pixel alias, ...), ``rich_supersampleN`` (N x N rays per pixel averaged, as a camera's pixel
integrates light; what the rich training rooms use) and, with ``--waypoint-margin M``,
``rich_supersampleN_waypointsMm`` (the same rooms, the camera stopping and turning at least M from
walls and furniture instead of 0.35 m).

Seeds: rooms of generator seed 30 (used for this measurement only).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.report import report_header, write_report  # noqa: E402
from gam_depth_ros.evaluation.metrics import object_mask  # noqa: E402
from training import losses  # noqa: E402
from training.geometry import backproject, project, warp  # noqa: E402
from training.image_ops import gradient_magnitude  # noqa: E402
from training.synthetic.generate import STYLES, render_sequence, world_from_camera  # noqa: E402
from training.synthetic.trajectory import MARGIN  # noqa: E402

SEED = 30
PAPER_MASK = {"beta": 0.1, "gamma1": 0.1, "gamma2": 40.0}
LIFT_THRESHOLD = 0.01


def _k4(K: np.ndarray) -> torch.Tensor:
    out = torch.eye(4, dtype=torch.float32)
    out[:3, :3] = torch.from_numpy(K.astype(np.float32))
    return out


def pair_errors(target: np.ndarray, source: np.ndarray, depth: np.ndarray, K: np.ndarray,
                T_source_target: np.ndarray, objects: np.ndarray) -> dict[str, float]:
    """Warp errors of one pair: true depth vs. a constant depth (module docstring)."""
    to_tensor = lambda image: torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255.0  # noqa: E731
    tgt, src = to_tensor(target), to_tensor(source)
    K4 = _k4(K)[None]
    inv_K4 = torch.linalg.inv(K4)
    T = torch.from_numpy(T_source_target.astype(np.float32))[None]
    true_depth = torch.from_numpy(depth)[None, None].float()
    constant = torch.full_like(true_depth, float(np.median(depth)))
    # Pixels that land inside the source with the true geometry (the rest cannot be explained).
    pixels = project(backproject(true_depth, inv_K4), K4, T)[0]
    h, w = depth.shape
    valid = ((pixels[..., 0] >= 0) & (pixels[..., 0] <= w - 1) & (pixels[..., 1] >= 0)
             & (pixels[..., 1] <= h - 1)).numpy()
    out = {}
    for name, d in (("true", true_depth), ("constant", constant)):
        error = losses.photometric_error(warp(src, d, K4, inv_K4, T), tgt, 0.85)[0, 0].numpy()
        out[f"all_{name}"] = float(error[valid].mean()) if valid.any() else float("nan")
        sel = valid & objects
        out[f"objects_{name}"] = float(error[sel].mean()) if sel.sum() > 50 else float("nan")
    gradient = gradient_magnitude(tgt)
    mask = losses.gradient_aware_mask(gradient, **PAPER_MASK)
    out["lift"] = float(losses.mask_lift_fraction(mask, PAPER_MASK["beta"], LIFT_THRESHOLD))
    out["gradient_p99"] = float(torch.quantile(gradient.flatten(), 0.99))
    return out


def measure_style(style: str, sequences: int, frames: int, stride: int, height: int, width: int,
                  supersample: int = 1, waypoint_margin: float = MARGIN) -> dict:
    rows = []
    for index in range(sequences):
        motion = "robot" if index % 2 == 0 else "handheld"
        camera_height = None if style != "plain" else 0.8
        seq = render_sequence(SEED, index, frames, height, width, motion, camera_height, style=style,
                              supersample=supersample, waypoint_margin=waypoint_margin)
        poses = world_from_camera(seq)
        objects = object_mask(seq.labels)
        for t in range(0, frames - stride, stride):
            s = t + stride
            T_source_target = np.linalg.inv(poses[s]) @ poses[t]
            rows.append(pair_errors(seq.images[t], seq.images[s], seq.depth[t], seq.K, T_source_target, objects[t]))
    mean = {key: float(np.nanmean([r[key] for r in rows])) for key in rows[0]}
    return {
        "pairs": len(rows),
        "warp_error_true": mean["all_true"],
        "warp_error_constant": mean["all_constant"],
        "signal": 1.0 - mean["all_true"] / mean["all_constant"],
        "warp_error_true_objects": mean["objects_true"],
        "warp_error_constant_objects": mean["objects_constant"],
        "signal_objects": 1.0 - mean["objects_true"] / mean["objects_constant"],
        "mask_lift_fraction": mean["lift"],
        "gradient_p99": mean["gradient_p99"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequences", type=int, default=8)
    parser.add_argument("--frames", type=int, default=31)
    parser.add_argument("--stride", type=int, default=10, help="frames between target and source (30 Hz)")
    parser.add_argument("--height", type=int, default=192)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--supersample", type=int, default=3,
                        help="colour rays per pixel side of the extra 'rich, supersampled' rooms (what the "
                             "shipped model's training data uses)")
    parser.add_argument("--waypoint-margin", type=float, default=None,
                        help="also measure the supersampled rich rooms with trajectories whose waypoints keep "
                             "this many metres from walls and furniture (the generator's --waypoint-margin)")
    parser.add_argument("--output", type=Path, default=None, help="JSON file for the results")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    started = time.time()
    variants = {style: (style, 1, MARGIN) for style in STYLES}
    variants[f"rich_supersample{args.supersample}"] = ("rich", args.supersample, MARGIN)
    if args.waypoint_margin is not None:
        variants[f"rich_supersample{args.supersample}_waypoints{args.waypoint_margin:g}m"] = (
            "rich", args.supersample, args.waypoint_margin)
    results = {name: measure_style(style, args.sequences, args.frames, args.stride, args.height, args.width, ss,
                                   margin)
               for name, (style, ss, margin) in variants.items()}
    print("| rooms | pairs | warp error, true depth | constant depth | signal | signal on objects | "
          "mask lift (paper's gamma) | gradient p99 |\n|---|---:|---:|---:|---:|---:|---:|---:|")
    for style, r in results.items():
        print(f"| {style} | {r['pairs']} | {r['warp_error_true']:.4f} | {r['warp_error_constant']:.4f} | "
              f"{r['signal']:.3f} | {r['signal_objects']:.3f} | {100 * r['mask_lift_fraction']:.2f} % | "
              f"{r['gradient_p99']:.0f} |")
    write_report(args.output, {
        **report_header(argv), "seed": SEED, "settings": vars(args) | {"output": str(args.output)},
        "mask": PAPER_MASK, "seconds": round(time.time() - started, 1), "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())

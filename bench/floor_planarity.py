"""How flat is a model's floor? Floor-scale mode's per-frame plane fit on labelled frames.

Floor mode (docs/node.md) needs the predicted floor to be a plane: :func:`gam_depth_ros.floor_scale.fit_floor_plane`
rejects a frame when fewer than 60 % of the floor points lie within 2 % of one plane. This benchmark separates
the two things a fit depends on: on every scored frame of generated sequence folders (``--set NAME=FOLDER``,
``--per-sequence`` evenly spaced frames, the held-out protocol's frames) with at least ``min_floor_pixels`` true
floor pixels, the model's depth is fitted on the *true* floor pixels (the depth's flatness alone) and on the
model's *own* floor labels (what the node does), with the node's default tolerances (the tilt test off: hand-held
frames have no fixed pitch). The true depth fitted on the true floor gives the plane's real distance, so each
accepted fit's scale can be compared with median scaling's (``|ln ratio|``; 0.1 is 10 %). Usage::

    .venv/bin/python bench/floor_planarity.py --checkpoint models/demo/gam_depth_demo.safetensors \\
        --set validation27=output/rich27/val --per-sequence 15 --output bench/results/floor_planarity.json
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.report import checkpoint_sets_parser, write_sets_report  # noqa: E402
from gam_depth_ros.floor_scale import FloorScaleConfig, fit_floor_plane, rejection_kind  # noqa: E402
from gam_depth_ros.inference import create_backend  # noqa: E402
from training.data.common import resized_intrinsics  # noqa: E402
from training.data.eval_sets import FolderEvalSet  # noqa: E402
from training.data.folder import read_intrinsics  # noqa: E402
from training.evaluate import evenly_spaced_frames  # noqa: E402

FIT = FloorScaleConfig(max_tilt_deg=180.0)  # the node's defaults; orientation is not what is measured here


def frame_fits(depth: np.ndarray, labels: np.ndarray | None, truth: np.ndarray, true_labels: np.ndarray,
               K: np.ndarray, seed: int) -> dict | None:
    """Fits of one frame (None: too little true floor, or the true depth itself gives no plane)."""
    true_fit, _ = fit_floor_plane(truth.astype(np.float64), true_labels, K, FIT, np.random.default_rng(seed))
    if true_fit is None:
        return None
    valid = truth > 0
    median_scale = float(np.median(truth[valid]) / np.median(depth[valid]))
    row = {}
    for name, floor in (("true_labels", true_labels), ("own_labels", labels)):
        fit, reason = (None, "no labels") if floor is None else fit_floor_plane(
            depth, floor, K, FIT, np.random.default_rng(seed))
        row[name] = {"accepted": fit is not None, "reason": rejection_kind(reason)}
        if fit is not None:
            row[name] |= {"inliers": fit.inlier_fraction,
                          "log_scale_error": abs(float(np.log(true_fit.distance / fit.distance / median_scale)))}
    return row


def summarise(rows: list[dict], name: str) -> dict:
    """Acceptance, scale errors and rejection reasons of one fit variant over the frames."""
    fits = [row[name] for row in rows]
    errors = [fit["log_scale_error"] for fit in fits if fit["accepted"]]
    return {"frames": len(fits), "accepted": len(errors),
            "median_log_scale_error": float(np.median(errors)) if errors else None,
            "within_10_percent": sum(bool(error < np.log(1.1)) for error in errors),
            "rejections": dict(Counter(fit["reason"] for fit in fits if not fit["accepted"]).most_common())}


def main(argv: list[str] | None = None) -> int:
    parser = checkpoint_sets_parser(__doc__.splitlines()[0], ".pt/.safetensors checkpoint or .onnx model", 15)
    args = parser.parse_args(argv)
    started = time.time()
    backend = create_backend("auto", args.checkpoint, threads=args.threads)
    results = {}
    for set_name, folder in args.sets:
        rows, frames = [], 0
        for intrinsics in sorted(folder.glob("*/intrinsics.yaml")):
            k = read_intrinsics(intrinsics)
            K = resized_intrinsics(k["fx"], k["fy"], k["cx"], k["cy"], 1.0, 1.0)  # the frames are scored at full size
            for item in evenly_spaced_frames(FolderEvalSet(intrinsics.parent), args.per_sequence):
                frames += 1
                if item.labels is None:
                    continue
                prediction = backend.infer(item.rgb, output_size=item.rgb.shape[:2])
                row = frame_fits(prediction.depth.astype(np.float64), prediction.labels, item.depth_m,
                                 item.labels, K, frames)
                if row is not None:
                    rows.append(row)
        results[set_name] = {"folder": str(folder), "frames": frames, "frames_with_floor": len(rows),
                             **{name: summarise(rows, name) for name in ("true_labels", "own_labels")}}
        for name in ("true_labels", "own_labels"):
            s = results[set_name][name]
            error = s["median_log_scale_error"]
            print(f"{set_name} {name}: {s['accepted']}/{s['frames']} floor fits accepted, "
                  f"{s['within_10_percent']} within 10 % of median scaling (median |ln ratio| "
                  f"{'-' if error is None else f'{error:.3f}'})", flush=True)
    write_sets_report(args, argv, time.time() - started, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

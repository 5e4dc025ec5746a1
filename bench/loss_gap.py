"""How far is a trained depth network from the minimum of its own training loss?

``bench/loss_ceiling.py`` asks which depth the loss prefers; this asks where a trained model sits on
that loss, on rooms it trained on and on rooms it never saw. For evenly spaced samples of each folder
(their target frame, the config's sources and the data's poses), the run's objective
(:func:`training.objective.compute_objective`, through :func:`bench.loss_ceiling.loss_at_depth`: the
photometric term with minimum reprojection, automask and mask, smoothness) is evaluated at

- the model's depth as it comes out of the network (metric: the poses of the data are metric) and
  median-scaled to the truth;
- the true depth, and the true depth with its log-depth contrast scaled around the frame's median by
  ``--contrast`` factors (0.5: every depth ratio square-rooted, a flattened room; 1.5: exaggerated).

A model whose loss sits well above the truth's on its own training rooms is not fitting them (steps,
capacity or optimisation), whatever it does on new rooms. Beside the losses: the model's depth
contrast, the least-squares slope of log predicted on log true depth per frame (1 = the room's
depth ratios kept, 0 = a constant; the median and quartiles over frames), AbsRel per true-depth
band (each frame's whole-image median scale, :func:`training.evaluate.evaluate_items` ``regions``), and per band how
far a depth error of ``--error-factor`` (1.25) moves the warp into the source that moves most: the signal the
photometric term has to see it by, in pixels (median over the band's pixels, then over frames).
The truth is read only to score and to build the comparison depths, never to train. Usage::

    .venv/bin/python bench/loss_gap.py --config config/train_rich192.yaml --override "networks.depth_scales=[0]" \\
        --checkpoint models/demo/gam_depth_demo.safetensors --set validation27=output/rich27/val --samples 24
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.loss_ceiling import evenly_spaced, loss_at_depth  # noqa: E402
from bench.report import name_path_argument, report_header, write_report  # noqa: E402
from bench.speed_accuracy import accuracy  # noqa: E402
from gam_depth_ros.inference import create_backend  # noqa: E402
from training.config import load_training_config  # noqa: E402
from training.evaluate import backend_predictor, evaluate_items, sample_eval_item  # noqa: E402
from training.geometry import backproject, project  # noqa: E402
from training.mask_calibration import resolve_mask  # noqa: E402
from training.trainer import make_dataset  # noqa: E402

DEPTH_BANDS_M = ((0.0, 1.5), (1.5, 3.0), (3.0, 5.0), (5.0, 10.0))


def valid_depth(depth: np.ndarray, min_depth: float, max_depth: float) -> np.ndarray:
    """Pixels of a true depth map inside the evaluation range (bool, the same shape)."""
    return (depth > min_depth) & (depth < max_depth)


def log_depth_slope(predicted: np.ndarray, true: np.ndarray, valid: np.ndarray) -> float:
    """Least-squares slope of log ``predicted`` on log ``true`` over ``valid`` pixels (``[H,W]`` each).

    1 keeps the frame's depth ratios, 0.5 square-roots them, 0 is a constant map; any global scale of the
    prediction leaves it unchanged. NaN when the valid true depths are all equal (no contrast to keep).
    """
    x, y = np.log(true[valid]), np.log(predicted[valid])
    x = x - x.mean()
    spread = float((x * x).sum())
    return float((x * (y - y.mean())).sum() / spread) if spread > 1e-12 else float("nan")


def contrast_scaled(depth: torch.Tensor, valid: torch.Tensor, factor: float) -> torch.Tensor:
    """``depth [1,1,H,W]`` with its log contrast times ``factor`` around the median of the ``valid`` pixels:
    ``exp(m + factor * (log d - m))``; the invalid pixels keep their value."""
    log_depth = torch.log(depth.clamp_min(1e-6))
    median = log_depth[valid].median()
    return torch.where(valid, torch.exp(median + factor * (log_depth - median)), depth)


def warp_displacement(batch: dict, factor: float) -> torch.Tensor:
    """``[H,W]`` pixels that scaling a sample's true depth by ``factor`` moves its warp by, in the source (of the
    sample's ``[1,S,...]`` sources at the data's poses) where it moves most; NaN where neither warp lands inside
    a source image (behind its camera or outside its view: the photometric term has no signal there either)."""
    depth, K, inv_K = batch["depth_gt"].float(), batch["K"][:, 0].float(), batch["inv_K"][:, 0].float()
    T = batch["poses"][:, 1:].float()
    height, width = depth.shape[-2:]
    true, scaled = (project(backproject(d, inv_K).unsqueeze(1), K.unsqueeze(1), T) for d in (depth, depth * factor))
    limit = true.new_tensor([width - 1, height - 1])
    inside = ((true >= 0) & (true <= limit) & (scaled >= 0) & (scaled <= limit)).all(dim=-1)
    moved = torch.where(inside, (true - scaled).norm(dim=-1), torch.full_like(true[..., 0], -1.0)).amax(dim=1)[0]
    return torch.where(moved >= 0, moved, torch.full_like(moved, float("nan")))


def band_masks(depth: np.ndarray, min_depth: float, max_depth: float) -> dict[str, np.ndarray]:
    """The valid pixels of a true depth map ``[H,W]`` in each band of :data:`DEPTH_BANDS_M`, by name."""
    valid = valid_depth(depth, min_depth, max_depth)
    return {f"{low:g}-{high:g}m": valid & (depth >= low) & (depth < high) for low, high in DEPTH_BANDS_M}


def score_folder(folder: Path, predict, config, samples: int, contrasts: list[float], error_factor: float) -> dict:
    """The losses, depth contrast and accuracy of one folder of generated sequences (see the module docstring)."""
    data = replace(config.data, path=str(folder), augment=None)
    dataset = make_dataset(data, config, train=True)
    mask = resolve_mask(config.loss.mask, dataset, config.train.seed)
    low, high = config.model.min_depth, config.model.max_depth
    names = ["model", "model_median_scaled", "truth", *(f"truth_contrast_{f:g}" for f in contrasts)]
    losses: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    slopes, items, predictions = [], [], {}
    displacement: dict[str, list[float]] = {}
    for index in evenly_spaced(samples, len(dataset)):
        batch = {key: value.unsqueeze(0) for key, value in dataset[index].items()}
        item = sample_eval_item({key: value[0] for key, value in batch.items()}, f"sample_{index}")
        items.append(item)
        true = batch["depth_gt"].float()
        valid = torch.from_numpy(valid_depth(item.depth_m, low, high))[None, None]
        predictions[item.rgb.tobytes()] = predict(item.rgb)
        predicted = torch.from_numpy(predictions[item.rgb.tobytes()][0]).float()[None, None]
        scaled = predicted * (true[valid].median() / predicted[valid].median())
        depths = [predicted, scaled, true, *(contrast_scaled(true, valid, f) for f in contrasts)]
        for name, depth in zip(names, depths):
            losses[name].append(loss_at_depth(depth, batch, config, mask))
        slopes.append(log_depth_slope(predicted[0, 0].numpy(), item.depth_m, valid[0, 0].numpy()))
        moved = warp_displacement(batch, error_factor).numpy()
        for band, pixels in band_masks(item.depth_m, low, high).items():
            pixels = pixels & np.isfinite(moved)
            if pixels.any():
                displacement.setdefault(band, []).append(float(np.median(moved[pixels])))
    result = evaluate_items(lambda rgb: predictions[rgb.tobytes()], items, min_depth=low, max_depth=high,
                            regions=lambda item: band_masks(item.depth_m, low, high))
    mean = {name: {term: float(np.mean([row[term] for row in rows])) for term in ("photometric", "total")}
            for name, rows in losses.items()}
    finite = np.array([s for s in slopes if np.isfinite(s)])
    return {
        "folder": str(folder), "samples": len(items), "loss": mean,
        "model_over_truth_photometric": mean["model"]["photometric"] / mean["truth"]["photometric"],
        "depth_contrast": {"median": float(np.median(finite)), "quartiles": np.percentile(finite, [25, 75]).tolist(),
                           "frames": int(finite.size)},
        "model": accuracy(result),
        "abs_rel_by_true_depth": result["regions"],
        "warp_px_of_error_by_true_depth": {band: {"median": float(np.median(values)), "frames": len(values)}
                                           for band, values in displacement.items()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, type=Path, help="training config (its loss, frame_ids, sizes)")
    parser.add_argument("--override", action="append", default=[], help="config override KEY=VALUE (repeat)")
    parser.add_argument("--checkpoint", required=True, type=Path, help=".pt or .safetensors checkpoint")
    parser.add_argument("--set", dest="sets", action="append", type=name_path_argument("--set", "FOLDER"),
                        required=True, help="NAME=FOLDER of generated sequence folders (repeat)")
    parser.add_argument("--samples", type=int, default=24, help="evenly spaced samples of each folder")
    parser.add_argument("--contrast", type=float, nargs="+", default=[0.5, 0.75, 1.25, 1.5],
                        help="factors on the true depth's log contrast")
    parser.add_argument("--error-factor", type=float, default=1.25,
                        help="the depth error whose warp displacement is reported per depth band")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", type=Path, default=None, help="JSON file for the results")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    started = time.time()
    config = load_training_config(args.config, args.override)
    predict = backend_predictor(create_backend("torch", args.checkpoint, threads=args.threads), 1.0)
    sets = {}
    for name, folder in args.sets:
        sets[name] = score_folder(folder, predict, config, args.samples, args.contrast, args.error_factor)
        row = sets[name]
        print(f"{name}: photometric model {row['loss']['model']['photometric']:.4f} / truth "
              f"{row['loss']['truth']['photometric']:.4f} ({row['model_over_truth_photometric']:.2f}x); depth "
              f"contrast {row['depth_contrast']['median']:.2f}; AbsRel {row['model']['abs_rel']:.3f}", flush=True)
    write_report(args.output, {**report_header(argv, threads=args.threads), "checkpoint": str(args.checkpoint),
                               "samples": args.samples, "contrast": args.contrast, "error_factor": args.error_factor,
                               "seconds": round(time.time() - started, 1), "sets": sets})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

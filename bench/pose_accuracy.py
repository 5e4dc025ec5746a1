"""Pose diagnostics: how well does a pose network predict the camera motion between held-out frames?

On held-out sequence folders written by ``training.synthetic.generate`` (``poses.txt`` holds the
true camera poses), every sample of the config's ``frame_ids`` and ``stride`` gives one pair per
source frame. For every model (always the ``identity`` baseline, which predicts no motion, plus each
``--checkpoint``'s pose network, run as in training: initial poses along the frame chain, then the
residual refinement with the network's own depth) it reports, per source offset and pooled
(:mod:`training.pose_metrics`): translation direction cosine, translation length ratio, rotation
error (angle of ``R_pred^T R_true``, degrees and as a fraction of the true rotation), the
per-sample spread of the predictions relative to the truth's, and the trainer's photometric loss
at the predicted poses with the *true* depth.

Independent of any model, with the true depth standing in for the depth network:

- ``path_loss``: the trainer's photometric loss (``training.objective.compute_objective``: SSIM+L1,
  minimum reprojection, auto-masking, the gradient-aware mask of the config) at poses a fraction
  alpha of the way from identity to the truth (alpha 0 = no motion, 1 = the truth);
- ``identity_descent``: at the identity pose, where a fresh pose network starts, the cosine
  between the loss's steepest-descent direction in each pair's 6 pose variables (axis-angle,
  translation: what the pose decoder outputs, up to its common 0.01 scale) and the true motion, for
  all 6 and for rotation and translation alone. Near 1: the loss leads from identity to the truth.

``--two-view`` adds the classical two-view estimate (:mod:`training.two_view`: SIFT matches and the
essential matrix, no learning, no ground truth) as a model: pairs where it finds no pose count as
identity in the pooled figures, and ``found_only`` scores the pairs it solved. Its translation has
unit length, so only the direction cosine is meaningful for it. Every model also gets
``translation_cosine_moving``: the direction cosine over pairs whose true translation is at least
``MOVING_M`` (a pair that barely translates has no direction to find). A checkpoint trained with
``networks.pose_source: two_view_rotation`` is scored as it trains (the estimates computed on the
frames before the resize, as the folder source does) and again as ``<path> (network alone)``: its
pose network's own rotations, to see what the network learnt by itself.

Usage (the committed figures, docs/benchmarks.md)::

    PYTHONPATH=$PWD .venv/bin/python bench/pose_accuracy.py --data /tmp/h15data \\
        [--checkpoint runs/x/checkpoints/step_00000300.pt] [--config config/learning_bench.yaml] \\
        [--stride 10] [--max-samples 0] [--two-view] [--size 192 256] --output bench/results/pose_accuracy.json
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.report import report_header, write_report  # noqa: E402
from gam_depth_ros.checkpoint import CheckpointError, load_checkpoint  # noqa: E402
from training.checkpointing import init_from_checkpoint  # noqa: E402
from training.config import TrainingConfig, config_from_dict, load_training_config  # noqa: E402
from training.geometry import matrix_to_axis_angle, pose_vector_to_matrix  # noqa: E402
from training.mask_calibration import resolve_mask  # noqa: E402
from training.model import SelfSupervisedModel  # noqa: E402
from training.objective import compute_objective  # noqa: E402
from training.pose_metrics import interpolate_pose, pose_errors, prediction_spread, summarise  # noqa: E402
from training.trainer import make_dataset  # noqa: E402
from training.two_view import two_view_sample_poses  # noqa: E402

ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5)
MOVING_M = 0.02  # metres of true translation below which a pair has no direction to score


def load_pairs(config: TrainingConfig, max_samples: int) -> list[dict[str, torch.Tensor]]:
    """Samples (no augmentation) of the config's data section, evenly spaced when ``max_samples`` > 0."""
    dataset = make_dataset(config.data, config, train=True)
    indices = np.arange(len(dataset))
    if max_samples and max_samples < len(dataset):
        indices = np.unique(np.linspace(0, len(dataset) - 1, max_samples).round().astype(int))
    samples = [dataset[int(i)] for i in indices]
    if not all(bool(s["has_poses"]) and bool(s["has_depth"]) for s in samples):
        raise SystemExit(f"{config.data.path}: the samples need true poses (poses.txt) and depth (depth/*.npy)")
    return samples


def batches(samples: list[dict], size: int):
    for start in range(0, len(samples), size):
        chunk = samples[start:start + size]
        yield {key: torch.stack([s[key] for s in chunk]) for key in chunk[0]}


def true_disparity(depth_m: torch.Tensor, config: TrainingConfig) -> torch.Tensor:
    """The sigmoid disparity whose depth (``disparity_to_depth``) is ``depth_m`` (invalid -> max depth)."""
    lo, hi = config.model.min_depth, config.model.max_depth
    depth = torch.where(depth_m > 0, depth_m, torch.full_like(depth_m, hi)).clamp(lo, hi)
    return ((1.0 / depth - 1.0 / hi) / (1.0 / lo - 1.0 / hi)).clamp(0.0, 1.0)


def photometric(batch: dict, T_source_target: torch.Tensor, config: TrainingConfig, mask) -> torch.Tensor:
    """The trainer's photometric term (scalar, batch mean) with the true depth and poses ``[B,S,4,4]``."""
    full_resolution = dataclasses.replace(config, networks=dataclasses.replace(config.networks, depth_scales=(0,)))
    outputs = {"disparities": [true_disparity(batch["depth_gt"], config)], "T_source_target": T_source_target.float()}
    _, terms = compute_objective(batch, outputs, full_resolution, False, mask_config=mask)
    return terms["photometric"]


def mean_photometric(samples: list[dict], poses: torch.Tensor, config: TrainingConfig, mask,
                     batch_size: int) -> float:
    """:func:`photometric` averaged over the samples at the poses ``[N,S,4,4]`` (one per sample and source)."""
    total = 0.0
    with torch.no_grad():
        for start, batch in zip(range(0, len(samples), batch_size), batches(samples, batch_size)):
            b = batch["poses"].shape[0]
            total += float(photometric(batch, poses[start:start + b], config, mask)) * b
    return total / len(samples)


def path_losses(samples: list[dict], true: torch.Tensor, config: TrainingConfig, mask, alphas,
                batch_size: int) -> list[float]:
    """Mean photometric loss at each alpha of the identity -> truth path (``true`` ``[N,S,4,4]``)."""
    n, s = true.shape[:2]
    return [mean_photometric(samples, interpolate_pose(true.reshape(n * s, 4, 4), alpha).view(n, s, 4, 4),
                             config, mask, batch_size) for alpha in alphas]


def identity_descent(samples: list[dict], config: TrainingConfig, mask, batch_size: int) -> dict[str, float]:
    """Cosine of the loss's steepest descent at the identity pose with each pair's true motion."""
    cos = {"pose6": [], "rotation": [], "translation": []}
    for batch in batches(samples, batch_size):
        true = batch["poses"][:, 1:].double()
        b, s = true.shape[:2]
        true_vec = torch.cat([matrix_to_axis_angle(true[..., :3, :3].reshape(-1, 3, 3)),
                              true[..., :3, 3].reshape(-1, 3)], -1)
        variables = torch.zeros(b * s, 6, requires_grad=True)
        T = pose_vector_to_matrix(variables[:, :3], variables[:, 3:]).view(b, s, 4, 4)
        photometric(batch, T, config, mask).backward()
        descent = -variables.grad.double()
        for name, part in (("pose6", slice(0, 6)), ("rotation", slice(0, 3)), ("translation", slice(3, 6))):
            cos[name] += F.cosine_similarity(descent[:, part], true_vec[:, part], dim=-1).tolist()
    return {f"{name}_cosine_{stat}": float(fn(values)) for name, values in cos.items()
            for stat, fn in (("mean", np.mean), ("median", np.median))} | {"pairs": len(cos["pose6"])}


def trained_config(path: Path) -> TrainingConfig:
    """The training config saved in a checkpoint with a pose network."""
    checkpoint = load_checkpoint(path)
    if checkpoint.training_config is None or "pose" not in checkpoint.extra:
        raise CheckpointError(f"{path}: not a training checkpoint with a pose network")
    return config_from_dict(checkpoint.training_config, str(path))


def build_pose_model(path: Path, config: TrainingConfig, network_alone: bool = False) -> SelfSupervisedModel:
    """The checkpoint's depth and pose networks, predicting poses as in training (the pose network, or
    with ``two_view_rotation`` the network's translation and the two-view rotation; ``network_alone``:
    the pose network's own rotation there too)."""
    trained = trained_config(path)
    net = trained.networks
    source = "two_view_rotation" if net.pose_source == "two_view_rotation" and not network_alone else "network"
    if net.pose_source == "data":
        print(f"note: {path} was trained with pose_source 'data'; its initial pose network is evaluated "
              "anyway (it got no training signal)", flush=True)
    model = SelfSupervisedModel(trained.model, config.frame_ids, net.depth_scales, net.residual_pose, net.pose_scale,
                                net.pose_base_channels, source)
    init_from_checkpoint(model, path)
    return model.eval()


def predict(model: SelfSupervisedModel | None, samples: list[dict], batch_size: int) -> tuple[torch.Tensor, ...]:
    """Initial and final ``T_source_target`` ``[N,S,4,4]`` of every sample (identity without a model)."""
    initial, final = [], []
    with torch.no_grad():
        for batch in batches(samples, batch_size):
            if model is None:
                eye = torch.eye(4).expand(*batch["poses"][:, 1:].shape).clone()
                initial.append(eye)
                final.append(eye)
                continue
            out = model(batch["images"], batch["K"][:, 0], batch["inv_K"][:, 0], with_semantics=False,
                        poses=batch["prior_poses"][:, 1:], pose_found=batch["has_prior_pose"][:, 1:])
            initial.append(out["T_initial"].float())
            final.append(out["T_source_target"].float())
    return torch.cat(initial), torch.cat(final)


def predict_two_view(samples: list[dict]) -> tuple[torch.Tensor, torch.Tensor]:
    """Two-view ``T_source_target`` ``[N,S,4,4]`` of every sample (identity where none was found) and
    ``found`` ``[N,S]``."""
    poses, found = zip(*(two_view_sample_poses(s["images"], s["K"][0]) for s in samples))
    return torch.stack(poses), torch.stack(found)


def score(T_pred: torch.Tensor, T_true: torch.Tensor, frame_ids) -> dict:
    """Pooled and per-source-offset errors and spreads of ``[N,S,4,4]`` predictions."""
    n, s = T_true.shape[:2]
    errors = pose_errors(T_pred.reshape(n * s, 4, 4), T_true.reshape(n * s, 4, 4))
    out = {"all": summarise(errors), "per_source": {}}
    moving = errors["true_translation_m"] >= MOVING_M
    out["all"]["moving_pairs"] = float(moving.sum())
    out["all"]["translation_cosine_moving_mean"] = (float(errors["translation_cosine"][moving].mean())
                                                    if moving.any() else float("nan"))
    spreads = []
    for k, frame in enumerate(frame_ids[1:]):
        row = summarise(pose_errors(T_pred[:, k], T_true[:, k]))
        row |= prediction_spread(T_pred[:, k], T_true[:, k]) if n > 1 else {}
        spreads.append(row)
        out["per_source"][str(frame)] = row
    for key in ("rotation_spread_ratio", "translation_spread_ratio"):
        if all(key in row for row in spreads):
            out["all"][key] = float(np.mean([row[key] for row in spreads]))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="held-out folder of generated sequence folders")
    parser.add_argument("--checkpoint", type=Path, action="append", default=[],
                        help="training checkpoint with a pose network (repeatable); identity is always scored")
    parser.add_argument("--config", type=Path, default=REPO / "config" / "learning_bench.yaml",
                        help="frame_ids, stride, size and loss settings of the pairs")
    parser.add_argument("--stride", type=int, default=None, help="frames between ids (default: the config's)")
    parser.add_argument("--max-samples", type=int, default=0, help="evenly spaced samples (0 = all)")
    parser.add_argument("--alphas", type=float, nargs="+", default=list(ALPHAS))
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--two-view", action="store_true", help="also score the classical two-view estimate")
    parser.add_argument("--size", type=int, nargs=2, metavar=("H", "W"), help="image size (default: the config's)")
    parser.add_argument("--output", type=Path, help="JSON with every figure")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)  # the auto-mask's tie-breaking noise: the same figures on every run
    overrides = ["data.source=folder", f"data.path={args.data}", "data.augment=null", "validation=null"]
    if args.stride is not None:
        overrides.append(f"data.options.stride={args.stride}")
    if any(trained_config(path).networks.pose_source == "two_view_rotation" for path in args.checkpoint):
        overrides.append("data.options.two_view_prior=true")  # estimated before the resize, as in training
    if args.size:
        overrides += [f"model.height={args.size[0]}", f"model.width={args.size[1]}"]
    config = load_training_config(args.config, overrides)
    started = time.perf_counter()
    samples = load_pairs(config, args.max_samples)
    true = torch.stack([s["poses"][1:] for s in samples])
    mask = resolve_mask(config.loss.mask, make_dataset(config.data, config, train=True), config.train.seed)
    report = {
        **report_header(argv, torch=torch.__version__),
        "data": {"path": str(args.data), "samples": len(samples), "pairs": int(true.shape[0] * true.shape[1]),
                 "frame_ids": list(config.frame_ids), "stride": config.data.options.get("stride", 1),
                 "size": [config.model.height, config.model.width]},
        "loss": {"mask_enabled": mask.enabled, "gamma2": mask.gamma2, "automask": config.loss.automask},
        "truth": summarise(pose_errors(true.reshape(-1, 4, 4), true.reshape(-1, 4, 4))),
        "alphas": list(args.alphas),
        "path_loss": path_losses(samples, true, config, mask, args.alphas, args.batch_size),
        "identity_descent": identity_descent(samples, config, mask, args.batch_size),
        "models": {},
    }
    models: dict[str, SelfSupervisedModel | None] = {"identity": None}
    for path in args.checkpoint:
        models[str(path)] = build_pose_model(path, config)
        if models[str(path)].pose_source == "two_view_rotation":  # what the pose network learnt by itself
            models[f"{path} (network alone)"] = build_pose_model(path, config, network_alone=True)
    for name, model in models.items():
        initial, final = predict(model, samples, args.batch_size)
        row = {"final": score(final, true, config.frame_ids)}
        if model is not None and model.pose_net.residual_decoder is not None:
            row["initial"] = score(initial, true, config.frame_ids)
        row["photometric_at_prediction"] = mean_photometric(samples, final, config, mask, args.batch_size)
        report["models"][name] = row
    if args.two_view:
        final, found = predict_two_view(samples)
        row = {"final": score(final, true, config.frame_ids), "found_fraction": float(found.float().mean()),
               "found_only": summarise(pose_errors(final[found], true[found])) if found.any() else {}}
        row["photometric_at_prediction"] = float("nan")  # no scale: the warp needs a metric translation
        report["models"]["two_view (SIFT + essential matrix)"] = row
    report["seconds"] = time.perf_counter() - started
    print_report(report)
    write_report(args.output, report)
    if args.output:
        print(f"wrote {args.output}")
    return 0


def print_report(report: dict) -> None:
    data = report["data"]
    print(f"{data['pairs']} pairs ({data['samples']} samples, frames {data['frame_ids']} x stride {data['stride']}, "
          f"{data['size'][0]}x{data['size'][1]}) from {data['path']}")
    truth = report["truth"]
    print(f"true motion: rotation {truth['true_rotation_deg_mean']:.2f} deg, translation "
          f"{100 * truth['true_translation_m_mean']:.1f} cm (means)")
    print("photometric loss from identity (alpha 0) to the truth (alpha 1), true depth: "
          + ", ".join(f"{a:g}: {v:.4f}" for a, v in zip(report["alphas"], report["path_loss"])))
    d = report["identity_descent"]
    print(f"descent direction at identity vs the true motion, cosine mean (median): 6-dof "
          f"{d['pose6_cosine_mean']:.3f} ({d['pose6_cosine_median']:.3f}), rotation {d['rotation_cosine_mean']:.3f}, "
          f"translation {d['translation_cosine_mean']:.3f}")
    print(f"{'model':40s} {'t cos':>6s} {'moving':>6s} {'t ratio':>8s} {'R err':>6s} {'R frac':>7s} {'R sprd':>7s} "
          f"{'t sprd':>7s} {'loss':>7s}")
    for name, row in report["models"].items():
        a = row["final"]["all"]
        nan = float("nan")
        print(f"{name[-40:]:40s} {a['translation_cosine_mean']:6.3f} {a['translation_cosine_moving_mean']:6.3f} "
              f"{a['translation_ratio_median']:8.3f} "
              f"{a['rotation_error_deg_mean']:6.2f} {a['rotation_error_fraction_median']:7.3f} "
              f"{a.get('rotation_spread_ratio', nan):7.3f} {a.get('translation_spread_ratio', nan):7.3f} "
              f"{row['photometric_at_prediction']:7.4f}")


if __name__ == "__main__":
    sys.exit(main())

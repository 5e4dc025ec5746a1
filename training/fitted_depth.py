"""``gam-depth-fit-depth``: per-frame depth fitted to the view-synthesis objective, for distillation.

For target frames of a folder of sequences (their sources at the config's ``frame_ids``, the data's
poses), a free depth map is optimised to minimise the run's own objective
(:func:`training.objective.compute_objective`: photometric term with the minimum reprojection and
automask, smoothness; no semantic term, no network). The map is a coarse-to-fine pyramid of logits
(levels at 1/1 ... 1/32 of the image, summed after bilinear upsampling, through the network's
sigmoid disparity), so that textureless regions are filled from their surroundings rather than left
at the start value.

No ground-truth depth is read: the fitted depth is what view synthesis with known poses gives
(classical multi-view optimisation), and the trainer can distil it into the network
(``loss.fitted_depth_weight``, :func:`training.losses.fitted_depth_loss`): a network trained by
SGD sees each frame a few times, a per-frame fit takes 150 steps on it (docs/training.md, "What
the loss itself allows"). In the two CPU runs so far the distillation made the validation depth
worse (docs/training.md, "Distilling fitted depth").

Only pixels the photometric evidence pins are kept (:func:`pinned_pixels`): for *every* source
the warp error at the fitted depth is below the error at the depth times and divided by
``--pin-factor`` (a minimum, not a flat valley) and below the unwarped source's error; the rest are
written as 0 (invalid: the distillation term skips them, the photometric term still covers them).
On 40 training frames of seed 20 this kept 28 % of the pixels, with a median per-frame AbsRel
against the ground truth (unscaled) of 0.035 where the whole maps had 0.078 (docs/training.md).

Writes ``<sequence>/fitted_depth/<key>.npy`` (float32 metres at the network size, 0 = not pinned) and
``<sequence>/fitted_depth/settings.json``; frames whose file exists are skipped, so a killed run
resumes. ``--shard i/n`` splits the frames between processes. Usage::

    python -m training.fitted_depth --config config/train_rich192.yaml --set loss.smoothness_weight=0.1 \\
        --data output/richwm/train --every 16 --shard 0/2
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from gam_depth_ros.config_io import ConfigError, to_dict
from gam_depth_ros.inference.postprocessing import depth_to_disparity, disparity_to_depth
from training.config import MaskConfig, TrainingConfig, load_training_config
from training.data.errors import DataError
from training.data.factory import sequences
from training.geometry import warp
from training.image_ops import resize_area
from training.losses import photometric_error
from training.mask_calibration import resolve_mask
from training.objective import compute_objective
from training.trainer import make_dataset

PYRAMID_LEVELS = 6  # 1/1 ... 1/32 of the image
FITTED_DIR = "fitted_depth"
LOG = logging.getLogger("training")


def disparity_inside(depth: torch.Tensor, min_depth: float, max_depth: float) -> torch.Tensor:
    """:func:`depth_to_disparity` of ``depth`` clamped just inside the range: strictly in (0, 1), a finite logit."""
    return depth_to_disparity(depth.clamp(min_depth * 1.001, max_depth * 0.999), min_depth, max_depth)


class DepthPyramid(torch.nn.Module):
    """A free ``[1,1,H,W]`` sigmoid disparity: the sum of logit maps at 1/1 ... 1/2**(levels-1) of the size."""

    def __init__(self, start_disparity: torch.Tensor, levels: int = PYRAMID_LEVELS) -> None:
        """``start_disparity``: ``[1,1,H,W]`` in (0, 1), the map's value before any step (held by the finest level)."""
        super().__init__()
        height, width = start_disparity.shape[-2:]
        self.size = (height, width)
        self.maps = torch.nn.ParameterList(
            torch.nn.Parameter(torch.zeros(1, 1, max(1, height >> level), max(1, width >> level)))
            for level in range(levels))
        with torch.no_grad():
            self.maps[0].copy_(torch.logit(start_disparity.float()))

    def forward(self) -> torch.Tensor:
        logits = sum(F.interpolate(m, self.size, mode="bilinear", align_corners=False) if m.shape[-2:] != self.size
                     else m for m in self.maps)
        return torch.sigmoid(logits)


def objective_of(disparity: torch.Tensor, batch: dict, config: TrainingConfig, mask: MaskConfig,
                 ) -> tuple[torch.Tensor, dict]:
    """The run's objective for a full-resolution disparity ``[1,1,H,W]``, given at every depth scale of the config."""
    outputs = {"disparities": [resize_area(disparity, scale) for scale in sorted(config.networks.depth_scales)],
               "T_source_target": batch["poses"][:, 1:].float()}
    return compute_objective(batch, outputs, config, semantic_active=False, mask_config=mask)


def fit_depth(batch: dict, config: TrainingConfig, mask: MaskConfig, steps: int, lr: float,
              start_depth: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Depth ``[1,1,H,W]`` minimising the objective of one sample (a batch of one), and its final loss terms.

    ``start_depth`` (``[1,1,H,W]`` metres) is where the map starts; None = a constant
    ``networks.initial_depth``, what a network starts from. Adam, ``steps`` steps at ``lr``.
    """
    if start_depth is None:
        start_depth = torch.full_like(batch["images"][:, 0, :1], config.networks.initial_depth)
    pyramid = DepthPyramid(disparity_inside(start_depth.float(), config.model.min_depth, config.model.max_depth))
    optimizer = torch.optim.Adam(pyramid.parameters(), lr=lr)
    for _ in range(steps):
        total, _ = objective_of(pyramid(), batch, config, mask)
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
    with torch.no_grad():
        disparity = pyramid()
        _, terms = objective_of(disparity, batch, config, mask)
        depth = disparity_to_depth(disparity, config.model.min_depth, config.model.max_depth)
    return depth, terms


def pinned_pixels(depth: torch.Tensor, batch: dict, config: TrainingConfig, factor: float) -> torch.Tensor:
    """``[B,1,H,W]`` bool: pixels whose ``depth`` ``[B,1,H,W]`` every source of ``batch`` confirms.

    Per source, the photometric error (the loss's SSIM + L1) of the warp at ``depth`` must be lower
    than at ``depth * factor`` and ``depth / factor`` and lower than the unwarped source's: the
    depth is at a minimum of that source's error, and the pixel moves between the frames. Textureless
    pixels (flat error), periodic textures matched at a shifted copy by one source only, occlusions
    and pixels out of a source's view fail it.
    """
    images = batch["images"].float()
    target = images[:, 0]
    K, inv_K, T = batch["K"][:, 0].float(), batch["inv_K"][:, 0].float(), batch["poses"][:, 1:].float()
    ssim_weight = config.loss.ssim_weight
    pinned = torch.ones_like(depth, dtype=torch.bool)
    for s in range(images.shape[1] - 1):
        def error(d: torch.Tensor, s: int = s) -> torch.Tensor:
            return photometric_error(warp(images[:, 1 + s], d, K, inv_K, T[:, s]), target, ssim_weight)

        at_depth = error(depth)
        unwarped = photometric_error(images[:, 1 + s], target, ssim_weight)
        pinned &= (at_depth < error(depth * factor)) & (at_depth < error(depth / factor)) & (at_depth < unwarped)
    return pinned


def fit_jobs(parts: list, every: int, shard: int, shards: int) -> list[tuple[object, int, Path]]:
    """``(sequence dataset, sample index, output file)`` of every ``every``-th sample of each sequence:
    this shard's share (interleaved, so shards get the same mix of rooms)."""
    jobs = [(part, index, part.path / FITTED_DIR / f"{part.sample_key(index)}.npy")
            for part in parts for index in range(0, len(part), every)]
    return jobs[shard::shards]


def write_settings(folder: Path, settings: dict) -> None:
    """``settings.json`` beside the fitted maps; a folder fitted with other settings is an error, not a mix."""
    path = folder / "settings.json"
    settings = json.loads(json.dumps(settings))  # as read back (tuples become lists)
    if path.is_file():
        old = json.loads(path.read_text())
        if old != settings:
            raise DataError(f"{path}: maps in this folder were fitted with {old}, not {settings}; "
                            "remove the folder or fit with the same settings")
        return
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(settings, indent=2, sort_keys=True) + "\n")


def fit_folder(config: TrainingConfig, data_path: str, every: int, steps: int, lr: float,
               pin_factor: float = 1.25, shard: int = 0, shards: int = 1) -> dict[str, float]:
    """Fit and write this shard's maps (see the module docstring); returns counts and the mean final loss."""
    data = replace(config.data, path=data_path, augment=None)
    dataset = make_dataset(data, config, train=True)
    mask = resolve_mask(config.loss.mask, dataset, config.train.seed)
    settings = {"steps": steps, "lr": lr, "pin_factor": pin_factor, "frame_ids": list(config.frame_ids),
                "options": dict(config.data.options), "size": [config.model.height, config.model.width],
                "depth_range": [config.model.min_depth, config.model.max_depth],
                "initial_depth": config.networks.initial_depth, "depth_scales": list(config.networks.depth_scales),
                "loss": to_dict(config.loss)}
    jobs = fit_jobs(sequences(dataset), every, shard, shards)
    for folder in sorted({path.parent for _, _, path in jobs}):  # before any map: a mismatch stops at once
        write_settings(folder, settings)
    fitted, skipped, losses, kept, started = 0, 0, [], [], time.time()
    for number, (part, index, path) in enumerate(jobs, 1):
        if path.is_file():
            skipped += 1
            continue
        torch.manual_seed(index)  # the automask's tie-breaking noise: the same map on a rerun
        batch = {key: value.unsqueeze(0) for key, value in part[index].items()}
        depth, terms = fit_depth(batch, config, mask, steps, lr)
        with torch.no_grad():
            pinned = pinned_pixels(depth, batch, config, pin_factor)
        partial = path.with_suffix(".tmp.npy")
        np.save(partial, torch.where(pinned, depth, 0.0)[0, 0].numpy().astype(np.float32))
        os.replace(partial, path)  # a killed run leaves no half-written map
        fitted += 1
        losses.append(float(terms["total"]))
        kept.append(float(pinned.float().mean()))
        LOG.info("%d/%d %s: loss %.4f, %.0f %% of the pixels pinned (%.1f s a map)", number, len(jobs), path,
                 losses[-1], 100 * kept[-1], (time.time() - started) / fitted)
    return {"jobs": len(jobs), "fitted": fitted, "skipped": skipped,
            "mean_loss": float(np.mean(losses)) if losses else float("nan"),
            "mean_pinned_fraction": float(np.mean(kept)) if kept else float("nan")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gam-depth-fit-depth", description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, type=Path,
                        help="training config (loss, frame_ids, size, data options)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="config override KEY=VALUE")
    parser.add_argument("--data", required=True, help="folder of sequence folders (or one sequence) to fit")
    parser.add_argument("--every", type=int, default=1, help="fit every N-th sample of each sequence")
    parser.add_argument("--steps", type=int, default=150, help="Adam steps per map")
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--pin-factor", type=float, default=1.25,
                        help="keep pixels whose error is lowest at the depth against depth x and / this factor")
    parser.add_argument("--shard", default="0/1", help="i/n: fit the i-th of n interleaved shares (one process each)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of this process")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    try:
        shard, shards = (int(v) for v in args.shard.split("/"))
        if not 0 <= shard < shards or args.every < 1 or args.steps < 1 or args.pin_factor <= 1:
            raise ValueError
    except ValueError:
        parser.error(f"--shard must be i/n with 0 <= i < n (got {args.shard}); --every and --steps >= 1; "
                     "--pin-factor > 1")
    torch.set_num_threads(args.threads)
    try:
        config = load_training_config(args.config, args.overrides)
        summary = fit_folder(config, args.data, args.every, args.steps, args.lr, args.pin_factor, shard, shards)
    except (ConfigError, DataError) as error:
        LOG.error("%s", error)
        return 2
    LOG.info("%s", json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

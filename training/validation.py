"""Validation during training: depth metrics through the one metrics module, ``gam_depth_ros.evaluation.metrics``."""

from __future__ import annotations

import logging

import torch
from torch.utils.data import DataLoader

from gam_depth_ros.inference.postprocessing import disparity_to_depth
from training.config import TrainingConfig

LOG = logging.getLogger("training")


def validate(model, loader: DataLoader, config: TrainingConfig, device: torch.device) -> dict[str, float]:
    """Mean per-image depth metrics of ``model`` (a ``SelfSupervisedModel``) over ``loader``.

    Only samples with ``has_depth`` count. Median scaling, clamp range and sample limit come from
    ``config.validation``. Returns an empty dict when ``gam_depth_ros.evaluation.metrics`` is unavailable.
    """
    try:
        from gam_depth_ros.evaluation.metrics import depth_metrics
    except ImportError as error:
        LOG.warning("validation skipped: gam_depth_ros.evaluation.metrics is not available (%s)", error)
        return {}
    val = config.validation
    assert val is not None
    was_training = model.training
    model.eval()
    sums: dict[str, float] = {}
    count = 0
    try:
        with torch.no_grad():
            for batch in loader:
                keep = batch["has_depth"].bool()
                if val.max_samples:
                    keep &= torch.cumsum(keep.long(), 0) + count <= val.max_samples
                if not bool(keep.any()):
                    if val.max_samples and count >= val.max_samples:
                        break
                    continue
                image = batch["images"][keep, 0].to(device)
                disparities, _ = model.predict_depth(image, with_semantics=False)
                depth = disparity_to_depth(disparities[0].float(), config.model.min_depth, config.model.max_depth)
                try:
                    metrics = depth_metrics(depth.cpu(), batch["depth_gt"][keep], median_scaling=val.median_scaling,
                                            min_depth=val.min_depth, max_depth=val.max_depth)
                except ValueError as error:  # no valid ground-truth pixel in this batch
                    LOG.debug("validation batch skipped: %s", error)
                    continue
                images = int(metrics.get("images", int(keep.sum())))
                for key, value in metrics.items():
                    if key != "images":
                        sums[key] = sums.get(key, 0.0) + float(value) * images
                count += images
    finally:
        model.train(was_training)
    if count == 0:
        LOG.warning("validation: no sample with ground-truth depth")
        return {}
    return {key: value / count for key, value in sums.items()} | {"images": float(count)}

"""From a batch and the model's outputs to the named loss terms and their weighted sum.

For every depth scale s the disparity is upsampled to full resolution, turned into depth, and
every source is warped into the target view with the final pose (one ``grid_sample`` call for all
sources). Per scale: L_gra (or the plain minimum reprojection), smoothness / 2**s, planar (precomputed
segments or labelled floor/ceiling planes) and Manhattan-normal terms, the distance from a fitted
depth map (when weighted and present); each term is averaged over scales. The identity (unwarped)
reprojection terms and the mask do not depend on the scale and are computed once per batch. With
``loss.photometric_pyramid`` the photometric term of each scale also compares Gaussian-blurred images
(levels 1..n, sigma 1, 2, 4 .. px) at the same warp. The semantic term is computed once, at full resolution.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor
from torch.nn import functional as F

from gam_depth_ros.evaluation.metrics import structural_ids
from gam_depth_ros.inference.postprocessing import disparity_to_depth
from training import losses
from training.config import LossConfig, MaskConfig, TrainingConfig
from training.geometry import backproject, project, sample
from training.image_ops import gaussian_blur, resize_area


def compute_objective(
    batch: dict[str, Tensor], outputs: dict, config: TrainingConfig, semantic_active: bool,
    photometric: Callable[[Tensor, Tensor, float], Tensor] = losses.photometric_error,
    mask_config: MaskConfig | None = None,
    pose_prior_active: bool = False,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Loss terms of one batch.

    Parameters
    ----------
    batch:
        Samples in the schema of :mod:`training.data.sample`, batched, on the model's device.
    outputs:
        :meth:`training.model.SelfSupervisedModel.forward` of the batch.
    config:
        The run's config (loss weights, depth range, depth scales).
    semantic_active:
        Whether the semantic term is part of the total (the first ``semantic_epochs`` epochs).
    photometric:
        :func:`training.losses.photometric_error` or a compiled version of it
        (``train.compile_loss``).
    mask_config:
        The gradient-aware mask's parameters with gamma2 resolved
        (:func:`training.mask_calibration.resolve_mask`); None = ``config.loss.mask``.
    pose_prior_active:
        Whether the pose prior (``config.loss.pose_prior``) is part of the total (its first ``steps``).

    Returns
    -------
    total:
        Scalar, the weighted sum of :func:`training.losses.total_loss`.
    terms:
        Named scalars: ``photometric``, ``semantic``, ``smoothness``, ``planar``, ``normal``,
        ``pose_prior``, ``fitted_depth``, ``total``, and diagnostics ``mask_lift_fraction``, ``mask_mean``,
        ``automask_fraction``.
    """
    loss_cfg = config.loss
    m = _mask_parameters(config, mask_config)
    images = batch["images"].float()
    b, f, _, height, width = images.shape
    s = f - 1
    target = images[:, 0]
    K = batch["K"][:, 0].float()
    inv_K = batch["inv_K"][:, 0].float()
    T = outputs["T_source_target"].float()
    sources = images[:, 1:].reshape(b * s, 3, height, width)
    target_b = target.unsqueeze(1)  # [B,1,3,H,W]: broadcast against the S sources, never copied

    identity = None
    if loss_cfg.automask:
        identity = photometric(images[:, 1:], target_b, loss_cfg.ssim_weight).view(b, s, height, width)
    mask = None
    if m.enabled:
        mask = losses.gradient_aware_mask(batch["gradient"].float(), m.beta, m.gamma1, m.gamma2)

    blurred = _blurred_images(sources, target, loss_cfg, photometric)
    has_structure = batch["has_structure"].bool()
    segments, has_planes = plane_segments(batch, loss_cfg.planar.label_classes if loss_cfg.planar.enabled else ())
    use_structure = (loss_cfg.planar.enabled and bool(has_planes.any())) or (
        loss_cfg.normal.enabled and bool(has_structure.any()))
    scales = sorted(config.networks.depth_scales)
    zero = images.new_zeros(())
    sums = {"photometric": zero, "smoothness": zero, "planar": zero, "normal": zero, "fitted_depth": zero}
    use_fitted = loss_cfg.fitted_depth_weight > 0 and bool(batch["has_fitted_depth"].any())
    automasked = zero
    for scale, disparity in zip(scales, outputs["disparities"]):
        disparity = disparity.float()
        full = disparity if scale == 0 else F.interpolate(disparity, (height, width), mode="bilinear",
                                                          align_corners=False)
        depth = disparity_to_depth(full, config.model.min_depth, config.model.max_depth)
        points = backproject(depth, inv_K)
        pixels = project(points.unsqueeze(1), K.unsqueeze(1), T).reshape(b * s, height, width, 2)
        warped = sample(sources, pixels).view(b, s, 3, height, width)
        reprojection = photometric(warped, target_b, loss_cfg.ssim_weight).view(b, s, height, width)
        min_loss, identity_selected = losses.minimum_reprojection(reprojection, identity, loss_cfg.identity_noise)
        automasked = automasked + identity_selected.float().mean()
        if mask is not None:
            sums["photometric"] = sums["photometric"] + losses.gradient_aware_loss(min_loss, mask, m.k)
        else:
            sums["photometric"] = sums["photometric"] + min_loss.mean()
        for images_at_level in blurred:
            sums["photometric"] = sums["photometric"] + _blurred_photometric(
                images_at_level, pixels, mask, b, loss_cfg, m.k, photometric)
        smooth = losses.smoothness_loss(disparity, resize_area(target, scale))
        sums["smoothness"] = sums["smoothness"] + smooth / 2**scale
        if use_fitted:
            sums["fitted_depth"] = sums["fitted_depth"] + losses.fitted_depth_loss(
                depth, batch["depth_fitted"].float(), batch["has_fitted_depth"].bool())
        if use_structure:
            planar, normal = _structure_terms(batch, depth, points, inv_K, segments, has_planes, config)
            sums["planar"] = sums["planar"] + planar
            sums["normal"] = sums["normal"] + normal

    terms = {name: value / len(scales) for name, value in sums.items()}
    logits = outputs.get("semantic_logits")
    labels = batch["labels"]
    if logits is not None and bool(batch["has_labels"].any()):
        terms["semantic"] = losses.semantic_loss(logits, labels)
    else:
        terms["semantic"] = zero
    if loss_cfg.pose_prior.weight > 0 and bool(batch["has_prior_pose"].any()):
        prior = loss_cfg.pose_prior
        terms["pose_prior"] = losses.pose_prior_loss(T, batch["prior_poses"][:, 1:].float(),
                                                     batch["has_prior_pose"][:, 1:], prior.rotation_weight)
    else:
        terms["pose_prior"] = zero
    total = losses.total_loss(terms, loss_cfg, semantic_active and logits is not None, pose_prior_active)
    terms["total"] = total
    terms["automask_fraction"] = automasked / len(scales)
    if mask is not None:
        terms["mask_mean"] = mask.mean()
        terms["mask_lift_fraction"] = losses.mask_lift_fraction(mask, m.beta, m.lift_threshold)
    return total, terms


def _blurred_images(
    sources: Tensor, target: Tensor, loss_cfg: LossConfig, photometric: Callable,
) -> list[tuple[Tensor, Tensor, Tensor | None]]:
    """Per level l = 1..``loss.photometric_pyramid``: the sources ``[B*S,3,H,W]`` and target ``[B,1,3,H,W]``
    blurred by a Gaussian of sigma 2**(l-1) px, and their identity errors ``[B,S,H,W]`` (None without automask).

    Warped at the full-resolution warp, a blurred source's error falls smoothly over about sigma pixels
    around the match, so a depth whose warp lands several pixels off still gets a gradient towards it (at
    full sharpness the photometric gradient sees about one pixel). The images are blurred, not downsampled:
    a block-averaged warp of a downsampled image (tried first) is not matched at the true depth wherever a
    block straddles a depth edge, and a free depth map drifted from the truth to worse than a constant.
    """
    levels = []
    b, s = target.shape[0], sources.shape[0] // target.shape[0]
    height, width = target.shape[-2:]
    for level in range(1, loss_cfg.photometric_pyramid + 1):
        sigma = 2.0 ** (level - 1)
        size = 2 * math.ceil(2 * sigma) + 1  # +-2 sigma
        if size // 2 >= min(height, width):
            raise ValueError(f"loss.photometric_pyramid={loss_cfg.photometric_pyramid}: level {level}'s blur "
                             f"(sigma {sigma:g} px) needs an image larger than {height}x{width}")
        sources_l, target_l = gaussian_blur(sources, size, sigma), gaussian_blur(target, size, sigma).unsqueeze(1)
        identity = None
        if loss_cfg.automask:
            identity = photometric(sources_l.view(b, s, 3, height, width), target_l,
                                   loss_cfg.ssim_weight).view(b, s, height, width)
        levels.append((sources_l, target_l, identity))
    return levels


def _blurred_photometric(
    images_at_level: tuple[Tensor, Tensor, Tensor | None], pixels: Tensor, mask: Tensor | None, batch_size: int,
    loss_cfg: LossConfig, k: float, photometric: Callable,
) -> Tensor:
    """The minimum-reprojection (or gradient-aware) term of one blur level, for the warp ``pixels [B*S,H,W,2]``."""
    sources, target, identity = images_at_level
    height, width = target.shape[-2:]
    warped = sample(sources, pixels).view(batch_size, -1, 3, height, width)
    reprojection = photometric(warped, target, loss_cfg.ssim_weight).view(batch_size, -1, height, width)
    min_loss, _ = losses.minimum_reprojection(reprojection, identity, loss_cfg.identity_noise)
    return min_loss.mean() if mask is None else losses.gradient_aware_loss(min_loss, mask, k)


def plane_segments(batch: dict[str, Tensor], label_classes: tuple[str, ...]) -> tuple[Tensor, Tensor]:
    """The planar term's segments ``[B,H,W]`` (-1 = none) and the images ``[B]`` bool they are set for.

    Precomputed segments (``has_structure``) are kept; a sample without them but with labels gets one
    segment per class of ``label_classes`` (each class's pixels are one plane: the floor, the ceiling).
    """
    segments, has_planes = batch["segments"], batch["has_structure"].bool()
    if not label_classes:
        return segments, has_planes
    labels = batch["labels"]
    from_labels = torch.full_like(segments, -1)
    for index, class_id in enumerate(structural_ids(label_classes)):
        from_labels = torch.where(labels == class_id, torch.full_like(segments, index), from_labels)
    use_labels = ~has_planes & batch["has_labels"].bool()
    segments = torch.where(use_labels.view(-1, 1, 1), from_labels, segments)
    return segments, has_planes | use_labels


def _structure_terms(
    batch: dict[str, Tensor], depth: Tensor, points: Tensor, inv_K: Tensor, segments: Tensor, has_planes: Tensor,
    config: TrainingConfig,
) -> tuple[Tensor, Tensor]:
    """Planar and Manhattan-normal terms at full resolution for one scale's depth.

    The planar term covers ``has_planes`` (see :func:`plane_segments`); the normal term only the
    images with precomputed structure (it needs their dominant directions).
    """
    planar_cfg, normal_cfg = config.loss.planar, config.loss.normal
    planar, planar_mask = losses.planar_loss(
        depth, inv_K, segments, has_planes, planar_cfg.min_pixels, planar_cfg.border,
        config.model.min_depth, config.model.max_depth,
    )
    if not planar_cfg.enabled:
        planar = depth.new_zeros(())
    normal = depth.new_zeros(())
    has_structure = batch["has_structure"].bool()
    if normal_cfg.enabled and bool(has_structure.any()):
        normals = losses.surface_normals(points)
        normal, _ = losses.manhattan_normal_loss(
            normals, batch["vanishing_directions"], has_structure, normal_cfg.align_cos, planar_mask
        )
    return planar, normal


def _mask_parameters(config: TrainingConfig, mask_config: MaskConfig | None) -> MaskConfig:
    """``mask_config`` or the config's mask; refuses a gamma2 that still waits to be set from the data."""
    m = config.loss.mask if mask_config is None else mask_config
    if m.enabled and m.gamma2_from_quantile > 0:
        raise ValueError("loss.mask.gamma2_from_quantile is set: resolve gamma2 from the data first "
                         "(training.mask_calibration.resolve_mask) and pass the result as mask_config")
    return m


def mask_statistics(
    gradient: Tensor, config: TrainingConfig, mask_config: MaskConfig | None = None,
) -> dict[str, float]:
    """Mean mask and lifted-pixel fraction of a ``gradient [B,1,H,W]`` batch (for reports)."""
    m = _mask_parameters(config, mask_config)
    mask = losses.gradient_aware_mask(gradient.float(), m.beta, m.gamma1, m.gamma2)
    return {
        "mask_mean": float(mask.mean()),
        "mask_lift_fraction": float(losses.mask_lift_fraction(mask, m.beta, m.lift_threshold)),
        "gradient_p99": float(torch.quantile(gradient.float().flatten()[:1_000_000], 0.99)),
    }

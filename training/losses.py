"""The GAM-Depth loss terms, each a named function; weights come from ``LossConfig``.

Shapes: B images, S source frames, H x W the full resolution. Photometric quantities are per
pixel ``[B,1,H,W]`` (one channel) unless stated otherwise. The terms are combined by
:func:`total_loss`, whose weighted sum is written out term by term.

Deliberate differences from the public reference code (see docs/training.md):
* the gradient-aware mask is applied per image (:func:`gradient_aware_loss` refuses shapes that
  would broadcast one image's loss against every image's mask);
* the semantic loss takes logits (one softmax, inside the cross-entropy) and ignores the void
  label 255, not class 0.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F

from training.geometry import pixel_rays

VOID_LABEL = 255
SSIM_C1 = 0.01**2  # SSIM stabilisers for intensities in [0, 1]
SSIM_C2 = 0.03**2


def ssim(x: Tensor, y: Tensor) -> Tensor:
    """Structural similarity on 3x3 windows with reflection padding.

    Parameters
    ----------
    x, y:
        ``[N,C,H,W]`` images in [0, 1]. Leading dimensions broadcast: ``x [B,S,C,H,W]`` against
        ``y [B,1,C,H,W]`` compares S images with one target without copying it.

    Returns
    -------
    Tensor
        SSIM map in [-1, 1] of the broadcast shape (1 where the images agree).
    """
    x, y = _reflect_pad(x), _reflect_pad(y)
    mu_x, mu_y = _box3(x), _box3(y)
    mu_xx, mu_yy, mu_xy = mu_x * mu_x, mu_y * mu_y, mu_x * mu_y
    sigma_x = _box3(x * x) - mu_xx
    sigma_y = _box3(y * y) - mu_yy
    sigma_xy = _box3(x * y) - mu_xy
    numerator = (2 * mu_xy + SSIM_C1) * (2 * sigma_xy + SSIM_C2)
    denominator = (mu_xx + mu_yy + SSIM_C1) * (sigma_x + sigma_y + SSIM_C2)
    return numerator / denominator


def _reflect_pad(x: Tensor) -> Tensor:
    """1-pixel reflection padding of ``[...,C,H,W]`` (``F.pad`` takes at most 4-D here)."""
    lead, (height, width) = x.shape[:-2], x.shape[-2:]
    padded = F.pad(x.reshape(-1, 1, height, width), (1, 1, 1, 1), mode="reflect")
    return padded.view(*lead, height + 2, width + 2)


def _box3_mean(x: Tensor) -> Tensor:
    rows = x[..., :, :-2] + x[..., :, 1:-1] + x[..., :, 2:]
    return (rows[..., :-2, :] + rows[..., 1:-1, :] + rows[..., 2:, :]) * (1.0 / 9.0)


class _Box3(torch.autograd.Function):
    """3x3 mean of a 1-pixel-padded ``[...,H+2,W+2]`` map -> ``[...,H,W]``.

    Separable sums, about 3x faster than ``avg_pool2d`` on CPU; the backward pass is the adjoint
    (the 3x3 mean of the zero-padded gradient) instead of autograd's per-slice zero-fill and copy.
    """

    @staticmethod
    def forward(ctx, padded: Tensor) -> Tensor:  # noqa: D102 - see the class docstring
        return _box3_mean(padded)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # noqa: D102
        return _box3_mean(F.pad(grad, (2, 2, 2, 2)))


_box3 = _Box3.apply


def photometric_error(prediction: Tensor, target: Tensor, ssim_weight: float) -> Tensor:
    """``ssim_weight * (1 - SSIM) / 2 + (1 - ssim_weight) * L1``, averaged over channels.

    Parameters
    ----------
    prediction, target:
        ``[N,3,H,W]`` images in [0, 1] (leading dimensions broadcast, as in :func:`ssim`).

    Returns
    -------
    Tensor
        ``[N,1,H,W]`` per-pixel error (0 for identical images).
    """
    l1 = (prediction - target).abs().mean(-3, keepdim=True)
    dssim = ((1.0 - ssim(prediction, target)) / 2.0).clamp(0.0, 1.0).mean(-3, keepdim=True)
    return ssim_weight * dssim + (1.0 - ssim_weight) * l1


def minimum_reprojection(reprojection: Tensor, identity: Tensor | None, noise_std: float) -> tuple[Tensor, Tensor]:
    """Per-pixel minimum over sources, with auto-masking of static pixels.

    Parameters
    ----------
    reprojection:
        ``[B,S,H,W]`` photometric error of each warped source against the target.
    identity:
        ``[B,S,H,W]`` error of each *unwarped* source against the target, or None (no
        auto-masking). Tiny noise (std ``noise_std``) is added to break ties with the warped terms.

    Returns
    -------
    loss:
        ``[B,1,H,W]`` the minimum.
    identity_selected:
        ``[B,1,H,W]`` bool, where an identity term was the minimum (pixel auto-masked).
    """
    if identity is None:
        return reprojection.min(1, keepdim=True)[0], torch.zeros_like(reprojection[:, :1], dtype=torch.bool)
    identity = identity + torch.randn_like(identity) * noise_std
    loss, index = torch.cat([identity, reprojection], dim=1).min(1, keepdim=True)
    return loss, index < identity.shape[1]


def gradient_aware_mask(gradient: Tensor, beta: float, gamma1: float, gamma2: float) -> Tensor:
    """``M = beta + (1 - beta) / (1 + exp(-gamma1 * m + gamma2))``, one mask per image.

    Parameters
    ----------
    gradient:
        ``[B,1,H,W]`` gradient magnitude m of each target (0..255 scale, see
        :func:`training.image_ops.gradient_magnitude`).

    Returns
    -------
    Tensor
        ``[B,1,H,W]`` weights in [beta, 1].
    """
    return beta + (1.0 - beta) * torch.sigmoid(gamma1 * gradient - gamma2)


def gradient_aware_loss(min_loss: Tensor, mask: Tensor, k: float) -> Tensor:
    """``L_gra = k * mean(M * L_min)``, each image weighted by its own mask.

    Parameters
    ----------
    min_loss:
        ``[B,1,H,W]`` minimum reprojection loss.
    mask:
        ``[B,1,H,W]`` gradient-aware mask of the same images.

    Raises
    ------
    ValueError
        If the shapes differ: a ``[B,H,W]`` loss times a ``[B,1,H,W]`` mask would broadcast to
        ``[B,B,H,W]`` and give every image the batch-mean mask (the reference code's defect).
    """
    if min_loss.shape != mask.shape or min_loss.dim() != 4 or min_loss.shape[1] != 1:
        raise ValueError(f"need loss and mask both [B,1,H,W], got {tuple(min_loss.shape)} and {tuple(mask.shape)}")
    return k * (mask * min_loss).mean()


def mask_lift_fraction(mask: Tensor, beta: float, threshold: float) -> Tensor:
    """Fraction of pixels whose mask is lifted above its floor: (M - beta) / (1 - beta) > threshold."""
    return (((mask - beta) / max(1.0 - beta, 1e-12)) > threshold).float().mean()


def semantic_loss(logits: Tensor, labels: Tensor, ignore_index: int = VOID_LABEL) -> Tensor:
    """Pixel-wise cross-entropy on logits, void pixels ignored; 0 when no pixel has a label.

    Parameters
    ----------
    logits:
        ``[B,C,H,W]`` unnormalised class scores (no softmax before this function).
    labels:
        ``[B,H,W]`` int64 class ids 0..C-1, ``ignore_index`` = void.
    """
    total = F.cross_entropy(logits.float(), labels, ignore_index=ignore_index, reduction="sum")
    return total / (labels != ignore_index).sum().clamp(min=1)


def smoothness_loss(disparity: Tensor, image: Tensor) -> Tensor:
    """Edge-aware smoothness of mean-normalised disparity.

    Parameters
    ----------
    disparity:
        ``[B,1,h,w]`` disparity at one scale.
    image:
        ``[B,3,h,w]`` the target image at the same scale, in [0, 1].

    Returns
    -------
    Tensor
        Scalar: mean |d/dx d*| exp(-|d/dx I|) + mean |d/dy d*| exp(-|d/dy I|), d* = d / mean(d).
    """
    d = disparity / (disparity.mean((2, 3), keepdim=True) + 1e-7)
    grad_dx = (d[..., :, 1:] - d[..., :, :-1]).abs()
    grad_dy = (d[..., 1:, :] - d[..., :-1, :]).abs()
    image_dx = (image[..., :, 1:] - image[..., :, :-1]).abs().mean(1, keepdim=True)
    image_dy = (image[..., 1:, :] - image[..., :-1, :]).abs().mean(1, keepdim=True)
    return (grad_dx * torch.exp(-image_dx)).mean() + (grad_dy * torch.exp(-image_dy)).mean()


def planar_loss(
    depth: Tensor, inv_K: Tensor, segments: Tensor, valid: Tensor, min_pixels: int, border: int,
    min_depth: float, max_depth: float,
) -> tuple[Tensor, Tensor]:
    """Depth vs. the plane fitted to each segment's back-projected points (StructDepth's regulariser).

    Each segment's plane ``n . X = 1`` is the least-squares fit to its points (gradients flow
    through the fit); the plane's depth along each pixel ray is ``1 / (n . ray)``.

    Parameters
    ----------
    depth:
        ``[B,1,H,W]`` predicted depth.
    inv_K:
        ``[B,4,4]`` inverse intrinsics at this resolution.
    segments:
        ``[B,H,W]`` int64 segment ids, -1 = none.
    valid:
        ``[B]`` bool, images whose ``segments`` are meaningful.
    min_pixels, border:
        Segments with at most ``min_pixels`` pixels and pixels within ``border`` of the image edge
        are left out.
    min_depth, max_depth:
        Range the plane depth is clamped to.

    Returns
    -------
    loss:
        Scalar: sum of |depth - plane depth| over planar pixels / pixels of the valid images.
    planar_mask:
        ``[B,1,H,W]`` bool, pixels that took part.
    """
    b, _, height, width = depth.shape
    seg = torch.where(valid.view(b, 1, 1), segments, torch.full_like(segments, -1))
    inside = torch.zeros_like(seg, dtype=torch.bool)
    inside[:, border:height - border, border:width - border] = True
    seg = torch.where(inside, seg, torch.full_like(seg, -1))
    n_seg = int(seg.max().item()) + 1
    if n_seg <= 0:
        return depth.sum() * 0.0, torch.zeros_like(depth, dtype=torch.bool)
    dummy = b * n_seg
    ids = torch.where(seg >= 0, seg + n_seg * torch.arange(b, device=seg.device).view(b, 1, 1), dummy).view(-1)
    rays = pixel_rays(inv_K.float(), height, width)  # [B,3,H,W]
    points = (rays * depth.float()).permute(0, 2, 3, 1).reshape(-1, 3)
    outer = (points.unsqueeze(2) * points.unsqueeze(1)).reshape(-1, 9)
    A = points.new_zeros(dummy + 1, 9).index_add(0, ids, outer)[:dummy].view(-1, 3, 3)
    rhs = points.new_zeros(dummy + 1, 3).index_add(0, ids, points)[:dummy]
    count = torch.bincount(ids, minlength=dummy + 1)[:dummy]
    ridge = 1e-6 * A.diagonal(dim1=1, dim2=2).sum(-1) / 3.0 + 1e-8  # keeps empty/degenerate fits finite
    eye = torch.eye(3, device=A.device, dtype=A.dtype)
    normals = torch.linalg.solve(A + ridge.view(-1, 1, 1) * eye, rhs.unsqueeze(-1)).squeeze(-1)  # [G,3]
    normals = torch.cat([normals, normals.new_zeros(1, 3)])  # the dummy segment
    keep = torch.cat([count > min_pixels, count.new_zeros(1, dtype=torch.bool)])
    planar_mask = keep[ids].view(b, 1, height, width)
    per_pixel = normals[ids].view(b, height, width, 3).permute(0, 3, 1, 2)
    inv_depth = (per_pixel * rays).sum(1, keepdim=True).clamp(1.0 / max_depth, 1.0 / min_depth)
    error = (depth.float() - 1.0 / inv_depth).abs() * planar_mask
    pixels = valid.sum().clamp(min=1) * height * width
    return error.sum() / pixels, planar_mask


def surface_normals(points: Tensor) -> Tensor:
    """Unit normals ``[B,3,H,W]`` of the surface through ``points [B,3,H,W]`` (right x down differences).

    The last row and column repeat their neighbours. Orientation: away from the camera for a
    surface facing it (sign is irrelevant to :func:`manhattan_normal_loss`).
    """
    dx = points[..., :, 1:] - points[..., :, :-1]
    dy = points[..., 1:, :] - points[..., :-1, :]
    dx = torch.cat([dx, dx[..., :, -1:]], dim=-1)
    dy = torch.cat([dy, dy[..., -1:, :]], dim=-2)
    # Cross product and normalisation written out: ~5x faster than linalg.cross + F.normalize on CPU
    # for channel-strided [B,3,H,W] maps.
    ax, ay, az = dx.unbind(1)
    bx, by, bz = dy.unbind(1)
    normal = torch.stack([ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx], dim=1)
    return normal * (normal * normal).sum(1, keepdim=True).clamp(min=1e-16).rsqrt()


def manhattan_normal_loss(
    normals: Tensor, directions: Tensor, valid: Tensor, align_cos: float, pixel_mask: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Pull normals that are already close to a dominant direction onto it.

    Parameters
    ----------
    normals:
        ``[B,3,H,W]`` unit normals from the predicted depth.
    directions:
        ``[B,3,3]`` rows: unit dominant (Manhattan) directions in the camera frame.
    valid:
        ``[B]`` bool, images whose directions are meaningful.
    align_cos:
        Pixels with |cos(normal, closest direction)| above this are constrained.
    pixel_mask:
        Optional ``[B,1,H,W]`` bool restricting the pixels (e.g. the planar mask).

    Returns
    -------
    loss:
        Scalar: sum of (1 - |cos|) over constrained pixels / pixels of the valid images.
    aligned:
        ``[B,1,H,W]`` bool, the constrained pixels.
    """
    b, _, height, width = normals.shape
    cos = torch.einsum("bkc,bchw->bkhw", directions.to(normals.dtype), normals).abs()
    best = cos.max(1, keepdim=True)[0]
    aligned = (best.detach() > align_cos) & valid.view(b, 1, 1, 1)
    if pixel_mask is not None:
        aligned = aligned & pixel_mask
    pixels = valid.sum().clamp(min=1) * height * width
    return ((1.0 - best) * aligned).sum() / pixels, aligned


def pose_prior_loss(T_pred: Tensor, T_prior: Tensor, found: Tensor, rotation_weight: float = 1.0,
                    eps: float = 1e-8) -> Tensor:
    """Distance of predicted poses from the two-view estimate, mean over the pairs where it was found.

    ``T_pred``, ``T_prior``: ``[B,S,4,4]`` ``T_source_target``; ``found``: ``[B,S]`` bool. Per pair:
    the rotation difference ``|R_pred - R_prior|_F / sqrt(2)`` (about the angle in radians when small;
    smooth, unlike the angle itself at 0) times ``rotation_weight``, plus ``1 - cos`` of the angle between
    the translations (the estimate has no scale, so only directions are compared). 0 when no pair was found.
    """
    rotation = ((T_pred[..., :3, :3] - T_prior[..., :3, :3]).square().sum((-1, -2)) + eps).sqrt() / 2**0.5
    t_pred, t_prior = T_pred[..., :3, 3], T_prior[..., :3, 3]
    cosine = (t_pred * t_prior).sum(-1) / (t_pred.norm(dim=-1) * t_prior.norm(dim=-1) + eps)
    weights = found.to(rotation.dtype)
    return ((rotation_weight * rotation + 1.0 - cosine) * weights).sum() / weights.sum().clamp(min=1.0)


def fitted_depth_loss(depth: Tensor, fitted: Tensor, has_fitted: Tensor) -> Tensor:
    """Mean ``|log depth - log fitted|`` over the pixels with a fitted depth (> 0) of the samples that have one.

    ``depth``, ``fitted``: ``[B,1,H,W]`` metres (``fitted`` from :mod:`training.fitted_depth`, 0 =
    invalid); ``has_fitted``: ``[B]`` bool. Log depth, so that an error of 10 % weighs the same near
    and far; 0 when no pixel has a fitted depth.
    """
    valid = (fitted > 0) & has_fitted.view(-1, 1, 1, 1)
    error = (depth.clamp_min(1e-6).log() - fitted.clamp_min(1e-6).log()).abs()
    return (error * valid).sum() / valid.sum().clamp_min(1)


def total_loss(terms: dict[str, Tensor], config, semantic_active: bool, pose_prior_active: bool = False) -> Tensor:
    """The weighted sum of the named terms (``config``: :class:`training.config.LossConfig`).

    ``L = photometric + w_sem * semantic [semantic_active] + w_smooth * smoothness
    + w_planar * planar [enabled] + w_normal * normal [enabled] + w_prior * pose_prior [pose_prior_active]
    + w_fitted * fitted_depth``.
    ``photometric`` is L_gra (or the plain minimum reprojection when the mask is off), every term
    already averaged over scales.
    """
    total = terms["photometric"]
    if semantic_active:
        total = total + config.semantic_weight * terms["semantic"]
    total = total + config.smoothness_weight * terms["smoothness"]
    if config.planar.enabled:
        total = total + config.planar.weight * terms["planar"]
    if config.normal.enabled:
        total = total + config.normal.weight * terms["normal"]
    if pose_prior_active and config.pose_prior.weight > 0:
        total = total + config.pose_prior.weight * terms["pose_prior"]
    if config.fitted_depth_weight > 0:
        total = total + config.fitted_depth_weight * terms["fitted_depth"]
    return total

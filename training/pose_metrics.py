"""Pose errors of predicted relative camera motions against the truth: pure functions, any batch size.

Every pose is ``T_source_target`` ``[N,4,4]`` (:mod:`training.geometry`): it maps target-camera
points into the source camera, ``[[R, t], [0, 1]]``; t is in metres for the truth and in the pose
network's (arbitrary) unit for predictions, which is why translation is scored by direction and by
the ratio of lengths separately.

Per pair (:func:`pose_errors`):

- ``translation_cosine``: cos of the angle between t_pred and t_true (1 = right direction; 0 when
  either is zero, which carries no direction, e.g. the identity baseline);
- ``translation_ratio``: |t_pred| / |t_true| (1 = right length, for predictions in metres);
- ``rotation_error_deg``: the angle of ``R_pred^T R_true`` (the rotation still missing), degrees;
- ``rotation_error_fraction``: that angle over the angle of ``R_true`` (0 = exact, 1 = no better
  than predicting no rotation for small errors; NaN where the truth does not rotate);
- ``true_rotation_deg``, ``true_translation_m``: the truth's size, for context.

Over a set of pairs (:func:`prediction_spread`): how much the predictions vary from pair to pair,
relative to how much the truth does. A network that predicts one motion whatever its input has a
spread near 0 (the pose review of issue 15 measured 0.01-0.02).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from training.geometry import matrix_to_axis_angle, pose_vector_to_matrix

_EPS = 1e-12


def rotation_angle(R: Tensor) -> Tensor:
    """Angle in radians ``[N]`` of rotation matrices ``[N,3,3]``, in [0, pi].

    ``atan2(|vee(R - R^T)| / 2, (trace - 1) / 2)``: accurate near 0 and near pi, unlike ``acos``.
    """
    vee = torch.stack([R[:, 2, 1] - R[:, 1, 2], R[:, 0, 2] - R[:, 2, 0], R[:, 1, 0] - R[:, 0, 1]], dim=-1)
    sin = vee.norm(dim=-1) / 2.0
    cos = (R.diagonal(dim1=-2, dim2=-1).sum(-1) - 1.0) / 2.0
    return torch.atan2(sin, cos)


def pose_errors(T_pred: Tensor, T_true: Tensor) -> dict[str, Tensor]:
    """Per-pair errors of predicted against true relative poses (see the module docstring).

    Parameters
    ----------
    T_pred, T_true:
        ``[N,4,4]`` ``T_source_target`` of the same N pairs.

    Returns
    -------
    dict[str, Tensor]
        ``[N]`` float64 tensors: ``translation_cosine``, ``translation_ratio``, ``rotation_error_deg``,
        ``rotation_error_fraction``, ``true_rotation_deg``, ``true_translation_m``.
    """
    T_pred, T_true = T_pred.double(), T_true.double()
    t_pred, t_true = T_pred[:, :3, 3], T_true[:, :3, 3]
    norm_pred, norm_true = t_pred.norm(dim=-1), t_true.norm(dim=-1)
    cosine = (t_pred * t_true).sum(-1) / (norm_pred * norm_true).clamp(min=_EPS)
    ratio = norm_pred / norm_true.clamp(min=_EPS)
    error = rotation_angle(T_pred[:, :3, :3].transpose(-1, -2) @ T_true[:, :3, :3])
    true_angle = rotation_angle(T_true[:, :3, :3])
    fraction = torch.where(true_angle > _EPS, error / true_angle.clamp(min=_EPS), torch.full_like(error, math.nan))
    return {
        "translation_cosine": cosine,
        "translation_ratio": ratio,
        "rotation_error_deg": torch.rad2deg(error),
        "rotation_error_fraction": fraction,
        "true_rotation_deg": torch.rad2deg(true_angle),
        "true_translation_m": norm_true,
    }


def _spread(vectors: Tensor) -> Tensor:
    """Root mean squared distance of ``[N,3]`` vectors from their mean."""
    return (vectors - vectors.mean(0, keepdim=True)).square().sum(-1).mean().sqrt()


def prediction_spread(T_pred: Tensor, T_true: Tensor) -> dict[str, float]:
    """How much predictions vary across pairs, relative to the truth's variation.

    Parameters
    ----------
    T_pred, T_true:
        ``[N,4,4]`` poses of N pairs of *one* kind (e.g. every pair with the source one step
        later), N >= 2: pooling earlier and later sources would count their sign as spread.

    Returns
    -------
    dict[str, float]
        ``rotation_spread_ratio``: RMS distance of the predicted rotation vectors (axis-angle) from
        their mean over that of the true ones; ``translation_spread_ratio``: the same for the
        translations, each scaled to the mean length of its own set first (so a network
        predicting in another unit is not penalised); ``*_spread_pred`` / ``*_spread_true``: the
        unscaled RMS distances (radians, prediction unit / metres).
    """
    if T_pred.shape[0] < 2:
        raise ValueError("the spread needs at least two pairs")
    T_pred, T_true = T_pred.double(), T_true.double()
    r_pred, r_true = matrix_to_axis_angle(T_pred[:, :3, :3]), matrix_to_axis_angle(T_true[:, :3, :3])
    t_pred, t_true = T_pred[:, :3, 3], T_true[:, :3, 3]
    rot_pred, rot_true = _spread(r_pred), _spread(r_true)
    trans_pred, trans_true = _spread(t_pred), _spread(t_true)
    scale_pred = t_pred.norm(dim=-1).mean().clamp(min=_EPS)
    scale_true = t_true.norm(dim=-1).mean().clamp(min=_EPS)
    return {
        "rotation_spread_ratio": float(rot_pred / rot_true.clamp(min=_EPS)),
        "translation_spread_ratio": float((trans_pred / scale_pred) / (trans_true / scale_true).clamp(min=_EPS)),
        "rotation_spread_pred": float(rot_pred), "rotation_spread_true": float(rot_true),
        "translation_spread_pred": float(trans_pred), "translation_spread_true": float(trans_true),
    }


def interpolate_pose(T: Tensor, alpha: float) -> Tensor:
    """The pose a fraction ``alpha`` of the way from identity to ``T`` ``[N,4,4]``.

    Rotation vector and translation both scaled by ``alpha`` (the pose network's own
    parameterisation: axis-angle and translation); ``alpha`` 0 = identity, 1 = ``T``, > 1 overshoots.
    """
    T = T.double()
    return pose_vector_to_matrix(alpha * matrix_to_axis_angle(T[:, :3, :3]), alpha * T[:, :3, 3])


def summarise(errors: dict[str, Tensor]) -> dict[str, float]:
    """Mean and median of every per-pair error (NaNs ignored), plus the pair count."""
    out: dict[str, float] = {"pairs": float(next(iter(errors.values())).numel())}
    for name, values in errors.items():
        finite = values[torch.isfinite(values)]
        out[f"{name}_mean"] = float(finite.mean()) if finite.numel() else math.nan
        out[f"{name}_median"] = float(finite.quantile(0.5)) if finite.numel() else math.nan
    return out

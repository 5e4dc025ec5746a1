"""gamma2 of the gradient-aware mask from the training data's gradient distribution.

With the paper's values (gamma1 0.1, gamma2 40) the mask is lifted only where m > 354, which few
or no pixels reach (docs/training.md, "The mask with the paper's values"). With
``loss.mask.gamma2_from_quantile: q`` the trainer instead sets gamma2 at start so that the pixels
whose gradient magnitude m lies above the q-quantile of m over the training data are lifted, by the
same rule as the logged ``mask_lift_fraction``:

    lifted  <=>  (M - beta) / (1 - beta) > t  <=>  sigmoid(gamma1 m - gamma2) > t
            <=>  m > (gamma2 + ln(t / (1 - t))) / gamma1,

so the lift starts at ``m_start`` when ``gamma2 = gamma1 * m_start + ln((1 - t) / t)`` (t =
``lift_threshold``, 0.01: ``ln 99 = 4.595``). The paper's gamma2 = 40 corresponds to m = 354.

``m_q`` is :func:`numpy.quantile` (linear interpolation) of the pooled ``gradient`` of
``quantile_samples`` evenly spaced training samples (loaded with fixed per-sample seeds, so every
rank and every resumed run gets the same value; flips do not change the distribution of m, and m is
computed on the un-jittered frames). ``m_start`` lies half-way between ``m_q`` and the next larger
value of m in those samples (``m_q + 1`` when there is none), so that every pixel at or below
``m_q`` stays at beta and every pixel above it is lifted, with a margin that float rounding cannot
cross; pixels tied at ``m_q`` therefore stay at beta, and on data with many equal values fewer than
``1 - q`` of the pixels may be lifted. The config is not changed: the trainer holds the resolved
:class:`~training.config.MaskConfig` and logs its gamma2.
"""

from __future__ import annotations

import dataclasses
import logging
import math

import numpy as np
from torch import Tensor

from training.config import MaskConfig
from training.sampling import SeededDataset, sample_seed

LOG = logging.getLogger("training")
_CALIBRATION_EPOCH = 2**31 - 1  # per-sample seeds (seed, this, index): no training epoch uses them


def lift_offset(lift_threshold: float) -> float:
    """``ln((1 - t) / t)``: gamma2 minus gamma1 times the m at which the mask starts to count as lifted."""
    return math.log((1.0 - lift_threshold) / lift_threshold)


def gamma2_for_lift_start(m_start: float, gamma1: float, lift_threshold: float) -> float:
    """The gamma2 that lifts exactly the pixels with ``m > m_start`` (see the module docstring)."""
    if gamma1 <= 0:
        raise ValueError(f"gamma1 must be > 0 to set gamma2 from the gradients, got {gamma1}")
    return gamma1 * m_start + lift_offset(lift_threshold)


def lift_start(gamma1: float, gamma2: float, lift_threshold: float) -> float:
    """The m above which a mask with these gammas counts as lifted (354 for the paper's values)."""
    return (gamma2 - lift_offset(lift_threshold)) / gamma1


def gamma2_from_gradients(gradients: Tensor | np.ndarray, quantile: float, gamma1: float,
                          lift_threshold: float) -> tuple[float, float]:
    """gamma2 lifting the pixels above the ``quantile`` of ``gradients``.

    Parameters
    ----------
    gradients:
        Gradient magnitudes m (any shape, e.g. ``[N,1,H,W]``; 0..255 scale,
        :func:`training.image_ops.gradient_magnitude`).
    quantile:
        q in (0, 1): the top ``1 - q`` share of the pixels is to be lifted.
    gamma1, lift_threshold:
        As in :class:`~training.config.MaskConfig`.

    Returns
    -------
    gamma2, m_q, m_start:
        The offset, the quantile of m, and the m at which the lift starts (see the module docstring).
    """
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"quantile must be in (0, 1), got {quantile}")
    values = np.asarray(gradients.detach().cpu() if isinstance(gradients, Tensor) else gradients, dtype=np.float64)
    values = values.ravel()
    m_q = float(np.quantile(values, quantile))
    above = values[values > m_q]
    m_start = 0.5 * (m_q + float(above.min())) if above.size else m_q + 1.0
    return gamma2_for_lift_start(m_start, gamma1, lift_threshold), m_q, m_start


def resolve_mask(mask: MaskConfig, dataset, seed: int = 0) -> MaskConfig:
    """The mask config the run uses: ``mask`` itself, or with gamma2 set from ``dataset``'s gradients.

    Parameters
    ----------
    mask:
        ``config.loss.mask``; only ``gamma2_from_quantile > 0`` (and ``enabled``) changes anything.
    dataset:
        The training dataset (samples in the schema of :mod:`training.data.sample`); ``gradient``
        of ``mask.quantile_samples`` evenly spaced samples is read, under fixed per-sample seeds.
    seed:
        Base of those per-sample seeds (``train.seed``).

    Returns
    -------
    MaskConfig
        A copy with ``gamma2`` resolved and ``gamma2_from_quantile`` 0, or ``mask`` unchanged.
    """
    if not mask.enabled or mask.gamma2_from_quantile <= 0:
        return mask
    seeded = SeededDataset(dataset)  # restores the global generators afterwards in this process
    count = min(mask.quantile_samples, len(seeded))
    indices = np.unique(np.linspace(0, len(seeded) - 1, count).round().astype(int))
    gradients = np.concatenate([
        seeded[(int(i), sample_seed(seed, _CALIBRATION_EPOCH, int(i)))]["gradient"].numpy().ravel() for i in indices
    ])
    gamma2, m_q, m_start = gamma2_from_gradients(gradients, mask.gamma2_from_quantile, mask.gamma1,
                                                 mask.lift_threshold)
    lifted = float((gradients > m_start).mean())
    paper = float((gradients > lift_start(mask.gamma1, mask.gamma2, mask.lift_threshold)).mean())
    LOG.info("gradient-aware mask: gamma2 = %.4g from the %.3g-quantile of m over %d training samples "
             "(m_q = %.4g, lift from m = %.4g, gamma1 = %.4g; lifts %.1f %% of their pixels; the configured "
             "gamma2 = %.4g would lift %.1f %%)", gamma2, mask.gamma2_from_quantile, len(indices), m_q, m_start,
             mask.gamma1, 100 * lifted, mask.gamma2, 100 * paper)
    return dataclasses.replace(mask, gamma2=gamma2, gamma2_from_quantile=0.0)

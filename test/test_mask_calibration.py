"""gamma2 of the gradient-aware mask set from the data (``loss.mask.gamma2_from_quantile``), by hand."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from training import losses
from training.config import MaskConfig, load_training_config
from training.mask_calibration import gamma2_from_gradients, lift_start, resolve_mask
from training.objective import mask_statistics

REPO = Path(__file__).resolve().parents[1]
LN99 = math.log(99.0)  # ln((1 - t) / t) for the default lift threshold t = 0.01


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(1)


def _lifted(gradient: torch.Tensor, mask: MaskConfig) -> float:
    """Share of lifted pixels by the training logs' rule (``mask_lift_fraction``)."""
    weights = losses.gradient_aware_mask(gradient, mask.beta, mask.gamma1, mask.gamma2)
    return float(losses.mask_lift_fraction(weights, mask.beta, mask.lift_threshold))


def test_the_papers_gamma2_starts_lifting_at_m_354():
    assert lift_start(0.1, 40.0, 0.01) == pytest.approx((40.0 - LN99) / 0.1)  # = 354.05
    assert lift_start(0.1, 40.0, 0.01) == pytest.approx(354.0488, abs=1e-4)


def test_a_ramp_of_100_values_lifts_its_top_15_percent():
    m = torch.arange(100.0).view(1, 1, 10, 10)  # m = 0, 1, ..., 99
    gamma2, m_q, m_start = gamma2_from_gradients(m, 0.85, 0.1, 0.01)
    # Linear quantile: position 0.85 * 99 = 84.15 between 84 and 85 -> m_q = 84.15; the next larger
    # value is 85, so the lift starts half-way, at 84.575.
    assert m_q == pytest.approx(84.15) and m_start == pytest.approx(84.575)
    assert gamma2 == pytest.approx(0.1 * 84.575 + LN99)  # = 13.0526
    assert gamma2 == pytest.approx(13.0526, abs=1e-4)
    mask = MaskConfig(gamma2=gamma2)
    assert _lifted(m, mask) == pytest.approx(0.15)  # m = 85..99
    assert _lifted(m, MaskConfig()) == 0.0  # the paper's gamma2 = 40 lifts nothing below m = 354


def test_pooled_images_and_another_threshold():
    m = torch.cat([torch.arange(0.0, 50.0), torch.arange(100.0, 150.0)]).view(2, 1, 5, 10)
    gamma2, m_q, m_start = gamma2_from_gradients(m, 0.9, 0.2, 0.05)
    # Sorted: 0..49, 100..149; position 0.9 * 99 = 89.1 between 139 and 140 -> 139.1; start 139.55.
    assert m_q == pytest.approx(139.1) and m_start == pytest.approx(139.55)
    assert gamma2 == pytest.approx(0.2 * 139.55 + math.log(19.0))  # = 30.8544
    assert gamma2 == pytest.approx(30.8544, abs=1e-4)
    assert _lifted(m, MaskConfig(gamma1=0.2, gamma2=gamma2, lift_threshold=0.05)) == pytest.approx(0.10)


def test_pixels_tied_at_the_quantile_stay_at_beta():
    m = torch.tensor([2.0] * 70 + [60.0] * 20 + [300.0] * 10).view(1, 1, 10, 10)
    gamma2, m_q, m_start = gamma2_from_gradients(m, 0.8, 0.1, 0.01)
    # Position 0.8 * 99 = 79.2 falls inside the 60s; the next larger value is 300 -> start at 180.
    assert m_q == 60.0 and m_start == 180.0 and gamma2 == pytest.approx(18.0 + LN99)
    assert _lifted(m, MaskConfig(gamma2=gamma2)) == pytest.approx(0.10)  # only m = 300, not the ties at 60
    _, _, top = gamma2_from_gradients(torch.full((4,), 7.0), 0.5, 0.1, 0.01)
    assert top == 8.0  # nothing above the quantile: one grey level higher, nothing lifted


def _stub_dataset() -> list[dict[str, torch.Tensor]]:
    """Three samples; with quantile_samples 2 only the first and the last are read."""
    ramp = torch.arange(100.0).view(1, 10, 10)
    return [{"gradient": ramp}, {"gradient": torch.full((1, 10, 10), 1000.0)}, {"gradient": ramp + 100.0}]


def test_resolve_mask_reads_evenly_spaced_samples_and_keeps_the_random_streams():
    mask = MaskConfig(gamma2_from_quantile=0.85, quantile_samples=2)
    torch.manual_seed(5)
    before = torch.get_rng_state()
    resolved = resolve_mask(mask, _stub_dataset(), seed=0)
    assert torch.equal(torch.get_rng_state(), before)
    # Pooled 0..99 and 100..199 (the middle sample of 1000s is not read): position 0.85 * 199 = 169.15
    # -> m_q = 169.15, next value 170, start 169.575.
    assert resolved.gamma2 == pytest.approx(0.1 * 169.575 + LN99)
    assert resolved.gamma2_from_quantile == 0.0 and resolved.beta == mask.beta and resolved.k == mask.k
    assert resolve_mask(MaskConfig(), _stub_dataset()) == MaskConfig()  # the paper's values stay the default
    assert resolve_mask(MaskConfig(enabled=False, gamma2_from_quantile=0.85), []).gamma2 == 40.0


def test_invalid_quantiles_are_config_errors_and_unresolved_masks_are_refused():
    with pytest.raises(ValueError, match="gamma2_from_quantile"):
        MaskConfig(gamma2_from_quantile=1.0)
    config = load_training_config(REPO / "config" / "train_tiny.yaml", ["loss.mask.gamma2_from_quantile=0.85"])
    gradient = torch.arange(100.0).view(1, 1, 10, 10)
    with pytest.raises(ValueError, match="resolve gamma2"):
        mask_statistics(gradient, config)
    resolved = resolve_mask(config.loss.mask, [{"gradient": gradient[0]}])
    assert mask_statistics(gradient, config, resolved)["mask_lift_fraction"] == pytest.approx(0.15)


def test_training_logs_the_resolved_gamma2(tmp_path, caplog):
    from training.trainer import Trainer

    config = load_training_config(REPO / "config" / "train_tiny.yaml", [
        f"train.output_dir={tmp_path}", "validation=null", "train.log_every_steps=1", "train.progress_bar=false",
        "train.checkpoint_every_epochs=0", "train.max_steps=1", "train.cpu_threads=1",
        "loss.mask.gamma2_from_quantile=0.85",
    ])
    with caplog.at_level(logging.INFO, logger="training"):
        trainer = Trainer(config)
        result = trainer.fit()
    assert trainer.config.loss.mask.gamma2_from_quantile == 0.85  # the config itself is never changed
    gamma2 = trainer.mask.gamma2
    assert 0 < gamma2 < 40.0
    assert any(f"gamma2 = {gamma2:.4g}" in record.getMessage() for record in caplog.records)
    assert any(f"mask_gamma2={gamma2:.4g}" in record.getMessage() for record in caplog.records)
    # The training batch is two of the eight clips the quantile was taken over: near the top 15 %.
    assert 0.03 < result.last_terms["mask_lift_fraction"] < 0.4
    gradients = np.concatenate([trainer.train_set[i]["gradient"].numpy().ravel() for i in range(8)])
    assert float((gradients > (gamma2 - LN99) / 0.1).mean()) == pytest.approx(0.15, abs=0.001)

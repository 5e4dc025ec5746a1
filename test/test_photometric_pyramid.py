"""``loss.photometric_pyramid``: the photometric term also on blurred images, so depths far off get pulled back.

A textured fronto-parallel wall 2 m away, seen from 15 cm left and right (6 px of parallax at f = 80), with a
texture of wavelengths 3-55 px; the depth is the true one times c, and the gradient of the photometric term
with respect to log c must point back to c = 1.
"""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from gam_depth_ros.inference.postprocessing import depth_to_disparity
from training.config import load_training_config
from training.image_ops import gradient_magnitude
from training.objective import compute_objective

H, W, FOCAL, WALL, BASELINE = 64, 96, 80.0, 2.0, 0.15
WAVELENGTHS = (3, 4, 6, 9, 14, 22, 35, 55)  # px; amplitude grows as sqrt(wavelength), as in natural images


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(1)


def _texture(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    rng = torch.Generator().manual_seed(0)
    image = torch.full_like(u, 0.5)
    for wavelength in WAVELENGTHS:
        angle, phase = torch.rand(2, generator=rng).tolist()
        angle, phase = angle * math.pi, phase * 2 * math.pi
        amplitude = 0.5 / len(WAVELENGTHS) * math.sqrt(wavelength / WAVELENGTHS[-1])
        image = image + amplitude * torch.sin(2 * math.pi * (u * math.cos(angle) + v * math.sin(angle)) / wavelength
                                              + phase)
    return image


def _wall_batch() -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Target and two sources of the wall (rendered analytically), and ``T_source_target [1,2,4,4]``."""
    v, u = torch.meshgrid(torch.arange(H, dtype=torch.float32), torch.arange(W, dtype=torch.float32), indexing="ij")
    tint = torch.tensor([1.0, 0.9, 0.8]).view(3, 1, 1)
    # A source camera at x = -t sees the target's pixel u at u + f * t / Z, so source(u') = texture(u' - f t / Z).
    offsets = (0.0, -BASELINE, BASELINE)
    images = torch.stack([_texture(u - FOCAL * t / WALL, v).expand(3, H, W) * tint for t in offsets]).unsqueeze(0)
    K = torch.eye(4)
    K[0, 0], K[1, 1], K[0, 2], K[1, 2] = FOCAL, FOCAL, (W - 1) / 2, (H - 1) / 2
    K = K.expand(1, 3, 4, 4).clone()
    T = torch.eye(4).repeat(1, 2, 1, 1)
    T[0, 0, 0, 3], T[0, 1, 0, 3] = -BASELINE, BASELINE
    batch = {"images": images, "K": K, "inv_K": torch.linalg.inv(K), "gradient": gradient_magnitude(images[:, 0]),
             "has_structure": torch.tensor([False]), "segments": torch.full((1, H, W), -1),
             "labels": torch.zeros(1, H, W, dtype=torch.long), "has_labels": torch.tensor([False])}
    return batch, T


def _slope(levels: int, c: float) -> tuple[float, float]:
    """Photometric term and its derivative with respect to log c at depth c x the wall's."""
    config = load_training_config("config/train_rich192.yaml", [
        "model.height=64", "model.width=96", "networks.depth_scales=[0]", f"loss.photometric_pyramid={levels}"])
    config = replace(config, loss=replace(config.loss, automask=False))  # the wall moves: no static pixels
    batch, T = _wall_batch()
    log_c = torch.tensor(math.log(c), requires_grad=True)
    depth = torch.full((1, 1, H, W), WALL) * log_c.exp()
    outputs = {"disparities": [depth_to_disparity(depth, 0.1, 10.0)], "T_source_target": T}
    _, terms = compute_objective(batch, outputs, config, semantic_active=False)
    terms["photometric"].backward()
    return float(terms["photometric"].detach()), float(log_c.grad)


def test_the_blurred_levels_pull_every_depth_from_half_to_three_times_back_to_the_wall():
    # What the three blurred levels add to the term (its value and slope with the levels minus without them).
    for c in (0.5, 0.6, 0.75, 0.9, 1.15, 1.5, 2.0, 3.0):
        added = _slope(3, c)[1] - _slope(0, c)[1]
        assert added * math.copysign(1.0, math.log(c)) > 0.02, (c, added)  # descent moves log c towards 0
    assert abs(_slope(3, 1.0)[1]) < 0.01 and _slope(3, 1.0)[0] < 2e-3  # the truth still matches


def test_full_resolution_alone_has_a_false_minimum_beyond_the_wall():
    # measured: the term at c = 2 (3 px of parallax, half the true 6) slopes towards c = 3, away from the wall,
    # and is lower than at c = 1.5: a depth twice too far stays there. On this wall the sharp term still
    # outweighs the blurred levels there (-0.051 + 0.032): they widen the basin, they do not replace it.
    term_2, slope_2 = _slope(0, 2.0)
    assert slope_2 < -0.03
    assert term_2 < _slope(0, 1.5)[0]
    assert _slope(0, 1.0)[0] < 1e-4  # the analytic render matches itself exactly at the true depth


def test_the_levels_add_to_the_term_and_too_many_for_the_image_are_refused():
    assert _slope(3, 1.5)[0] > _slope(0, 1.5)[0]
    with pytest.raises(ValueError, match=r"loss.photometric_pyramid=6: level 6's blur \(sigma 32 px\) needs an "
                                         r"image larger than 64x96"):
        _slope(6, 1.5)

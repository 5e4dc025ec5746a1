"""Loss terms against hand-computed values, including the per-image gradient-aware mask."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from training import losses
from training.config import LossConfig, PosePriorConfig
from training.image_ops import gaussian_kernel, gradient_magnitude

H, W = 64, 96
BETA, GAMMA1, GAMMA2, K_GRA = 0.1, 0.1, 40.0, 10.0


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(1)


def test_ssim_of_identical_images_is_one_and_photometric_error_zero():
    torch.manual_seed(0)
    image = torch.rand(2, 3, H, W)
    assert torch.allclose(losses.ssim(image, image), torch.ones(2, 3, H, W), atol=1e-5)
    assert losses.photometric_error(image, image, 0.85).abs().max() < 1e-5
    other = torch.rand(2, 3, H, W)
    assert losses.ssim(image, other).mean() < 0.5
    error = losses.photometric_error(image, other, 0.85)
    assert error.shape == (2, 1, H, W) and error.min() > 0


def test_photometric_error_weights_ssim_and_l1():
    a = torch.full((1, 3, 8, 8), 0.2)
    b = torch.full((1, 3, 8, 8), 0.5)  # flat images: SSIM from the means only
    mean_term = (2 * 0.2 * 0.5 + losses.SSIM_C1) / (0.2**2 + 0.5**2 + losses.SSIM_C1)
    expected = 0.85 * (1 - mean_term) / 2 + 0.15 * 0.3
    assert torch.allclose(losses.photometric_error(a, b, 0.85), torch.full((1, 1, 8, 8), expected), atol=1e-5)


def test_gradient_magnitude_of_a_ramp_is_eight_times_the_slope():
    slope = 2.0  # grey levels per pixel
    ramp = (torch.arange(W, dtype=torch.float32) * slope / 255.0).view(1, 1, 1, W).expand(1, 3, H, W)
    m = gradient_magnitude(ramp)
    # A linear ramp survives the blur; Sobel's [-1 0 1] x [1 2 1] gives 2 * 4 * slope.
    assert torch.allclose(m[..., 3:-3, 3:-3], torch.full_like(m[..., 3:-3, 3:-3], 8 * slope), atol=1e-3)
    assert gradient_magnitude(torch.full((3, H, W), 0.4)).abs().max() < 1e-3
    assert gradient_magnitude(torch.rand(3, H, W)).shape == (1, H, W)


def test_blur_is_opencvs_5x5_gaussian():
    sigma = 0.3 * ((5 - 1) * 0.5 - 1) + 0.8  # OpenCV's sigma for ksize 5, sigma 0
    expected = torch.exp(-(torch.arange(5.0) - 2) ** 2 / (2 * sigma**2))
    assert torch.allclose(gaussian_kernel(5), expected / expected.sum(), atol=1e-6)


def test_mask_equals_the_formula_for_known_gradients():
    m = torch.tensor([0.0, 100.0, 350.0, 400.0, 450.0, 800.0]).view(1, 1, 1, 6)
    mask = losses.gradient_aware_mask(m, BETA, GAMMA1, GAMMA2)
    expected = [BETA + (1 - BETA) / (1 + math.exp(-GAMMA1 * v + GAMMA2)) for v in m.flatten().tolist()]
    assert torch.allclose(mask.flatten(), torch.tensor(expected), atol=1e-6)
    assert mask[0, 0, 0, 3] == pytest.approx(BETA + (1 - BETA) / 2)  # half-way at m = gamma2 / gamma1
    lifted = losses.mask_lift_fraction(mask, BETA, 0.01)
    assert lifted == pytest.approx(3 / 6)  # 400, 450, 800; 350 is only 0.7 % of the way up
    assert losses.mask_lift_fraction(mask, BETA, 0.001) == pytest.approx(4 / 6)


def _buggy_reference_loss(min_loss_bhw: torch.Tensor, mask: torch.Tensor, k: float) -> torch.Tensor:
    """The public reference code's expression: a [B,H,W] loss times a [B,1,H,W] mask."""
    return (min_loss_bhw * k * mask).mean()


def test_mask_is_applied_per_image():
    torch.manual_seed(1)
    # Image 0 has strong edges (mask near 1), image 1 is flat (mask at beta): different masks.
    gradient = torch.zeros(2, 1, H, W)
    gradient[0, :, :, : W // 2] = 800.0
    mask = losses.gradient_aware_mask(gradient, BETA, GAMMA1, GAMMA2)
    assert not torch.allclose(mask[0], mask[1])
    min_loss = torch.zeros(2, 1, H, W)
    min_loss[0, :, :, : W // 2] = 1.0  # image 0's loss sits exactly where its mask is high
    min_loss[1, :, :, W // 2:] = 1.0  # image 1's loss sits where image 0's mask is low
    batched = losses.gradient_aware_loss(min_loss, mask, K_GRA)
    per_image = [losses.gradient_aware_loss(min_loss[i:i + 1], mask[i:i + 1], K_GRA) for i in range(2)]
    expected = K_GRA * (1.0 * 0.5 + BETA * 0.5) / 2  # image 0: mask ~1 on its half; image 1: beta on its half
    assert batched == pytest.approx(float(sum(per_image) / 2), rel=1e-6)
    assert batched == pytest.approx(expected, rel=1e-4)
    # The reference code's broadcast gives every image the batch-mean mask: a different number.
    buggy = _buggy_reference_loss(min_loss[:, 0], mask, K_GRA)
    assert abs(float(buggy) - expected) > 0.1 * expected
    with pytest.raises(ValueError):
        losses.gradient_aware_loss(min_loss[:, 0], mask, K_GRA)  # the [B,H,W] shape is refused


def test_minimum_reprojection_with_automasking():
    reprojection = torch.tensor([0.5, 0.2, 0.9]).view(1, 3, 1, 1).expand(1, 3, 2, 2).clone()
    identity = torch.tensor([0.4, 0.6, 0.1]).view(1, 3, 1, 1).expand(1, 3, 2, 2).clone()
    loss, selected = losses.minimum_reprojection(reprojection, identity, noise_std=0.0)
    assert torch.allclose(loss, torch.full((1, 1, 2, 2), 0.1)) and selected.all()
    identity[:, 2] = 0.3  # now the warped 0.2 wins
    loss, selected = losses.minimum_reprojection(reprojection, identity, noise_std=0.0)
    assert torch.allclose(loss, torch.full((1, 1, 2, 2), 0.2)) and not selected.any()
    loss, selected = losses.minimum_reprojection(reprojection, None, noise_std=0.0)
    assert torch.allclose(loss, torch.full((1, 1, 2, 2), 0.2)) and not selected.any()


def test_semantic_loss_uses_logits_and_ignores_void():
    torch.manual_seed(2)
    logits = torch.randn(2, 40, 8, 8, requires_grad=True)
    labels = torch.randint(0, 40, (2, 8, 8))
    labels[:, :4] = 255
    loss = losses.semantic_loss(logits, labels)
    valid = labels != 255
    expected = F.cross_entropy(logits.permute(0, 2, 3, 1)[valid], labels[valid])
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    loss.backward()
    assert logits.grad[:, :, :4].abs().max() == 0  # void pixels get no gradient
    assert labels.min() == 0  # class 0 is a real class and counts
    changed = logits.detach().clone()
    changed[:, :, :4] = 100.0
    assert losses.semantic_loss(changed, labels).item() == pytest.approx(loss.item(), rel=1e-6)
    empty = losses.semantic_loss(logits, torch.full((2, 8, 8), 255))
    assert torch.isfinite(empty) and empty == 0


def test_smoothness_is_zero_for_constant_disparity_and_scale_invariant():
    image = torch.rand(2, 3, H, W)
    assert losses.smoothness_loss(torch.full((2, 1, H, W), 0.3), image) == pytest.approx(0.0, abs=1e-7)
    disparity = torch.rand(2, 1, H, W)
    scaled = losses.smoothness_loss(5 * disparity, image)
    assert losses.smoothness_loss(disparity, image) == pytest.approx(float(scaled), rel=1e-4)


def _plane_depth(inv_K: torch.Tensor, normal: torch.Tensor) -> torch.Tensor:
    """Depth of the plane n . X = 1 along every pixel ray."""
    from training.geometry import pixel_rays

    rays = pixel_rays(inv_K, H, W)
    return 1.0 / (rays * normal.view(1, 3, 1, 1)).sum(1, keepdim=True)


def _camera() -> tuple[torch.Tensor, torch.Tensor]:
    K = torch.eye(4)
    K[0, 0], K[1, 1], K[0, 2], K[1, 2] = 80.0, 80.0, 47.5, 31.5
    return K.unsqueeze(0), torch.linalg.inv(K).unsqueeze(0)


def test_planar_loss_is_zero_on_a_plane_and_positive_off_it():
    _, inv_K = _camera()
    depth = _plane_depth(inv_K, torch.tensor([0.05, -0.1, 0.4]))  # a tilted plane about 2.5 m away
    segments = torch.zeros(1, H, W, dtype=torch.long)
    segments[:, :, W // 2:] = 1
    valid = torch.tensor([True])
    loss, mask = losses.planar_loss(depth, inv_K, segments, valid, 200, 8, 0.1, 10.0)
    assert loss < 5e-5 and mask.sum() == (H - 16) * (W - 16)  # float32 normal equations: ~1e-5 m
    bumpy = depth * (1 + 0.1 * torch.sin(torch.arange(W) / 3.0)).view(1, 1, 1, W)
    loss_bumpy, _ = losses.planar_loss(bumpy, inv_K, segments, valid, 200, 8, 0.1, 10.0)
    assert loss_bumpy > 0.01
    loss_none, mask_none = losses.planar_loss(bumpy, inv_K, segments, torch.tensor([False]), 200, 8, 0.1, 10.0)
    assert loss_none == 0 and not mask_none.any()
    small = torch.full_like(segments, -1)
    small[:, 20:30, 20:30] = 0  # 100 pixels: below the 200-pixel minimum
    loss_small, mask_small = losses.planar_loss(bumpy, inv_K, small, valid, 200, 8, 0.1, 10.0)
    assert loss_small == 0 and not mask_small.any()


def test_manhattan_normal_loss():
    from training.geometry import backproject

    _, inv_K = _camera()
    depth = _plane_depth(inv_K, torch.tensor([0.0, 0.0, 0.5]))  # fronto-parallel wall at 2 m
    normals = losses.surface_normals(backproject(depth, inv_K))
    assert torch.allclose(normals[:, 2].abs(), torch.ones(1, H, W), atol=1e-4)
    axes = torch.eye(3).unsqueeze(0)
    loss, aligned = losses.manhattan_normal_loss(normals, axes, torch.tensor([True]), 0.9)
    assert loss < 1e-4 and aligned.all()
    turned = torch.tensor([[[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]])
    angle = 0.3  # directions 0.3 rad off the wall's normal: still aligned (cos 0.955), loss 1 - cos
    c, s = math.cos(angle), math.sin(angle)
    rotation = torch.tensor([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])
    loss, aligned = losses.manhattan_normal_loss(normals, turned @ rotation.T, torch.tensor([True]), 0.9)
    assert aligned.all() and loss == pytest.approx(1 - c, abs=1e-4)
    loss, aligned = losses.manhattan_normal_loss(normals, turned @ rotation.T, torch.tensor([True]), 0.99)
    assert not aligned.any() and loss == 0


def test_total_loss_is_the_visible_weighted_sum():
    config = LossConfig()
    terms = {name: torch.tensor(value) for name, value in
             {"photometric": 0.2, "semantic": 3.0, "smoothness": 0.5, "planar": 0.4, "normal": 0.6}.items()}
    expected = 0.2 + 0.1 * 3.0 + 1e-3 * 0.5 + 0.1 * 0.4 + 0.05 * 0.6
    assert losses.total_loss(terms, config, semantic_active=True) == pytest.approx(expected)
    assert losses.total_loss(terms, config, semantic_active=False) == pytest.approx(expected - 0.3)
    prior = LossConfig(pose_prior=PosePriorConfig(weight=0.5))
    terms["pose_prior"] = torch.tensor(0.8)
    assert losses.total_loss(terms, prior, True, pose_prior_active=True) == pytest.approx(expected + 0.4)
    assert losses.total_loss(terms, prior, True, pose_prior_active=False) == pytest.approx(expected)
    assert losses.total_loss(terms, config, True, pose_prior_active=True) == pytest.approx(expected)  # weight 0


def _pose(angle_deg: float, t) -> torch.Tensor:
    """[4,4] rotation about z by ``angle_deg`` with translation ``t``."""
    a = math.radians(angle_deg)
    T = torch.eye(4, dtype=torch.float64)
    T[:2, :2] = torch.tensor([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    T[:3, 3] = torch.tensor(t, dtype=torch.float64)
    return T


def test_pose_prior_loss_by_hand():
    prior = torch.stack([_pose(0, [0.0, 0.0, 1.0]), _pose(0, [1.0, 0.0, 0.0]), _pose(0, [0.0, 1.0, 0.0])])[None]
    pred = torch.stack([_pose(10, [0.0, 0.0, 0.02]),  # 10 degrees off, same direction (other length)
                        _pose(0, [-0.3, 0.0, 0.0]),  # right rotation, opposite direction
                        _pose(90, [0.0, 0.0, 5.0])])[None]  # not found: ignored
    found = torch.tensor([[True, True, False]])
    # pair 1: |R(10) - I|_F / sqrt(2) = 2 sin(5 deg) = 0.17431; pair 2: 1 - cos(180 deg) = 2
    expected = (2 * math.sin(math.radians(5)) + 2.0) / 2
    # (+ sqrt(1e-8) / sqrt(2) = 7e-5 per pair from the smoothing epsilon)
    assert float(losses.pose_prior_loss(pred, prior, found)) == pytest.approx(expected, abs=1e-4)
    assert float(losses.pose_prior_loss(pred, prior, torch.zeros(1, 3, dtype=torch.bool))) == 0.0
    same = prior.clone().requires_grad_(True)
    value = losses.pose_prior_loss(same, prior, found)
    value.backward()
    assert float(value) < 1e-3 and torch.isfinite(same.grad).all()  # smooth where prediction = estimate


def test_ssim_gradient_matches_finite_differences():
    torch.manual_seed(3)
    x = torch.rand(1, 3, 6, 7, dtype=torch.float64)
    y = torch.rand(1, 3, 6, 7, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda y: losses.ssim(x, y), (y,))


def test_photometric_error_broadcasts_one_target_against_several_sources():
    torch.manual_seed(4)
    sources, target = torch.rand(2, 4, 3, 16, 20), torch.rand(2, 1, 3, 16, 20)
    broadcast = losses.photometric_error(sources, target, 0.85)
    repeated = target.expand(2, 4, 3, 16, 20).reshape(8, 3, 16, 20)
    copied = losses.photometric_error(sources.reshape(8, 3, 16, 20), repeated, 0.85)
    assert broadcast.shape == (2, 4, 1, 16, 20)
    assert torch.allclose(broadcast.reshape(8, 1, 16, 20), copied, atol=1e-6)


def test_compiled_photometric_error_matches_eager():
    """``train.compile_loss`` swaps in ``torch.compile(photometric_error)``: same values and gradients."""
    torch.manual_seed(5)
    sources, target = torch.rand(2, 2, 3, 32, 48, requires_grad=True), torch.rand(2, 1, 3, 32, 48)
    eager = losses.photometric_error(sources, target, 0.85)
    (grad_eager,) = torch.autograd.grad(eager.sum(), sources)
    compiled = torch.compile(losses.photometric_error)(sources, target, 0.85)
    (grad_compiled,) = torch.autograd.grad(compiled.sum(), sources)
    assert torch.allclose(compiled, eager, atol=1e-5)
    assert torch.allclose(grad_compiled, grad_eager, atol=1e-5)

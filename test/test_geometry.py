"""Geometry of view synthesis: warps, projections and pose algebra against analytic answers."""

from __future__ import annotations

import math

import pytest
import torch

from training import geometry

H, W = 64, 96
FX, FY, CX, CY = 80.0, 78.0, 47.5, 31.5


def intrinsics(batch: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    K = torch.eye(4)
    K[0, 0], K[1, 1], K[0, 2], K[1, 2] = FX, FY, CX, CY
    K = K.expand(batch, 4, 4).clone()
    return K, torch.linalg.inv(K)


def translation(tx: float, ty: float, tz: float, batch: int = 1) -> torch.Tensor:
    T = torch.eye(4).repeat(batch, 1, 1)
    T[:, :3, 3] = torch.tensor([tx, ty, tz])
    return T


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(1)


def test_identity_pose_warps_an_image_onto_itself():
    torch.manual_seed(0)
    K, inv_K = intrinsics(2)
    image = torch.rand(2, 3, H, W)
    depth = torch.rand(2, 1, H, W) * 5 + 0.5
    warped = geometry.warp(image, depth, K, inv_K, translation(0, 0, 0, 2))
    # Exact up to float32 rounding of the pixel coordinates (about 2e-5 px at 96 px width).
    assert torch.allclose(warped[..., 1:-1, 1:-1], image[..., 1:-1, 1:-1], atol=1e-4)


def test_backproject_then_project_returns_the_pixel_grid():
    K, inv_K = intrinsics()
    depth = torch.rand(1, 1, H, W) + 1.0
    pixels = geometry.project(geometry.backproject(depth, inv_K), K, translation(0, 0, 0))
    grid = geometry.pixel_grid(H, W).T[:, :2].reshape(1, H, W, 2)
    assert torch.allclose(pixels, grid, atol=1e-4)
    assert torch.allclose(geometry.backproject(depth, inv_K)[:, 2:], depth)


def test_sideways_translation_of_a_fronto_parallel_plane_shifts_pixels_by_f_t_over_z():
    depth_m, tx = 2.0, 0.1  # the source camera sits 10 cm left: target points move +tx in its frame
    K, inv_K = intrinsics()
    depth = torch.full((1, 1, H, W), depth_m)
    pixels = geometry.project(geometry.backproject(depth, inv_K), K, translation(tx, 0, 0))
    shift = FX * tx / depth_m  # 4 px
    grid = geometry.pixel_grid(H, W).T[:, :2].reshape(1, H, W, 2)
    assert torch.allclose(pixels[..., 0], grid[..., 0] + shift, atol=1e-4)
    assert torch.allclose(pixels[..., 1], grid[..., 1], atol=1e-4)
    # A ramp image is reproduced exactly by bilinear sampling: warped(u) = source(u + shift).
    u = torch.arange(W, dtype=torch.float32).view(1, 1, 1, W).expand(1, 3, H, W)
    source = 0.01 * u
    warped = geometry.warp(source, depth, K, inv_K, translation(tx, 0, 0))
    inside = slice(0, W - math.ceil(shift))
    assert torch.allclose(warped[..., inside], 0.01 * (u[..., inside] + shift), atol=1e-4)


def test_forward_translation_scales_pixels_about_the_principal_point():
    depth_m, tz = 3.0, -0.3  # source camera 30 cm ahead: the plane is at 2.7 m in its frame
    K, inv_K = intrinsics()
    depth = torch.full((1, 1, H, W), depth_m)
    pixels = geometry.project(geometry.backproject(depth, inv_K), K, translation(0, 0, tz))
    grid = geometry.pixel_grid(H, W).T[:, :2].reshape(1, H, W, 2)
    factor = depth_m / (depth_m + tz)
    assert torch.allclose(pixels[..., 0], CX + (grid[..., 0] - CX) * factor, atol=1e-3)
    assert torch.allclose(pixels[..., 1], CY + (grid[..., 1] - CY) * factor, atol=1e-3)


def test_projection_broadcasts_one_depth_into_several_sources():
    K, inv_K = intrinsics(2)
    depth = torch.rand(2, 1, H, W) + 1.0
    T = torch.stack([translation(0.1, 0, 0, 2), translation(0, 0.05, 0.1, 2), translation(0, 0, 0, 2)], dim=1)
    points = geometry.backproject(depth, inv_K)
    together = geometry.project(points.unsqueeze(1), K.unsqueeze(1), T)  # [2,3,H,W,2]
    for s in range(3):
        assert torch.allclose(together[:, s], geometry.project(points, K, T[:, s]), atol=1e-5)


def test_results_do_not_depend_on_the_batch_size():
    torch.manual_seed(1)
    K, inv_K = intrinsics(3)
    image, depth = torch.rand(3, 3, H, W), torch.rand(3, 1, H, W) + 1.0
    T = geometry.pose_vector_to_matrix(torch.randn(3, 3) * 0.05, torch.randn(3, 3) * 0.05)
    batched = geometry.warp(image, depth, K, inv_K, T)
    for i in range(3):
        single = geometry.warp(image[i:i + 1], depth[i:i + 1], K[i:i + 1], inv_K[i:i + 1], T[i:i + 1])
        assert torch.allclose(batched[i:i + 1], single, atol=1e-6)


def test_rodrigues_matches_a_known_rotation():
    R = geometry.axis_angle_to_matrix(torch.tensor([[0.0, 0.0, math.pi / 2]]))
    expected = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    assert torch.allclose(R[0], expected, atol=1e-6)


def test_pose_vector_matrix_round_trip():
    torch.manual_seed(2)
    axis_angle = torch.randn(16, 3)
    axis_angle = axis_angle / axis_angle.norm(dim=1, keepdim=True) * torch.rand(16, 1) * 3.0  # angles < pi
    axis_angle[0] = 0.0
    axis_angle[1] = torch.tensor([1e-6, -2e-6, 0.0])
    translation_m = torch.randn(16, 3)
    T = geometry.pose_vector_to_matrix(axis_angle, translation_m)
    R = T[:, :3, :3]
    assert torch.allclose(R @ R.transpose(1, 2), torch.eye(3).expand(16, 3, 3), atol=1e-5)
    assert torch.allclose(torch.linalg.det(R), torch.ones(16), atol=1e-5)
    back_rotation, back_translation = geometry.matrix_to_pose_vector(T)
    assert torch.allclose(back_rotation, axis_angle, atol=1e-4)
    assert torch.equal(back_translation, translation_m)


def test_compose_and_invert():
    torch.manual_seed(3)
    T_b_a = geometry.pose_vector_to_matrix(torch.randn(4, 3) * 0.5, torch.randn(4, 3))
    T_c_b = geometry.pose_vector_to_matrix(torch.randn(4, 3) * 0.5, torch.randn(4, 3))
    eye = torch.eye(4).expand(4, 4, 4)
    assert torch.allclose(geometry.compose(T_b_a, geometry.invert(T_b_a)), eye, atol=1e-5)
    assert torch.allclose(geometry.invert(T_b_a), torch.linalg.inv(T_b_a), atol=1e-5)
    point_a = torch.tensor([0.3, -0.2, 2.0, 1.0]).expand(4, 4).unsqueeze(-1)
    T_c_a = geometry.compose(T_c_b, T_b_a)
    assert torch.allclose(T_c_a @ point_a, T_c_b @ (T_b_a @ point_a), atol=1e-5)
    assert torch.allclose(geometry.invert(T_c_a), geometry.compose(geometry.invert(T_b_a), geometry.invert(T_c_b)),
                          atol=1e-5)


def test_rotation_gradient_is_finite_at_identity():
    axis_angle = torch.zeros(2, 3, requires_grad=True)
    T = geometry.pose_vector_to_matrix(axis_angle, torch.zeros(2, 3))
    (T[:, :3, :3] * torch.randn(2, 3, 3)).sum().backward()
    assert torch.isfinite(axis_angle.grad).all()


def test_with_rotation_takes_the_other_rotation_only_where_asked():
    torch.manual_seed(4)
    T = geometry.pose_vector_to_matrix(torch.randn(2, 3) * 0.3, torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]))
    T.requires_grad_(True)
    T_rotation = geometry.pose_vector_to_matrix(torch.randn(2, 3) * 0.3, torch.full((2, 3), 9.0))
    mixed = geometry.with_rotation(T, T_rotation, torch.tensor([True, False]))
    assert torch.equal(mixed[0, :3, :3], T_rotation[0, :3, :3]) and torch.equal(mixed[1, :3, :3], T[1, :3, :3])
    assert torch.equal(mixed[:, :3, 3], T[:, :3, 3])  # translations always T's
    assert torch.equal(mixed[:, 3], torch.tensor([[0.0, 0.0, 0.0, 1.0]] * 2))
    mixed.sum().backward()
    assert torch.equal(T.grad[0, :3, :3], torch.zeros(3, 3)) and torch.equal(T.grad[1, :3, :3], torch.ones(3, 3))

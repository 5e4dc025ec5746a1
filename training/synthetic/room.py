"""A small numpy ray caster for box-shaped indoor rooms with exact depth and NYU-40 labels.

A scene is a room (the inside of an axis-aligned box: floor, walls, ceiling) holding axis-aligned
boxes (furniture, small objects, pictures and doors as thin boxes on walls). World frame: x right,
y down (gravity), z forward; the floor is the plane y = ``floor_y``. The camera uses the optical
convention of ROS (x right, y down, z forward), so depth is the camera-frame z of each hit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gam_depth_ros.classes import NYU40_CLASS_NAMES

LABEL = {name: index for index, name in enumerate(NYU40_CLASS_NAMES)}


@dataclass(frozen=True)
class Box:
    """Axis-aligned box [lo, hi] in world coordinates (metres) with a label and a base colour."""

    lo: tuple[float, float, float]
    hi: tuple[float, float, float]
    label: int
    color: tuple[float, float, float]  # RGB in [0, 1]
    texture: str = "flat"  # "flat", "noise", "stripes" or "checker"


@dataclass(frozen=True)
class Room:
    """Room interior [lo, hi] (x, y, z); y = hi[1] is the floor, y = lo[1] the ceiling."""

    lo: tuple[float, float, float]
    hi: tuple[float, float, float]
    wall_color: tuple[float, float, float]
    floor_color: tuple[float, float, float]
    ceiling_color: tuple[float, float, float]
    floor_texture: str = "stripes"
    boxes: tuple[Box, ...] = field(default_factory=tuple)


@dataclass
class Rendering:
    """One rendered view."""

    image: np.ndarray  # [H, W, 3] uint8 RGB
    depth: np.ndarray  # [H, W] float32 metres (camera z)
    labels: np.ndarray  # [H, W] uint8 NYU-40 ids


def random_room(rng: np.random.Generator, n_furniture: int = 5) -> Room:
    """A random room of 3-7 m by 3-8 m, 2.4-3.2 m high, with furniture on the floor."""
    width, length, height = rng.uniform(3, 7), rng.uniform(3, 8), rng.uniform(2.4, 3.2)
    floor_y = 1.2  # camera height above the floor when the camera sits at y = 0
    lo = (-width / 2, floor_y - height, -1.0)
    hi = (width / 2, floor_y, length - 1.0)
    pastel = lambda: tuple(rng.uniform(0.55, 0.95, 3))  # noqa: E731 - tiny local helper
    boxes = []
    kinds = [("table", 0.7, "noise"), ("cabinet", 1.0, "flat"), ("bed", 0.5, "noise"), ("chair", 0.9, "flat"),
             ("bookshelf", 1.8, "stripes"), ("box", 0.4, "checker"), ("sofa", 0.8, "noise")]  # fmt: skip
    for _ in range(n_furniture):
        name, top, texture = kinds[rng.integers(len(kinds))]
        size_x, size_z = rng.uniform(0.4, 1.4), rng.uniform(0.4, 1.2)
        x0 = rng.uniform(lo[0], hi[0] - size_x)
        z0 = rng.uniform(1.0, hi[2] - size_z)
        boxes.append(Box((x0, floor_y - top * rng.uniform(0.8, 1.2), z0), (x0 + size_x, floor_y, z0 + size_z),
                         LABEL[name], tuple(rng.uniform(0.15, 0.8, 3)), texture))
    # A picture and a door on the far wall (thin boxes), for texture on large flat walls.
    px = rng.uniform(lo[0] + 0.2, hi[0] - 1.2)
    boxes.append(Box((px, floor_y - 2.0, hi[2] - 0.02), (px + 1.0, floor_y - 1.3, hi[2]), LABEL["picture"],
                     tuple(rng.uniform(0.1, 0.9, 3)), "checker"))
    return Room(lo, hi, pastel(), tuple(rng.uniform(0.3, 0.6, 3)), pastel(), "stripes", tuple(boxes))


def intrinsics(width: int, height: int, hfov_deg: float = 60.0) -> np.ndarray:
    """Pinhole K [3, 3] with square pixels and the principal point at the centre."""
    f = 0.5 * width / np.tan(np.radians(hfov_deg) / 2)
    return np.array([[f, 0, (width - 1) / 2], [0, f, (height - 1) / 2], [0, 0, 1]], dtype=np.float64)


def render(room: Room, K: np.ndarray, R_world_cam: np.ndarray, t_world_cam: np.ndarray,
           width: int, height: int) -> Rendering:
    """Ray-cast the room from a camera.

    Parameters
    ----------
    K:
        [3, 3] intrinsics.
    R_world_cam, t_world_cam:
        Camera pose: x_world = R_world_cam @ x_cam + t_world_cam ([3, 3], [3]).
    """
    u, v = np.meshgrid(np.arange(width), np.arange(height))
    rays_cam = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u, float)], -1)
    rays = rays_cam.reshape(-1, 3) @ R_world_cam.T  # world directions; t along them is camera z
    origin = np.asarray(t_world_cam, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / rays
    # Room: the ray leaves the box at its exit distance; the exit axis tells floor/ceiling/wall.
    t1 = (np.asarray(room.lo) - origin) * inv
    t2 = (np.asarray(room.hi) - origin) * inv
    t_exit_axes = np.maximum(t1, t2)
    axis = np.argmin(t_exit_axes, axis=1)
    depth = t_exit_axes[np.arange(len(rays)), axis]
    labels = np.full(len(rays), LABEL["wall"], np.uint8)
    going_down = rays[:, 1] > 0
    labels[(axis == 1) & going_down] = LABEL["floor"]
    labels[(axis == 1) & ~going_down] = LABEL["ceiling"]
    normal_axis = axis.copy()
    box_index = np.full(len(rays), -1)
    for index, box in enumerate(room.boxes):
        b1 = (np.asarray(box.lo) - origin) * inv
        b2 = (np.asarray(box.hi) - origin) * inv
        t_near = np.nanmax(np.minimum(b1, b2), axis=1)
        t_far = np.nanmin(np.maximum(b1, b2), axis=1)
        hit = (t_near <= t_far) & (t_near > 1e-6) & (t_near < depth)
        depth[hit] = t_near[hit]
        labels[hit] = box.label
        normal_axis[hit] = np.argmax(np.minimum(b1, b2), axis=1)[hit]
        box_index[hit] = index
    points = origin + rays * depth[:, None]
    colors = _shade(room, points, normal_axis, labels, box_index, depth)
    return Rendering(
        image=(np.clip(colors, 0, 1) * 255 + 0.5).astype(np.uint8).reshape(height, width, 3),
        depth=depth.astype(np.float32).reshape(height, width),
        labels=labels.reshape(height, width),
    )


def _texture(kind: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Brightness factor around 1 from surface coordinates (a, b) in metres."""
    if kind == "stripes":
        return 0.85 + 0.15 * np.sin(a * 25.0) * np.sin(a * 3.1 + b * 0.7)
    if kind == "checker":
        return np.where((np.floor(a * 6) + np.floor(b * 6)) % 2 == 0, 1.15, 0.8)
    if kind == "noise":
        return 0.9 + 0.1 * np.sin(a * 37.0 + 3 * np.sin(b * 11.0)) * np.cos(b * 23.0)
    return np.ones_like(a)


def _shade(room: Room, points: np.ndarray, normal_axis: np.ndarray, labels: np.ndarray,
           box_index: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """Base colour x texture x mild directional shading x distance fall-off, per pixel [N, 3]."""
    colors = np.empty((len(points), 3))
    factor = np.ones(len(points))
    floor = labels == LABEL["floor"]
    colors[:] = room.wall_color
    colors[floor] = room.floor_color
    colors[labels == LABEL["ceiling"]] = room.ceiling_color
    factor[floor] = _texture(room.floor_texture, points[floor, 0], points[floor, 2])
    for index, box in enumerate(room.boxes):
        sel = box_index == index
        colors[sel] = box.color
        # Texture in the two coordinates spanning the face the ray hit.
        axis = normal_axis[sel]
        a = np.where(axis == 0, points[sel, 2], points[sel, 0])
        b = np.where(axis == 1, points[sel, 2], points[sel, 1])
        factor[sel] = _texture(box.texture, a, b)
    light = np.array([0.9, 1.0, 0.8])[normal_axis]  # each face orientation lit differently
    falloff = 1.0 / (1.0 + 0.04 * depth)
    return colors * (factor * light * falloff)[:, None]


def look_at_pose(position: np.ndarray, yaw: float, pitch: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Camera pose at ``position`` turned by ``yaw`` (about world y) and ``pitch`` (about camera x)."""
    cy, sy, cp, sp = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch)
    R_yaw = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    R_pitch = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    return R_yaw @ R_pitch, np.asarray(position, dtype=np.float64)

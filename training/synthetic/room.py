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
from training.synthetic.textures import texture

LABEL = {name: index for index, name in enumerate(NYU40_CLASS_NAMES)}


@dataclass(frozen=True)
class Box:
    """Axis-aligned box [lo, hi] in world coordinates (metres) with a label and a base colour."""

    lo: tuple[float, float, float]
    hi: tuple[float, float, float]
    label: int
    color: tuple[float, float, float]  # RGB in [0, 1]
    texture: str = "flat"  # a texture of :mod:`.textures`
    texture_scale: float = 1.0  # stretches the pattern (rich textures only)
    texture_phase: float = 0.0  # shifts it, so two objects of one texture differ


@dataclass(frozen=True)
class Light:
    """A point light: Lambertian shading that falls off over ``reach`` metres (no shadows)."""

    position: tuple[float, float, float]
    intensity: float
    reach: float
    tint: tuple[float, float, float] = (1.0, 1.0, 1.0)


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
    wall_texture: str = "flat"
    wall_texture_scale: float = 1.0
    floor_texture_scale: float = 1.0
    lights: tuple[Light, ...] = ()  # none: the plain style's fixed per-orientation shading
    ambient: float = 0.35  # share of light that reaches every surface when there are lights


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
        name, top, pattern = kinds[rng.integers(len(kinds))]
        size_x, size_z = rng.uniform(0.4, 1.4), rng.uniform(0.4, 1.2)
        x0 = rng.uniform(lo[0], hi[0] - size_x)
        z0 = rng.uniform(1.0, hi[2] - size_z)
        boxes.append(Box((x0, floor_y - top * rng.uniform(0.8, 1.2), z0), (x0 + size_x, floor_y, z0 + size_z),
                         LABEL[name], tuple(rng.uniform(0.15, 0.8, 3)), pattern))
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
           width: int, height: int, supersample: int = 1) -> Rendering:
    """Ray-cast the room from a camera.

    Parameters
    ----------
    K:
        [3, 3] intrinsics.
    R_world_cam, t_world_cam:
        Camera pose: x_world = R_world_cam @ x_cam + t_world_cam ([3, 3], [3]).
    supersample:
        ``s``: the colour of each pixel is the mean of ``s x s`` rays spread evenly over the pixel
        (a box filter, like a camera's pixel integrating light), so textures finer than a pixel
        blur instead of aliasing into noise that differs from view to view. Depth and labels stay
        those of the ray through the pixel centre (exact, what the intrinsics say).
    """
    if supersample < 1:
        raise ValueError(f"supersample must be >= 1, got {supersample}")
    origin = np.asarray(t_world_cam, dtype=np.float64)
    centre = _cast(room, K, R_world_cam, origin, width, height, 0.0, 0.0)
    if supersample == 1:
        colors = _shade(room, centre)
    else:
        steps = (np.arange(supersample) + 0.5) / supersample - 0.5
        colors = np.zeros((width * height, 3))
        for dv in steps:
            for du in steps:
                hits = centre if du == 0 and dv == 0 else _cast(room, K, R_world_cam, origin, width, height, du, dv)
                colors += np.clip(_shade(room, hits), 0, 1)
        colors /= supersample**2
    return Rendering(
        image=(np.clip(colors, 0, 1) * 255 + 0.5).astype(np.uint8).reshape(height, width, 3),
        depth=centre.depth.astype(np.float32).reshape(height, width),
        labels=centre.labels.reshape(height, width),
    )


@dataclass
class _Hits:
    """What one ray per pixel hit (row-major pixels, N = H x W)."""

    depth: np.ndarray  # [N] camera z
    labels: np.ndarray  # [N] uint8
    normal_axis: np.ndarray  # [N] world axis of the face normal (0 x, 1 y, 2 z)
    normal_sign: np.ndarray  # [N] +1 / -1 along that axis
    box_index: np.ndarray  # [N] index into room.boxes, -1 for the room's own surfaces
    points: np.ndarray  # [N, 3] world hit points


def _cast(room: Room, K: np.ndarray, R_world_cam: np.ndarray, origin: np.ndarray, width: int, height: int,
          du: float, dv: float) -> _Hits:
    """Cast the ray through pixel position (u + du, v + dv) of every pixel (u, v)."""
    u, v = np.meshgrid(np.arange(width) + du, np.arange(height) + dv)
    rays_cam = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u, float)], -1)
    rays = rays_cam.reshape(-1, 3) @ R_world_cam.T  # world directions; t along them is camera z
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
    all_rays = np.arange(len(rays))
    for index, box in enumerate(room.boxes):
        sel = _rays_near_box(box, K, R_world_cam, origin, width, height)
        if sel is None:
            continue
        sel = all_rays if isinstance(sel, slice) else sel
        b1 = (np.asarray(box.lo) - origin) * inv[sel]
        b2 = (np.asarray(box.hi) - origin) * inv[sel]
        near_axes, far_axes = np.minimum(b1, b2), np.maximum(b1, b2)
        # fmax/fmin skip the NaN of a ray parallel to a face plane through the camera, like nanmax/nanmin,
        # without their copies (the same values, half the generator's time)
        t_near = np.fmax(np.fmax(near_axes[:, 0], near_axes[:, 1]), near_axes[:, 2])
        t_far = np.fmin(np.fmin(far_axes[:, 0], far_axes[:, 1]), far_axes[:, 2])
        hit_local = (t_near <= t_far) & (t_near > 1e-6) & (t_near < depth[sel])
        hit = sel[hit_local]
        depth[hit] = t_near[hit_local]
        labels[hit] = box.label
        normal_axis[hit] = np.argmax(near_axes, axis=1)[hit_local]
        box_index[hit] = index
    points = origin + rays * depth[:, None]
    # Every visible face looks back at the camera: its normal opposes the ray along the hit axis.
    normal_sign = -np.sign(rays[np.arange(len(rays)), normal_axis])
    return _Hits(depth, labels, normal_axis, normal_sign, box_index, points)


def _rays_near_box(box: Box, K: np.ndarray, R_world_cam: np.ndarray, origin: np.ndarray, width: int,
                   height: int) -> np.ndarray | slice | None:
    """Indices of the rays that can hit ``box`` (row-major pixels), ``slice`` for all, None for none.

    A box wholly in front of the camera projects inside the bounding rectangle of its eight projected
    corners (it is convex), so only those pixels (plus one pixel of margin) are tested: thin legs and
    small objects then cost a few hundred rays instead of the whole image. Exact, not approximate.
    """
    corners = np.array([[x, y, z] for x in (box.lo[0], box.hi[0]) for y in (box.lo[1], box.hi[1])
                        for z in (box.lo[2], box.hi[2])])
    cam = (corners - origin) @ R_world_cam  # camera-frame corners [8, 3]
    if (cam[:, 2] <= 1e-6).all():
        return None  # behind the camera
    if (cam[:, 2] < 0.05).any():
        return slice(None)  # straddles the camera plane: the projection is unbounded
    u = K[0, 0] * cam[:, 0] / cam[:, 2] + K[0, 2]
    v = K[1, 1] * cam[:, 1] / cam[:, 2] + K[1, 2]
    u0, u1 = max(int(np.floor(u.min())) - 1, 0), min(int(np.ceil(u.max())) + 2, width)
    v0, v1 = max(int(np.floor(v.min())) - 1, 0), min(int(np.ceil(v.max())) + 2, height)
    if u0 >= u1 or v0 >= v1:
        return None  # outside the image
    return (np.arange(v0, v1)[:, None] * width + np.arange(u0, u1)[None, :]).reshape(-1)


def _shade(room: Room, hits: _Hits) -> np.ndarray:
    """Base colour x texture x lighting, per pixel [N, 3].

    Without lights (plain style): a mild fixed shading per face orientation and a distance fall-off.
    With lights: ambient + Lambertian point lights, which depend on the surface point only, so the
    shading is the same from every view (what view synthesis assumes).
    """
    points, normal_axis, labels, box_index = hits.points, hits.normal_axis, hits.labels, hits.box_index
    colors = np.empty((len(points), 3))
    factor = np.ones(len(points))
    floor = labels == LABEL["floor"]
    walls = (labels == LABEL["wall"]) & (box_index < 0)
    colors[:] = room.wall_color
    colors[floor] = room.floor_color
    colors[labels == LABEL["ceiling"]] = room.ceiling_color
    factor[floor] = texture(room.floor_texture, points[floor, 0], points[floor, 2], room.floor_texture_scale)
    if room.wall_texture != "flat":
        axis = normal_axis[walls]
        a = np.where(axis == 0, points[walls, 2], points[walls, 0])
        factor[walls] = texture(room.wall_texture, a, points[walls, 1], room.wall_texture_scale)
    hit_pixels = np.flatnonzero(box_index >= 0)
    order = hit_pixels[np.argsort(box_index[hit_pixels], kind="stable")]
    boxes_hit, starts = np.unique(box_index[order], return_index=True)
    for index, sel in zip(boxes_hit, np.split(order, starts[1:])):
        box = room.boxes[index]
        colors[sel] = box.color
        # Texture in the two coordinates spanning the face the ray hit.
        axis = normal_axis[sel]
        a = np.where(axis == 0, points[sel, 2], points[sel, 0])
        b = np.where(axis == 1, points[sel, 2], points[sel, 1])
        factor[sel] = texture(box.texture, a, b, box.texture_scale, box.texture_phase)
    if not room.lights:
        light = np.array([0.9, 1.0, 0.8])[normal_axis]  # each face orientation lit differently
        falloff = 1.0 / (1.0 + 0.04 * hits.depth)
        return colors * (factor * light * falloff)[:, None]
    normals = np.zeros_like(points)
    normals[np.arange(len(points)), normal_axis] = hits.normal_sign
    lit = np.full((len(points), 3), room.ambient)
    for lamp in room.lights:
        to_light = np.asarray(lamp.position) - points
        distance = np.linalg.norm(to_light, axis=1) + 1e-9
        lambert = np.clip(np.sum(normals * to_light, axis=1) / distance, 0.0, 1.0)
        strength = lamp.intensity * lambert / (1.0 + (distance / lamp.reach) ** 2)
        lit += strength[:, None] * np.asarray(lamp.tint)
    # Soft saturation (like a camera's tone curve): bright lamps compress contrast instead of
    # clipping textures to white.
    return 1.0 - np.exp(-1.6 * colors * factor[:, None] * lit)


def look_at_pose(position: np.ndarray, yaw: float, pitch: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Camera pose at ``position`` turned by ``yaw`` (about world y) and ``pitch`` (about camera x)."""
    cy, sy, cp, sp = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch)
    R_yaw = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    R_pitch = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    return R_yaw @ R_pitch, np.asarray(position, dtype=np.float64)

"""Camera trajectories through a :class:`~training.synthetic.scene.Scene` at a fixed frame rate (30 Hz unless
``fps`` says otherwise; speeds and turn rates are per second).

Two kinds of motion, both collision-free (the camera keeps ``MARGIN`` from walls and furniture
footprints) and deterministic by the random generator passed in:

- ``robot``: a wheeled robot with a camera at a fixed ``camera_height`` above the floor and a fixed
  downward pitch. It drives straight between random free waypoints (accelerating to 0.2-0.6 m/s and
  braking) and turns in place towards the next one (up to ~40 deg/s): pure rotations included.
- ``handheld``: a person carrying the camera: a smooth spline through free waypoints at a varying
  speed (0.15-0.8 m/s), the height drifting around 1.3-1.6 m, the view wandering around the walking
  direction with small pitch and roll wobble, and pauses where only the view turns (pure rotation).

A pose is world-from-camera ``(R [3,3], t [3])`` with the ROS optical axes (x right, y down, z
forward) of :mod:`.room`: ``x_world = R @ x_cam + t``.
"""

from __future__ import annotations

import numpy as np

from training.synthetic.scene import FLOOR_Y, Scene

MARGIN = 0.35  # metres between the camera and walls / furniture footprints
FPS = 30.0
ROBOT_PITCH = -0.2  # radians: the robot camera looks 11.5 degrees down


def rotation(yaw: float, pitch: float = 0.0, roll: float = 0.0) -> np.ndarray:
    """World-from-camera rotation: yaw about world y (down), then pitch about camera x, roll about z.

    Negative pitch looks down (the camera's y axis points down, so its z axis tilts towards +y).
    """
    cy, sy, cp, sp, cr, sr = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch), np.cos(roll), np.sin(roll)
    R_yaw = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    R_pitch = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    R_roll = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    return R_yaw @ R_pitch @ R_roll


class NoFreeFloorError(RuntimeError):
    """The room's furniture leaves no floor position with the camera's clearance (a cluttered narrow
    room); :func:`training.synthetic.generate.render_sequence` redraws such a room."""


def _free_point(scene: Scene, rng: np.random.Generator, margin: float = MARGIN) -> np.ndarray:
    """A floor point (x, z) at least ``margin`` from walls and footprints (``MARGIN`` where the room
    has no such point: a corridor narrower than twice the margin)."""
    lo, hi = scene.room.lo, scene.room.hi
    for clearance in (margin, MARGIN) if margin > MARGIN else (margin,):
        for _ in range(500):
            point = np.array([rng.uniform(lo[0], hi[0]), rng.uniform(lo[2], hi[2])])
            if scene.is_free(point[0], point[1], clearance):
                return point
    raise NoFreeFloorError(f"no free floor position {MARGIN} m from walls and furniture in the scene")


def _segment_free(scene: Scene, a: np.ndarray, b: np.ndarray) -> bool:
    samples = max(2, int(np.linalg.norm(b - a) / 0.05))
    return all(scene.is_free(*(a + (b - a) * s), MARGIN) for s in np.linspace(0, 1, samples))


def _waypoints(scene: Scene, rng: np.random.Generator, count: int, margin: float = MARGIN) -> list[np.ndarray]:
    """Free floor points (x, z), ``margin`` from walls and footprints, joined by free straight
    segments of at least 0.5 m."""
    points = [_free_point(scene, rng, margin)]
    while len(points) < count:
        for _ in range(200):
            candidate = _free_point(scene, rng, margin)
            if np.linalg.norm(candidate - points[-1]) > 0.5 and _segment_free(scene, points[-1], candidate):
                points.append(candidate)
                break
        else:  # boxed in: turn around on the spot
            points.append(points[-1] + rng.normal(0, 1e-3, 2))
    return points


def _heading(v: np.ndarray) -> float:
    """Yaw (about world y) that points the camera's z axis along the floor direction v = (dx, dz)."""
    return float(np.arctan2(v[0], v[1]))


def robot_trajectory(scene: Scene, frames: int, rng: np.random.Generator, camera_height: float = 0.8,
                     pitch: float = ROBOT_PITCH, fps: float = FPS,
                     waypoint_margin: float = MARGIN,
                     start_turn_deg: float = 180.0) -> list[tuple[np.ndarray, np.ndarray]]:
    """``frames`` poses of a robot camera at ``camera_height`` m above the floor, ``fps`` per second
    (see the module docstring); it stops and turns at waypoints ``waypoint_margin`` from obstacles.
    It starts within ``start_turn_deg`` of the heading of its first leg (180: any heading)."""
    y = FLOOR_Y - camera_height
    dt = 1.0 / fps
    points = _waypoints(scene, rng, 2, waypoint_margin)
    position = points[0].copy()
    if start_turn_deg >= 180.0:  # any heading (the draw every earlier data set was made with)
        yaw = float(rng.uniform(-np.pi, np.pi))
    else:
        limit = np.radians(start_turn_deg)
        yaw = _heading(points[1] - points[0]) + float(rng.uniform(-limit, limit))
    poses: list[tuple[np.ndarray, np.ndarray]] = []
    target_index = 1
    v_max, w_max = rng.uniform(0.2, 0.6), np.radians(rng.uniform(20, 40))
    speed = 0.0
    while len(poses) < frames:
        poses.append((rotation(yaw, pitch), np.array([position[0], y, position[1]])))
        goal = points[target_index]
        offset = goal - position
        distance = float(np.linalg.norm(offset))
        if distance < 0.05:  # reached: plan the next leg (a new speed for it, too)
            points.append(_waypoints_from(scene, rng, points[-1], waypoint_margin))
            target_index += 1
            v_max = rng.uniform(0.2, 0.6)
            speed = 0.0
            continue
        turn = (_heading(offset) - yaw + np.pi) % (2 * np.pi) - np.pi
        if abs(turn) > np.radians(2):  # turn in place first
            yaw += float(np.clip(turn, -w_max * dt, w_max * dt))
            speed = 0.0
            continue
        yaw += turn
        braking = np.sqrt(2 * 0.5 * distance)  # decelerate at 0.5 m/s^2 to stop on the waypoint
        speed = min(v_max, speed + 0.5 * dt, braking)
        position = position + offset / distance * min(speed * dt, distance)
    return poses


def _waypoints_from(scene: Scene, rng: np.random.Generator, start: np.ndarray, margin: float = MARGIN) -> np.ndarray:
    for _ in range(300):
        candidate = _free_point(scene, rng, margin)
        if np.linalg.norm(candidate - start) > 0.5 and _segment_free(scene, start, candidate):
            return candidate
    return start + rng.normal(0, 1e-3, 2)


def _smooth_noise(rng: np.random.Generator, frames: int, amplitude: float, period_s: float,
                  fps: float = FPS) -> np.ndarray:
    """A smooth random signal [frames] at ``fps``: a sum of three sinusoids with random phases near ``period_s``."""
    t = np.arange(frames) / fps
    out = np.zeros(frames)
    for _ in range(3):
        period = period_s * rng.uniform(0.6, 1.6)
        out += np.sin(2 * np.pi * t / period + rng.uniform(0, 2 * np.pi))
    return amplitude * out / 3


def _catmull_rom(points: np.ndarray, samples_per_segment: int = 50) -> np.ndarray:
    """Dense points [N,2] of a Catmull-Rom spline through ``points`` [P,2]."""
    padded = np.vstack([points[:1], points, points[-1:]])
    out = []
    for i in range(1, len(padded) - 2):
        p0, p1, p2, p3 = padded[i - 1], padded[i], padded[i + 1], padded[i + 2]
        for s in np.linspace(0, 1, samples_per_segment, endpoint=False):
            out.append(0.5 * (2 * p1 + (-p0 + p2) * s + (2 * p0 - 5 * p1 + 4 * p2 - p3) * s**2
                              + (-p0 + 3 * p1 - 3 * p2 + p3) * s**3))
    out.append(points[-1])
    return np.asarray(out)


def handheld_trajectory(scene: Scene, frames: int, rng: np.random.Generator, fps: float = FPS,
                        waypoint_margin: float = MARGIN) -> list[tuple[np.ndarray, np.ndarray]]:
    """``frames`` poses of a hand-held camera, ``fps`` per second, through waypoints
    ``waypoint_margin`` from obstacles (see the module docstring)."""
    path = None
    for _ in range(20):  # a spline through free waypoints may cut a corner: keep only free ones
        candidate = _catmull_rom(np.asarray(_waypoints(scene, rng, 8, waypoint_margin)))
        if all(scene.is_free(x, z, MARGIN * 0.7) for x, z in candidate):
            path = candidate
            break
    if path is None:  # polyline: segments are free
        path = _catmull_rom(np.asarray(_waypoints(scene, rng, 8, waypoint_margin)), 2)
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(path, axis=0), axis=1))])
    speed = np.clip(0.45 + _smooth_noise(rng, frames, 0.5, 4.0, fps), 0.15, 0.8)
    paused = _smooth_noise(rng, frames, 1.0, 6.0, fps) > 0.55  # pauses: the view turns, the camera stays
    speed[paused] = 0.0
    s = np.minimum(np.cumsum(speed) / fps, arc[-1] - 1e-6)
    xz = np.stack([np.interp(s, arc, path[:, 0]), np.interp(s, arc, path[:, 1])], axis=1)
    ahead = np.stack([np.interp(np.minimum(s + 0.3, arc[-1]), arc, path[:, k]) for k in (0, 1)], axis=1)
    heading = np.array([_heading(a - p) if np.linalg.norm(a - p) > 1e-3 else np.nan for a, p in zip(ahead, xz)])
    heading = _fill_nan(heading)
    heading = np.unwrap(heading)
    look = _smooth_noise(rng, frames, 0.5, 5.0, fps) + np.where(paused, _smooth_noise(rng, frames, 1.2, 3.0, fps), 0.0)
    height = 1.45 + _smooth_noise(rng, frames, 0.12, 8.0, fps)
    pitch = -0.15 + _smooth_noise(rng, frames, 0.1, 3.0, fps)
    roll = _smooth_noise(rng, frames, 0.04, 2.0, fps)
    return [(rotation(heading[i] + look[i], pitch[i], roll[i]), np.array([xz[i, 0], FLOOR_Y - height[i], xz[i, 1]]))
            for i in range(frames)]


def _fill_nan(values: np.ndarray) -> np.ndarray:
    good = np.flatnonzero(~np.isnan(values))
    if len(good) == 0:
        return np.zeros_like(values)
    return np.interp(np.arange(len(values)), good, values[good])


def trajectory(scene: Scene, frames: int, rng: np.random.Generator, motion: str, camera_height: float = 0.8,
               pitch: float = ROBOT_PITCH, fps: float = FPS,
               waypoint_margin: float = MARGIN,
               robot_start_turn_deg: float = 180.0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Poses of ``motion`` ``"robot"`` (at ``camera_height``, ``pitch``) or ``"handheld"``, ``fps`` per
    second, through waypoints at least ``waypoint_margin`` m from walls and furniture footprints (the
    path between them keeps ``MARGIN``; a larger margin keeps the camera from stopping face to a wall).
    ``robot_start_turn_deg``: see :func:`robot_trajectory`."""
    if motion == "robot":
        return robot_trajectory(scene, frames, rng, camera_height, pitch, fps, waypoint_margin, robot_start_turn_deg)
    if motion == "handheld":
        return handheld_trajectory(scene, frames, rng, fps, waypoint_margin)
    raise ValueError(f"motion must be 'robot' or 'handheld', got {motion!r}")

"""Camera poses that come with the data (wheel odometry, a motion-capture log, the generator).

``poses.txt`` of a sequence folder: one line per frame, in frame order, ``#`` comments allowed::

    stamp tx ty tz qx qy qz qw

the world-from-camera pose of each frame (``x_world = R @ x_cam + t``, metres, camera optical axes:
x right, y down, z forward; quaternion x, y, z, w), the layout ``gam-depth-synth`` writes and the
TUM RGB-D format uses. The stamp is not interpreted; the line order must match the frames.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from training.data.errors import DataError


def quaternion_matrix(q: np.ndarray) -> np.ndarray:
    """``[3,3]`` rotation of a quaternion ``(x, y, z, w)`` (normalised first)."""
    x, y, z, w = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def matrix_quaternion(R: np.ndarray) -> np.ndarray:
    """Unit quaternion ``(x, y, z, w)`` of a rotation matrix (w >= 0)."""
    w = np.sqrt(max(0.0, 1.0 + np.trace(R))) / 2
    x = np.copysign(np.sqrt(max(0.0, 1 + R[0, 0] - R[1, 1] - R[2, 2])) / 2, R[2, 1] - R[1, 2])
    y = np.copysign(np.sqrt(max(0.0, 1 - R[0, 0] + R[1, 1] - R[2, 2])) / 2, R[0, 2] - R[2, 0])
    z = np.copysign(np.sqrt(max(0.0, 1 - R[0, 0] - R[1, 1] + R[2, 2])) / 2, R[1, 0] - R[0, 1])
    q = np.array([x, y, z, w])
    return q / np.linalg.norm(q)


def homogeneous(R: np.ndarray, t) -> np.ndarray:
    """``[4,4]`` homogeneous transform of a rotation ``[3,3]`` and a translation ``[3]``."""
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = R, t
    return T


def pose_matrix(translation, quaternion) -> np.ndarray:
    """``[4,4]`` homogeneous transform of a translation ``(x, y, z)`` and a quaternion ``(x, y, z, w)``."""
    return homogeneous(quaternion_matrix(np.asarray(quaternion, dtype=np.float64)), translation)


def write_pose_file(path: str | Path, stamps_ns, world_from_camera) -> Path:
    """Write ``poses.txt`` (module docstring) for ``[N]`` stamps and ``[N,4,4]`` world-from-camera poses."""
    lines = [f"{int(stamp)} " + " ".join(f"{v:.6f}" for v in (*T[:3, 3], *matrix_quaternion(T[:3, :3])))
             for stamp, T in zip(stamps_ns, world_from_camera)]
    path = Path(path)
    path.write_text("# stamp_ns tx ty tz qx qy qz qw (world-from-camera)\n" + "\n".join(lines) + "\n")
    return path


def interpolate_poses(stamps_ns: np.ndarray, poses: np.ndarray, query_ns: np.ndarray, max_gap_ns: int) -> np.ndarray:
    """Poses ``[Q,4,4]`` at ``query_ns`` from time-sorted ``poses [N,4,4]`` at ``stamps_ns [N]``.

    Translation is interpolated linearly and rotation along the shortest arc (slerp) between the two
    poses around each query; a query outside the stamps' span, or between two poses more than
    ``max_gap_ns`` apart, gets NaN (exact stamp matches always count).
    """
    stamps_ns = np.asarray(stamps_ns, dtype=np.int64)
    out = np.full((len(query_ns), 4, 4), np.nan)
    for k, query in enumerate(np.asarray(query_ns, dtype=np.int64)):
        i = int(np.searchsorted(stamps_ns, query))
        if i < len(stamps_ns) and stamps_ns[i] == query:
            out[k] = poses[i]
            continue
        if i == 0 or i == len(stamps_ns) or stamps_ns[i] - stamps_ns[i - 1] > max_gap_ns:
            continue
        a = (query - stamps_ns[i - 1]) / (stamps_ns[i] - stamps_ns[i - 1])
        out[k] = np.eye(4)
        out[k, :3, 3] = (1 - a) * poses[i - 1, :3, 3] + a * poses[i, :3, 3]
        out[k, :3, :3] = quaternion_matrix(_slerp(matrix_quaternion(poses[i - 1, :3, :3]),
                                                  matrix_quaternion(poses[i, :3, :3]), a))
    return out


def _slerp(q0: np.ndarray, q1: np.ndarray, a: float) -> np.ndarray:
    if np.dot(q0, q1) < 0:
        q1 = -q1  # the shorter way round
    angle = np.arccos(np.clip(np.dot(q0, q1), -1.0, 1.0))
    if angle < 1e-9:
        return q0
    return (np.sin((1 - a) * angle) * q0 + np.sin(a * angle) * q1) / np.sin(angle)


def read_pose_file(path: str | Path, frames: int) -> np.ndarray:
    """``[frames,4,4]`` world-from-camera poses of ``poses.txt`` (see the module docstring).

    Raises
    ------
    DataError
        Unreadable file, a line without 8 numbers, a zero quaternion, non-finite values, or a line
        count other than ``frames``; the message names the file (and the line).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: cannot read poses: {error}") from error
    poses = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            values = np.array([float(v) for v in line.split()])
        except ValueError:
            values = np.array([])
        if values.shape != (8,) or not np.isfinite(values).all() or np.linalg.norm(values[4:]) < 1e-6:
            raise DataError(f"{path}:{number}: expected 'stamp tx ty tz qx qy qz qw' (finite, non-zero quaternion)")
        poses.append(pose_matrix(values[1:4], values[4:]))
    if len(poses) != frames:
        raise DataError(f"{path}: {len(poses)} poses for {frames} frames (one line per frame, in frame order)")
    return np.stack(poses)

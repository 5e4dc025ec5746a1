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

from training.data.common import DataError


def quaternion_matrix(q: np.ndarray) -> np.ndarray:
    """``[3,3]`` rotation of a quaternion ``(x, y, z, w)`` (normalised first)."""
    x, y, z, w = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


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
        T = np.eye(4)
        T[:3, :3] = quaternion_matrix(values[4:])
        T[:3, 3] = values[1:4]
        poses.append(T)
    if len(poses) != frames:
        raise DataError(f"{path}: {len(poses)} poses for {frames} frames (one line per frame, in frame order)")
    return np.stack(poses)

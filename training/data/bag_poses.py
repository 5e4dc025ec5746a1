"""Camera poses from a rosbag's odometry: the robot's own motion estimate for ``pose_source: data``.

A robot's odometry (wheel encoders, IMU, visual-inertial odometry) gives the pose of its body
frame (``child_frame_id``, e.g. ``base_link``) in a fixed frame (``header.frame_id``, e.g.
``odom``). The camera's pose is that times the body-from-camera transform: from the bag's
``/tf_static`` (what ``robot_state_publisher`` publishes from the URDF), chained through any
intermediate frames, or given as ``camera_extrinsic``. Poses at the image stamps are interpolated
(:func:`training.data.poses.interpolate_poses`).

Accepted pose topics: ``nav_msgs/msg/Odometry``, ``geometry_msgs/msg/PoseStamped`` and
``geometry_msgs/msg/PoseWithCovarianceStamped`` (the last two need ``camera_extrinsic`` or a
``body_frame`` option, as they carry no child frame).
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

from gam_depth_ros.image_codec import header_stamp_ns
from training.data.common import DataError
from training.data.poses import pose_matrix

POSE_TYPES = ("nav_msgs/msg/Odometry", "geometry_msgs/msg/PoseStamped", "geometry_msgs/msg/PoseWithCovarianceStamped")


def _transform(translation, rotation) -> np.ndarray:
    return pose_matrix([translation.x, translation.y, translation.z], [rotation.x, rotation.y, rotation.z, rotation.w])


def read_pose_topic(reader, connection, bag) -> tuple[np.ndarray, np.ndarray, str]:
    """``(stamps [N] int64 ns, fixed_from_body [N,4,4], body frame id)`` of a pose topic, sorted by stamp."""
    if connection.msgtype not in POSE_TYPES:
        raise DataError(f"{bag}: {connection.topic} is {connection.msgtype}; odometry_topic must be one of "
                        f"{POSE_TYPES}")
    stamps, poses, body = [], [], ""
    for conn, timestamp, raw in reader.messages(connections=[connection]):
        msg = reader.deserialize(raw, conn.msgtype)
        pose = msg.pose.pose if conn.msgtype != "geometry_msgs/msg/PoseStamped" else msg.pose
        T = _transform(pose.position, pose.orientation)
        if not np.isfinite(T).all():
            raise DataError(f"{bag}: {conn.topic} message at {timestamp} ns has a non-finite or zero-quaternion pose")
        stamps.append(header_stamp_ns(msg, timestamp))
        poses.append(T)
        body = getattr(msg, "child_frame_id", "") or body
    if not stamps:
        raise DataError(f"{bag}: no message on {connection.topic}")
    order = np.argsort(stamps, kind="stable")
    return np.asarray(stamps, dtype=np.int64)[order], np.stack(poses)[order], body


def read_static_transforms(reader, connection) -> dict[tuple[str, str], np.ndarray]:
    """``{(parent, child): parent_from_child [4,4]}`` of every transform on a ``tf2_msgs/msg/TFMessage`` topic."""
    edges: dict[tuple[str, str], np.ndarray] = {}
    for conn, _, raw in reader.messages(connections=[connection]):
        for stamped in reader.deserialize(raw, conn.msgtype).transforms:
            t = stamped.transform
            edges[(stamped.header.frame_id, stamped.child_frame_id)] = _transform(t.translation, t.rotation)
    return edges


def chain_transform(edges: dict[tuple[str, str], np.ndarray], parent: str, child: str) -> np.ndarray | None:
    """``parent_from_child`` through any path of static transforms (each usable both ways); None if unconnected."""
    neighbours: dict[str, list[tuple[str, np.ndarray]]] = {}
    for (a, b), T in edges.items():
        neighbours.setdefault(a, []).append((b, T))
        neighbours.setdefault(b, []).append((a, np.linalg.inv(T)))
    found = {parent: np.eye(4)}
    queue = deque([parent])
    while queue:
        frame = queue.popleft()
        for other, T in neighbours.get(frame, []):
            if other not in found:
                found[other] = found[frame] @ T
                queue.append(other)
    return found.get(child)


def body_from_camera(options: dict[str, Any], edges: dict[tuple[str, str], np.ndarray] | None, body: str,
                     camera: str, bag) -> np.ndarray:
    """The camera's pose in the odometry's body frame: ``options.camera_extrinsic``, identity, or ``/tf_static``."""
    extrinsic = options.get("camera_extrinsic")
    if extrinsic is not None:
        try:
            return pose_matrix(extrinsic["translation"], extrinsic["rotation"])
        except (KeyError, TypeError, ValueError) as error:
            raise DataError(f"{bag}: camera_extrinsic needs translation [x, y, z] and rotation [qx, qy, qz, qw] "
                            f"(the camera optical frame's pose in {body or 'the body frame'}): {error}") from error
    if body == camera:
        return np.eye(4)
    if not body:
        raise DataError(f"{bag}: the pose topic names no body frame: set options.body_frame or camera_extrinsic")
    T = chain_transform(edges or {}, body, camera)
    if T is None:
        known = sorted({frame for pair in (edges or {}) for frame in pair})
        raise DataError(f"{bag}: no static transform from {body!r} to the camera frame {camera!r} "
                        f"(frames in {options.get('tf_static_topic', '/tf_static')}: {known}); "
                        "give options.camera_extrinsic or options.camera_frame")
    return T

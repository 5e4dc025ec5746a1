"""``--record``: the evaluation's inputs and outputs as a rosbag2 (mcap) for Foxglove or RViz.

Inputs and the ground-truth depth and labels keep their topics and serialized bytes; outputs go under
``/gam_depth/`` with the node's topic names (``depth/image`` 32FC1 metres, ``semantic/image`` mono8,
and in live mode whatever else the node published). Every message is logged at its header stamp, so
playback lines outputs up with the images they came from.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gam_depth_ros import topics
from gam_depth_ros.evaluation.bag_reader import BagFrames
from gam_depth_ros.evaluation.offline import Output


def output_messages(outputs: list[Output], frame_id: str) -> list[tuple[str, str, int, bytes]]:
    """Serialized ``/gam_depth/depth/image`` and ``/gam_depth/semantic/image`` Image messages of offline
    outputs."""
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores.ROS2_HUMBLE)
    T = store.types
    out = []
    for output in outputs:
        stamp = T["builtin_interfaces/msg/Time"](sec=output.stamp_ns // 10**9, nanosec=output.stamp_ns % 10**9)
        header = T["std_msgs/msg/Header"](stamp=stamp, frame_id=frame_id)
        images = [(topics.DEPTH, output.depth_m.astype("<f4"), "32FC1", 4)]
        if output.labels is not None:
            images.append((topics.SEMANTIC, output.labels.astype(np.uint8), "mono8", 1))
        for name, pixels, encoding, size in images:
            h, w = pixels.shape
            data = np.ascontiguousarray(pixels).view(np.uint8).reshape(-1)
            msg = T["sensor_msgs/msg/Image"](header=header, height=h, width=w, encoding=encoding, is_bigendian=0,
                                             step=w * size, data=data)
            out.append((f"/gam_depth/{name}", "sensor_msgs/msg/Image", output.stamp_ns,
                        bytes(store.serialize_cdr(msg, "sensor_msgs/msg/Image"))))
    return out


def write_recording(path: Path, bag: BagFrames, image_topic: str, camera_info_topic: str,
                    outputs: list[tuple[str, str, int, bytes]],
                    ground_truth: list[tuple[str, str, int, bytes]] | None = None) -> Path:
    """Write inputs (images, camera info), ``outputs`` ``(topic, type, stamp, raw)`` and the ground-truth
    messages ``ground_truth`` (same form, topics unchanged) to ``path``."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores.ROS2_HUMBLE)
    messages = [(image_topic, bag.image_msgtype, f.stamp_ns, f.raw) for f in bag.frames]
    if camera_info_topic:
        messages += [(camera_info_topic, "sensor_msgs/msg/CameraInfo", s, raw) for s, raw in bag.camera_info_raw]
    messages += outputs + list(ground_truth or [])
    messages.sort(key=lambda m: m[2])
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        connections = {}
        for topic, msgtype, stamp, raw in messages:
            if topic not in connections:
                connections[topic] = writer.add_connection(topic, msgtype, typestore=store)
            writer.write(connections[topic], stamp, raw)
    return path

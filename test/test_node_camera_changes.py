"""depth_node when the camera changes under it, over real DDS: resolution and encoding mid-stream,
camera_info late, changed or silent, and the camera's publisher restarting (a new DDS participant).

Before :class:`~gam_depth_ros.camera_sync.CameraInfoTracker`, a stream that changed to another size
of the same aspect ratio got the old camera_info, scaled, under the new image's header until a new
one arrived, an exact-stamp camera_info was not preferred to the newest, and a camera_info that
stopped arriving was used on without a word.
"""

from __future__ import annotations

import re
import time

import numpy as np
import pytest
from ros_helpers import NodeClient, node_log, run_node, smooth_image  # noqa: F401 - run_node: fixture

from gam_depth_ros.camera_model import camera_model_from_values
from gam_depth_ros.camera_sync import CameraInfoTracker
from gam_depth_ros.image_codec import image_msg_to_array

SECOND = 10**9


def pinhole(width: int, height: int, focal: float):
    cx, cy = (width - 1) / 2, (height - 1) / 2
    return camera_model_from_values(width=width, height=height, k=[focal, 0, cx, 0, focal, cy, 0, 0, 1],
                                    p=[focal, 0, cx, 0, 0, focal, cy, 0, 0, 0, 1, 0], r=[1, 0, 0, 0, 1, 0, 0, 0, 1],
                                    d=[])


def test_tracker_prefers_the_pair_and_never_gives_the_old_stream_to_the_new_one():
    tracker = CameraInfoTracker()
    assert tracker.for_image(1, 64, 48, 0.0) == (None, "no valid camera_info received yet")
    small, recalibrated = pinhole(64, 48, 50.0), pinhole(64, 48, 55.0)
    tracker.add(1, small, 0.0)
    tracker.add(2, recalibrated, 0.1)
    assert tracker.for_image(1, 64, 48, 0.2)[0] is small  # its own stamp, not the newest
    assert tracker.for_image(3, 64, 48, 0.3)[0] is recalibrated  # no pair: the newest
    camera, reason = tracker.for_image(4, 128, 96, 0.4)  # the driver switched to 128x96
    assert camera is None and "waiting for a camera_info of the new stream (the last one is 64x48)" in reason
    camera, reason = tracker.for_image(5, 128, 72, 0.5)
    assert camera is None and "another aspect ratio" in reason
    tracker.add(6, pinhole(128, 96, 100.0), 0.6)
    assert tracker.for_image(7, 128, 96, 0.7)[0].width == 128  # the next frame follows
    assert tracker.silence_s(5.7) == pytest.approx(5.1)
    # a camera_info of another size sent once, before the images (a resized stream): scaled, not refused
    once = CameraInfoTracker()
    once.add(1, pinhole(640, 480, 500.0), 0.0)
    assert once.for_image(2, 64, 48, 0.1)[0].width == 640


def test_resolution_and_encoding_change_mid_stream(run_node):  # noqa: F811
    process, client = run_node()
    start = time.time_ns()
    client.send(start, info=client.camera_info(start, 64, 48, 50.0), wait_for=("depth", "depth_info"))
    assert client.depth_info[start].width == 64
    # the driver is reconfigured to 128x96; its first image arrives before its camera_info
    big = start + SECOND // 10
    depth = client.send(big, rgb=smooth_image(96, 128, seed=1))
    assert (depth.width, depth.height) == (128, 96) and depth.header.stamp == client.header(big).stamp
    client.spin(0.5)
    assert big not in client.depth_info  # no 64x48 intrinsics under the new stream's header
    assert "the images changed to 128x96; waiting for a camera_info of the new stream" in node_log(process)
    following = big + SECOND // 10
    client.send(following, rgb=smooth_image(96, 128, seed=2), info=client.camera_info(following, 128, 96, 100.0),
                wait_for=("depth", "depth_info"))
    info = client.depth_info[following]
    assert (info.width, info.height) == (128, 96) and info.k[0] == pytest.approx(100.0)
    # the same picture as rgb8, bgr8 and mono8: the depth follows the encoding of each message
    rgb = smooth_image(96, 128, seed=3)
    depths = {}
    for index, encoding in enumerate(("rgb8", "bgr8", "mono8")):
        stamp = following + (index + 1) * SECOND // 10
        msg = client.send(stamp, rgb=rgb, encoding=encoding, info=client.camera_info(stamp, 128, 96, 100.0))
        assert msg.header.stamp == client.header(stamp).stamp
        depths[encoding] = image_msg_to_array(msg)
    np.testing.assert_array_equal(depths["rgb8"], depths["bgr8"])
    assert not np.array_equal(depths["rgb8"], depths["mono8"])  # grey input: another picture


def test_camera_info_recalibrated_then_silent(run_node):  # noqa: F811
    process, client = run_node()
    start = time.time_ns()
    client.send(start, info=client.camera_info(start, 64, 48, 50.0), wait_for=("depth", "depth_info"))
    recalibrated = start + SECOND // 10
    client.send(recalibrated, info=client.camera_info(recalibrated, 64, 48, 58.0), wait_for=("depth", "depth_info"))
    assert client.depth_info[recalibrated].k[0] == pytest.approx(58.0)
    # camera_info stops; images go on for more than 5 s: the last one is used, and the diagnostics say so
    stamp = recalibrated
    deadline = time.monotonic() + 6.5
    while time.monotonic() < deadline:
        stamp += SECOND // 10
        client.send(stamp, wait_for=("depth", "depth_info"))
        client.spin(0.2)
    assert client.depth_info[stamp].k[0] == pytest.approx(58.0)
    warned = [(level, message) for level, message, _ in client.diagnostics if "while images arrive" in message]
    assert warned and warned[-1][0] == 1, client.diagnostics[-3:]
    assert re.search(r"no camera_info for [5-8] s while images arrive: using the last one", warned[-1][1])


def test_camera_publisher_restart_is_followed(run_node):  # noqa: F811
    process, client = run_node()
    start = time.time_ns()
    client.send(start, info=client.camera_info(start, 64, 48, 50.0), wait_for=("depth", "depth_info"))
    # the camera driver restarts: a new process, i.e. a new DDS participant, publishing the same topics
    restarted = NodeClient(client.domain, client.ns, name="camera_restarted")
    try:
        client.node.destroy_publisher(client.image)
        client.node.destroy_publisher(client.info)
        stamp = start + SECOND
        info = restarted.camera_info(stamp, 64, 48, 52.0)
        restarted.send(stamp, info=info, wait_for=("depth", "depth_info"), timeout=30.0)
        assert restarted.depth_info[stamp].k[0] == pytest.approx(52.0)
    finally:
        restarted.close()
    assert "Traceback" not in node_log(process)

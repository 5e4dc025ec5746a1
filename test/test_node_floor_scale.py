"""depth_node with scale_mode floor over real DDS: no depth before a floor scale, diagnostics, bad config."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy
from ros_helpers import REPO, configure_process, node_log, ros_env, smooth_image, start_node, stop_node, wait_until
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import Header

from gam_depth_ros import topics
from gam_depth_ros.image_codec import fill_image_msg

RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


def test_floor_mode_without_a_floor_publishes_semantics_but_no_depth(tmp_path, small_model):
    domain = configure_process(tmp_path / "ros_log")
    ns = f"/floor{os.getpid()}"
    process = start_node({"model_path": str(small_model.onnx), "threads": 1, "stats_period": 0.5,
                          "scale_mode": "floor", "camera_height": 0.8, "qos_in_reliability": "reliable"},
                         tmp_path, ns, name="floor")
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain)
    node = rclpy.create_node("floor_test", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    received: dict[str, list] = {"depth": [], "semantic": [], "points": []}
    diagnostics: list[dict] = []
    try:
        for topic in received:
            msg_type = PointCloud2 if topic == "points" else Image
            name = {"depth": topics.DEPTH, "semantic": topics.SEMANTIC, "points": topics.POINTS}[topic]
            node.create_subscription(msg_type, f"{ns}/{name}", received[topic].append, RELIABLE)
        node.create_subscription(DiagnosticArray, "/diagnostics", lambda m: diagnostics.extend(
            {kv.key: kv.value for kv in s.values} for s in m.status if s.name.startswith(ns)), RELIABLE)
        image_pub = node.create_publisher(Image, f"{ns}/image", RELIABLE)
        info_pub = node.create_publisher(CameraInfo, f"{ns}/camera_info", RELIABLE)
        assert wait_until(executor, lambda: image_pub.get_subscription_count() > 0, 30.0), node_log(process)
        rgb = smooth_image(60, 80, 0)  # the random model sees no floor in it: no scale can be measured
        for i in range(4):
            header = Header(stamp=node.get_clock().now().to_msg(), frame_id="cam")
            info_pub.publish(CameraInfo(header=header, width=80, height=60,
                                        k=[60.0, 0.0, 40.0, 0.0, 60.0, 30.0, 0.0, 0.0, 1.0]))
            image_pub.publish(fill_image_msg(Image(header=header), rgb, "rgb8"))
            wait_until(executor, lambda i=i: len(received["semantic"]) > i, 10.0)
        assert len(received["semantic"]) >= 3
        wait_until(executor, lambda: bool(diagnostics) and diagnostics[-1].get("frames_out") not in (None, "0"), 5.0)
        time.sleep(0.5)
        executor.spin_once(timeout_sec=0.1)
        assert received["depth"] == [] and received["points"] == []  # nothing metric without a scale
        values = diagnostics[-1]
        assert values["scale_mode"] == "floor" and values["scale_status"].startswith("relative")
        assert float(values["scale_confidence"]) == 0.0
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown(context=context)
        code = stop_node(process)
    assert code == 0
    assert "no metric scale from the floor yet" in node_log(process)


def test_floor_mode_without_camera_height_is_refused(tmp_path, small_model):
    result = subprocess.run(
        [sys.executable, "-m", "gam_depth_ros.node", "--ros-args", "-p", f"model_path:={small_model.onnx}",
         "-p", "scale_mode:=floor"], env=os.environ | ros_env(tmp_path / "log"), cwd=REPO,
        capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "camera_height" in result.stdout + result.stderr

"""depth_node under faults, over real DDS: failing inference, NaN/inf output, mismatched camera_info,
a model of the wrong shape. The misbehaving model is a real ONNX graph (test/fault_models.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from fault_models import write_fault_model
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy
from ros_helpers import (
    REPO,
    assert_stopped_cleanly,
    configure_process,
    node_log,
    ros_env,
    start_node,
    wait_until,
)
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import Header

from gam_depth_ros import topics
from gam_depth_ros.image_codec import fill_image_msg, image_msg_to_array
from gam_depth_ros.inference import create_backend

RELIABLE = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
H, W = 60, 80
MAX_FAILURES = 3


def picture(blue: int) -> np.ndarray:
    """R 200 on the top half, G 100 on the left half, blue everywhere (0 makes the model fail)."""
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[: H // 2, :, 0] = 200
    rgb[:, : W // 2, 1] = 100
    rgb[:, :, 2] = blue
    return rgb


@pytest.fixture(scope="module")
def fault_node(tmp_path_factory):
    folder = tmp_path_factory.mktemp("faults")
    model = write_fault_model(folder / "fault.onnx")
    domain = configure_process(folder / "ros_log")
    ns = f"/faults{os.getpid()}"
    process = start_node({"model_path": str(model), "threads": 1, "stats_period": 0.3, "qos_in_reliability": "reliable",
                          "qos_out_depth": 10, "max_consecutive_failures": MAX_FAILURES}, folder, ns, name="faults")
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain)
    node = rclpy.create_node("fault_test", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    state = {"depth": {}, "points": {}, "depth/camera_info": {}, "diagnostics": []}
    for key, topic, msg_type in (("depth", topics.DEPTH, Image), ("points", topics.POINTS, PointCloud2),
                                 ("depth/camera_info", topics.DEPTH_CAMERA_INFO, CameraInfo)):
        node.create_subscription(msg_type, f"{ns}/{topic}",
                                 lambda m, k=key: state[k].__setitem__(m.header.stamp.nanosec, m), RELIABLE)
    node.create_subscription(DiagnosticArray, "/diagnostics", lambda m: state["diagnostics"].extend(
        s for s in m.status if s.name.startswith(ns)), RELIABLE)
    pubs = {"image": node.create_publisher(Image, f"{ns}/image", RELIABLE),
            "info": node.create_publisher(CameraInfo, f"{ns}/camera_info", RELIABLE)}
    assert wait_until(executor, lambda: pubs["image"].get_subscription_count() > 0, 30.0), node_log(process)
    yield {"node": node, "executor": executor, "pubs": pubs, "state": state, "process": process, "model": model}
    executor.shutdown()
    node.destroy_node()
    rclpy.try_shutdown(context=context)
    assert_stopped_cleanly(process)


def send(env, rgb: np.ndarray, nanosec: int, info_size=(W, H)) -> None:
    header = Header(frame_id="cam")
    header.stamp.sec, header.stamp.nanosec = 100, nanosec
    fx = 0.9 * info_size[0]
    env["pubs"]["info"].publish(CameraInfo(header=header, width=info_size[0], height=info_size[1],
                                           k=[fx, 0.0, info_size[0] / 2, 0.0, fx, info_size[1] / 2, 0.0, 0.0, 1.0]))
    env["pubs"]["image"].publish(fill_image_msg(Image(header=header), rgb, "rgb8"))


def test_nan_inf_and_negative_model_output_never_reach_published_depth(fault_node):
    send(fault_node, picture(255), 1)
    assert wait_until(fault_node["executor"], lambda: 1 in fault_node["state"]["depth"], 15.0)
    depth = image_msg_to_array(fault_node["state"]["depth"][1])
    prediction = create_backend("onnxruntime", fault_node["model"], threads=1).infer(picture(255), (H, W))
    garbage = ~(np.isfinite(prediction.depth) & (prediction.depth > 0))
    assert garbage.mean() > 0.4  # NaN, +inf disparity (depth 0) and negative depth: all present
    assert np.isnan(depth[garbage]).all()
    assert np.isfinite(depth[~garbage]).all() and (depth[~garbage] > 0).all()
    assert not np.isinf(depth).any()


def test_failing_inference_drops_frames_then_reports_error_and_recovers(fault_node):
    state, executor = fault_node["state"], fault_node["executor"]
    for i in range(MAX_FAILURES + 1):
        send(fault_node, picture(0), 10 + i)  # blue channel all zero: the model raises in ONNX Runtime
        wait_until(executor, lambda: False, 0.3)  # paced, so that no frame replaces another in the node
    assert wait_until(executor, lambda: any(s.level == DiagnosticStatus.ERROR for s in state["diagnostics"]), 10.0)
    error = next(s for s in state["diagnostics"] if s.level == DiagnosticStatus.ERROR)
    assert "in a row failed" in error.message and "Reshape" in error.message
    assert not any(10 <= k < 20 for k in state["depth"])  # nothing published for failed frames
    send(fault_node, picture(255), 30)  # the node is still serving
    assert wait_until(executor, lambda: 30 in state["depth"], 15.0)
    count = len(state["diagnostics"])
    assert wait_until(executor, lambda: len(state["diagnostics"]) > count + 1, 5.0)
    assert state["diagnostics"][-1].level != DiagnosticStatus.ERROR
    assert "frame dropped, it failed" in node_log(fault_node["process"])


def test_camera_info_of_another_aspect_ratio_gives_no_points(fault_node):
    state, executor = fault_node["state"], fault_node["executor"]
    send(fault_node, picture(255), 40, info_size=(2 * W, 2 * H))  # same aspect: rescaled and published
    assert wait_until(executor, lambda: 40 in state["points"] and 40 in state["depth/camera_info"], 15.0)
    assert state["depth/camera_info"][40].k[0] == pytest.approx(0.9 * W)
    send(fault_node, picture(255), 41, info_size=(W, 2 * H))  # another aspect ratio: refused
    assert wait_until(executor, lambda: 41 in state["depth"], 15.0)
    executor.spin_once(timeout_sec=0.3)
    assert 41 not in state["points"] and 41 not in state["depth/camera_info"]
    assert "another aspect ratio" in node_log(fault_node["process"])


def test_model_of_the_wrong_shape_stops_the_node_naming_the_file(tmp_path):
    model = write_fault_model(tmp_path / "wrong.onnx")
    metadata = json.loads(model.with_suffix(".json").read_text())
    metadata["input_height"] = 96  # the graph takes 64 rows
    model.with_suffix(".json").write_text(json.dumps(metadata))
    result = subprocess.run([sys.executable, "-m", "gam_depth_ros.node", "--ros-args", "-p", f"model_path:={model}"],
                            env=os.environ | ros_env(tmp_path / "log"), cwd=REPO, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 1
    assert str(model) in result.stderr and "should be [1, 3, 96, 96]" in result.stderr

"""Live tuning of depth_node over real DDS: ``ros2 param set`` through the node's parameter services.

Safe parameters change while the node runs and act from the next frame on (colormap, an output
switched on later); invalid combinations and read-only parameters are rejected with the reason.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import DescribeParameters, SetParameters, SetParametersAtomically
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy
from ros_helpers import (
    assert_stopped_cleanly,
    configure_process,
    node_log,
    smooth_image,
    start_node,
    wait_until,
)
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import Header

from gam_depth_ros import topics
from gam_depth_ros.colorize import colorize_depth
from gam_depth_ros.image_codec import fill_image_msg, image_msg_to_array

RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
H, W = 48, 64
VALUE_FIELDS = {bool: ("bool_value", ParameterType.PARAMETER_BOOL),
                int: ("integer_value", ParameterType.PARAMETER_INTEGER),
                float: ("double_value", ParameterType.PARAMETER_DOUBLE),
                str: ("string_value", ParameterType.PARAMETER_STRING)}


def parameter(name: str, value) -> Parameter:
    field, kind = VALUE_FIELDS[type(value)]
    return Parameter(name=name, value=ParameterValue(type=kind, **{field: value}))


class Tuning:
    """This process's node, the depth node's parameter service clients, outputs by frame number."""

    def __init__(self, node, executor, ns: str) -> None:
        self.node, self.executor, self.ns = node, executor, ns
        service = f"{ns}/depth_node"
        self.set = node.create_client(SetParameters, f"{service}/set_parameters")
        self.set_atomically = node.create_client(SetParametersAtomically, f"{service}/set_parameters_atomically")
        self.describe = node.create_client(DescribeParameters, f"{service}/describe_parameters")
        self.outputs: dict[str, dict[int, object]] = {topics.DEPTH_COLORIZED: {}, topics.POINTS: {}, topics.DEPTH: {}}
        for topic, kind in ((topics.DEPTH_COLORIZED, Image), (topics.POINTS, PointCloud2), (topics.DEPTH, Image)):
            node.create_subscription(kind, f"{ns}/{topic}", self._store(topic), RELIABLE)
        self.diagnostics: list[dict] = []
        node.create_subscription(DiagnosticArray, "/diagnostics", lambda m: self.diagnostics.extend(
            {kv.key: kv.value for kv in s.values} for s in m.status if s.name.startswith(ns)), RELIABLE)
        self.image = node.create_publisher(Image, f"{ns}/image", RELIABLE)
        self.info = node.create_publisher(CameraInfo, f"{ns}/camera_info", RELIABLE)

    def _store(self, topic: str):
        return lambda msg: self.outputs[topic].__setitem__(msg.header.stamp.nanosec, msg)

    def call(self, client, request):
        assert wait_until(self.executor, client.service_is_ready, 30.0), f"no service {client.srv_name}"
        future = client.call_async(request)
        assert wait_until(self.executor, future.done, 10.0), f"{client.srv_name} did not answer"
        return future.result()

    def set_parameters(self, **values) -> list:
        """One SetParameters call; the per-parameter results (successful, reason)."""
        request = SetParameters.Request(parameters=[parameter(k, v) for k, v in values.items()])
        return list(self.call(self.set, request).results)

    def set_together(self, **values):
        request = SetParametersAtomically.Request(parameters=[parameter(k, v) for k, v in values.items()])
        return self.call(self.set_atomically, request).result

    def frame(self, number: int, topic: str, timeout: float = 15.0):
        """Send frame ``number`` (again each second) until ``topic`` has its output."""
        header = Header(frame_id="cam")
        header.stamp.sec, header.stamp.nanosec = 7, number
        rgb = smooth_image(H, W, seed=number)
        for _ in range(int(timeout)):
            self.info.publish(CameraInfo(header=header, width=W, height=H,
                                         k=[50.0, 0.0, 32.0, 0.0, 50.0, 24.0, 0.0, 0.0, 1.0]))
            self.image.publish(fill_image_msg(Image(header=header), rgb, "rgb8"))
            if wait_until(self.executor, lambda: number in self.outputs[topic], 1.0):
                return self.outputs[topic][number]
        raise AssertionError(f"no {topic} for frame {number}")


@pytest.fixture(scope="module")
def tuning(tmp_path_factory, small_model):
    folder = tmp_path_factory.mktemp("tuning")
    domain = configure_process(folder / "ros_log")
    ns = f"/tuning{os.getpid()}"
    process = start_node({"model_path": str(small_model.onnx), "threads": 1, "stats_period": 0.3,
                          "qos_in_reliability": "reliable", "publish_points": False,
                          "colorize_min_depth": 0.5, "colorize_max_depth": 8.0}, folder, ns, name="tuning")
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain)
    node = rclpy.create_node("tuning_test", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    state = Tuning(node, executor, ns)
    assert wait_until(executor, lambda: state.image.get_subscription_count() > 0, 30.0), node_log(process)
    state.process = process
    yield state
    executor.shutdown()
    node.destroy_node()
    rclpy.try_shutdown(context=context)
    assert_stopped_cleanly(process)


def test_colormap_and_range_change_from_the_next_frame(tuning):
    before = image_msg_to_array(tuning.frame(1, topics.DEPTH_COLORIZED))
    depth = image_msg_to_array(tuning.frame(1, topics.DEPTH))
    np.testing.assert_array_equal(before, colorize_depth(depth, 0.5, 8.0, "turbo"))
    results = tuning.set_parameters(colormap="viridis", colorize_max_depth=4.0)
    assert all(r.successful for r in results), [r.reason for r in results]
    after = image_msg_to_array(tuning.frame(2, topics.DEPTH_COLORIZED))
    np.testing.assert_array_equal(after, colorize_depth(image_msg_to_array(tuning.frame(2, topics.DEPTH)), 0.5, 4.0,
                                                         "viridis"))
    assert "parameters changed: colormap='viridis'" in node_log(tuning.process)


def test_an_output_switched_on_while_running_is_published(tuning):
    assert tuning.node.count_publishers(f"{tuning.ns}/{topics.POINTS}") == 0
    (result,) = tuning.set_parameters(publish_points=True)
    assert result.successful, result.reason
    cloud = tuning.frame(3, topics.POINTS)
    assert cloud.width > 0 and cloud.is_dense
    (result,) = tuning.set_parameters(points_stride=4)
    assert result.successful, result.reason
    assert tuning.frame(4, topics.POINTS).width == pytest.approx(cloud.width / 4, rel=0.3)


def test_read_only_parameters_are_rejected_with_the_reason(tuning):
    results = tuning.set_parameters(model_path="/other/model.onnx", qos_out_depth=5, use_compressed=True,
                                    stats_period=1.0)
    assert not any(r.successful for r in results)
    reasons = [r.reason for r in results]
    assert "model_path cannot change while the node runs: the model is loaded once at start" in reasons[0]
    assert "QoS is fixed when the publishers and subscriptions are created" in reasons[1]
    assert "message type is chosen at start" in reasons[2] and "statistics timer" in reasons[3]
    request = DescribeParameters.Request(names=["model_path", "colormap"])
    model_path, colormap = tuning.call(tuning.describe, request).descriptors
    assert "read at start only" in model_path.additional_constraints
    assert "can change while the node runs" in colormap.additional_constraints and not colormap.read_only


def test_invalid_changes_are_rejected_and_change_nothing(tuning):
    (result,) = tuning.set_parameters(colorize_min_depth=6.0)  # above colorize_max_depth (4.0)
    assert not result.successful and "colorize_max_depth=4.0 must exceed colorize_min_depth=6.0" in result.reason
    (result,) = tuning.set_parameters(scale_mode="floor")  # camera_height is 0
    assert not result.successful and "camera_height > 0" in result.reason
    (result,) = tuning.set_parameters(colormap="rainbow")
    assert not result.successful and "colormap='rainbow'" in result.reason
    result = tuning.set_together(scale_mode="floor", camera_height=0.8)  # valid together
    assert result.successful, result.reason
    assert wait_until(tuning.executor, lambda: bool(tuning.diagnostics)
                      and tuning.diagnostics[-1]["scale_mode"] == "floor", 5.0)
    (result,) = tuning.set_parameters(scale_mode="fixed")
    assert result.successful, result.reason

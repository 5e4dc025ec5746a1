"""``depth_lifecycle_node`` driven through its lifecycle services over real DDS, as a lifecycle manager does.

One node process (small random ONNX model); this process publishes camera images the whole time
and calls ``<node>/change_state``, ``<node>/get_state`` and ``<node>/set_parameters``.
"""

from __future__ import annotations

import os
import time

import pytest
import rclpy
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy
from ros_helpers import configure_process, node_log, smooth_image, start_node, stop_node, wait_until
from sensor_msgs.msg import Image

from gam_depth_ros import topics
from gam_depth_ros.image_codec import fill_image_msg

NS = f"/gdl{os.getpid()}"
NODE = f"{NS}/depth_node"
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
QUIET_S = 1.5  # images keep coming this long while the node must stay silent


class Client:
    """Test side: an image publisher, a depth subscriber and the node's lifecycle services."""

    def __init__(self, context) -> None:
        self.node = rclpy.create_node("lifecycle_test", context=context)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self.depth: list[float] = []  # arrival times of depth images
        self.node.create_subscription(Image, f"{NS}/{topics.DEPTH}", self._on_depth, RELIABLE)
        self.image_pub = self.node.create_publisher(Image, f"{NS}/image", RELIABLE)
        self.image = Image()
        fill_image_msg(self.image, smooth_image(48, 64, seed=3), "rgb8")
        self.image.header.frame_id = "camera_optical"
        self.node.create_timer(0.1, self._publish_image)
        self.change = self.node.create_client(ChangeState, f"{NODE}/change_state")
        self.get = self.node.create_client(GetState, f"{NODE}/get_state")
        self.set_params = self.node.create_client(SetParameters, f"{NODE}/set_parameters")

    def _on_depth(self, msg: Image) -> None:
        self.depth.append(time.monotonic())

    def _publish_image(self) -> None:
        self.image.header.stamp = self.node.get_clock().now().to_msg()
        self.image_pub.publish(self.image)

    def call(self, client, request, timeout: float = 30.0):
        assert client.wait_for_service(timeout_sec=timeout), f"{client.srv_name} not offered"
        future = client.call_async(request)
        assert wait_until(self.executor, future.done, timeout), f"{client.srv_name}: no answer"
        return future.result()

    def state(self) -> str:
        return self.call(self.get, GetState.Request()).current_state.label

    def transition(self, transition_id: int) -> bool:
        return self.call(self.change, ChangeState.Request(transition=Transition(id=transition_id))).success

    def set_model_path(self, path: str) -> None:
        value = ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=path)
        request = SetParameters.Request(parameters=[Parameter(name="model_path", value=value)])
        result = self.call(self.set_params, request)
        assert result.results[0].successful, result.results[0].reason

    def outputs_during(self, seconds: float) -> int:
        """Depth images received in the next ``seconds`` while images keep coming."""
        before = len(self.depth)
        wait_until(self.executor, lambda: False, seconds)
        return len(self.depth) - before


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    domain = configure_process(tmp_path_factory.mktemp("ros_log"))
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain)
    state = Client(context)
    yield state
    state.executor.shutdown()
    state.node.destroy_node()
    rclpy.try_shutdown(context=context)


def test_transitions_start_and_stop_the_outputs(client, small_model, tmp_path):
    params = {"model_path": str(small_model.onnx), "threads": 1, "stats_period": 0.5}
    process = start_node(params, tmp_path, namespace=NS, module="gam_depth_ros.lifecycle_node")
    try:
        assert client.state() == "unconfigured"
        assert client.outputs_during(QUIET_S) == 0

        assert client.transition(Transition.TRANSITION_CONFIGURE) and client.state() == "inactive"
        assert client.outputs_during(QUIET_S) == 0  # model loaded, but nothing before activate

        assert client.transition(Transition.TRANSITION_ACTIVATE) and client.state() == "active"
        assert wait_until(client.executor, lambda: len(client.depth) >= 3, 30.0), node_log(process)

        assert client.transition(Transition.TRANSITION_DEACTIVATE) and client.state() == "inactive"
        wait_until(client.executor, lambda: False, 0.5)  # a frame in flight at deactivate may still arrive
        assert client.outputs_during(QUIET_S) == 0

        # cleanup unloads; a missing model then fails configure with the reason, and the node stays
        # unconfigured, ready for a corrected model_path.
        assert client.transition(Transition.TRANSITION_CLEANUP) and client.state() == "unconfigured"
        missing = tmp_path / "missing.onnx"
        client.set_model_path(str(missing))
        assert not client.transition(Transition.TRANSITION_CONFIGURE)
        assert client.state() == "unconfigured"
        assert wait_until(client.executor, lambda: "configure failed" in node_log(process), 5.0)
        failure = next(line for line in node_log(process).splitlines() if "configure failed" in line)
        assert str(missing) in failure and "does not exist" in failure, failure

        client.set_model_path(str(small_model.onnx))
        assert client.transition(Transition.TRANSITION_CONFIGURE)
        assert client.transition(Transition.TRANSITION_ACTIVATE)
        count = len(client.depth)
        assert wait_until(client.executor, lambda: len(client.depth) >= count + 3, 30.0), node_log(process)

        assert client.transition(Transition.TRANSITION_ACTIVE_SHUTDOWN) and client.state() == "finalized"
        assert process.poll() is None  # finalized, still answering until stopped
    finally:
        code = stop_node(process)
    assert code == 0, node_log(process)

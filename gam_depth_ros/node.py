"""``depth_node``: camera images in; depth, semantics, colorized views, camera_info and points out.

Only ROS I/O lives here; decoding, inference, colouring and geometry are in plain-Python modules.
Topics (all relative, so a namespace or remapping moves them; names in :mod:`gam_depth_ros.topics`):

- in: ``image`` (sensor_msgs/Image; should be rectified, e.g. ``image_rect``) or
  ``image/compressed`` (CompressedImage, when ``use_compressed``), ``camera_info`` (optional; the
  latest one is used);
- out, image_transport style (each image beside the camera_info of exactly that image):
  ``depth/image`` (32FC1 metres, NaN invalid) + ``depth/camera_info``, ``depth/colorized/image``
  (rgb8) + ``depth/colorized/camera_info``, ``semantic/image`` (mono8 class ids) +
  ``semantic/camera_info``, ``semantic/colorized/image`` (rgb8) + ``semantic/colorized/camera_info``,
  ``points`` (PointCloud2, back-projected with the published camera_info's P as depth_image_proc
  does), every one copying the input header; ``semantic/classes`` (std_msgs/String, JSON: id
  convention, class names and palette; latched, i.e. transient-local); ``/diagnostics``
  (DiagnosticArray, the global topic that diagnostic aggregators read).

Latest frame only: the subscription callback stores the newest message in a one-slot mailbox and
returns; a worker thread takes it, runs inference and publishes. A message replaced before the
worker took it is counted as dropped, so a slow model never builds a queue. Frames are not
processed at all while no output has a subscriber. Parameters: :class:`NodeParams`; most can be
changed while the node runs (``ros2 param set``), validated as a whole; the others are rejected
with the reason. :class:`DepthNodeCore` is the behaviour on any rclpy node class: :class:`DepthNode`
starts at once, ``gam_depth_ros.lifecycle_node`` on lifecycle transitions.

Run: ``depth_node --ros-args --params-file config/depth.yaml -p model_path:=model.onnx`` or
``python -m gam_depth_ros.node --ros-args ...``.
"""

from __future__ import annotations

import sys
import threading
import time

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import SetParametersResult
from rclpy.clock import Clock, ClockType
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header, String

from gam_depth_ros.camera_model import CameraInfoError, camera_model_from_msg
from gam_depth_ros.camera_sync import SILENCE_WARN_S, CameraInfoTracker
from gam_depth_ros.image_resize import limit_opencv_threads
from gam_depth_ros.inference import create_backend
from gam_depth_ros.labels import classes_json, palette_lut
from gam_depth_ros.node_frames import WARN_THROTTLE_S, FrameWorker
from gam_depth_ros.node_outputs import diagnostic_values
from gam_depth_ros.node_params import NodeParams, declare, read, with_changes
from gam_depth_ros.node_settings import NodeSettings, make_scaler, node_settings, scaler_changed
from gam_depth_ros.node_stats import ERROR, OK, WARN, LatestSlot, NodeStats, StatsSnapshot, health
from gam_depth_ros.ros_messages import message_class
from gam_depth_ros.stamp_monitor import StampMonitor
from gam_depth_ros.topics import (
    CAMERA_INFO,
    COMPRESSED_IMAGE,
    IMAGE,
    OUTPUTS,
    SEMANTIC_CLASSES,
)

NODE_NAME = "depth_node"
RELIABILITY = {
    "best_effort": ReliabilityPolicy.BEST_EFFORT,
    "reliable": ReliabilityPolicy.RELIABLE,
    "system_default": ReliabilityPolicy.SYSTEM_DEFAULT,
}
#: The class description: sent once, kept for subscribers that join later (a latched topic).
LATCHED = QoSProfile(
    history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)
DIAGNOSTIC_LEVELS = {OK: DiagnosticStatus.OK, WARN: DiagnosticStatus.WARN, ERROR: DiagnosticStatus.ERROR}
IDLE_LOG_PERIOD_S = 60.0


def make_qos(reliability: str, depth: int) -> QoSProfile:
    """Keep-last, volatile QoS with the given reliability name (see ``RELIABILITY``) and depth."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=depth,
        reliability=RELIABILITY[reliability],
        durability=DurabilityPolicy.VOLATILE,
    )


def load_backend(params: NodeParams):
    """The inference backend of ``params``; ``ValueError`` naming the file when it cannot load."""
    try:
        return create_backend(params.backend, params.model_path, params.threads)
    except ValueError:
        raise
    except Exception as error:  # a framework failing to load the file: report it with the file name
        raise ValueError(f"{params.model_path}: cannot load the model: {type(error).__name__}: {error}") from error


class DepthNodeCore(FrameWorker):
    """The depth node's behaviour, mixed into an rclpy ``Node`` or ``LifecycleNode``.

    Life cycle: :meth:`_declare` (in the constructor: parameters and their change callback),
    :meth:`_load` (read and validate parameters, load the model; ``ValueError`` when unusable),
    :meth:`_start` (publishers, subscriptions, statistics timer, worker thread), :meth:`_stop`
    (the reverse of ``_start``) and :meth:`_unload`.
    """

    settings: NodeSettings

    def _declare(self) -> None:
        declare(self)
        self.backend = None
        self._active = False
        self.add_on_set_parameters_callback(self._on_set_parameters)

    @property
    def params(self) -> NodeParams:
        return self.settings.params

    def _load(self) -> None:
        params = read(self)
        backend = load_backend(params)
        self.settings = node_settings(params, backend.metadata)
        self.backend = backend
        self.scaler = make_scaler(self.settings)
        self.palette = palette_lut(backend.metadata.palette, backend.metadata.label_format)
        self.stats = NodeStats()
        self._cameras = CameraInfoTracker()  # recent valid camera_infos (rectified) by stamp
        self._failure_streak, self._last_failure = 0, ""  # consecutive failed frames (worker thread)
        self._warned: set[str] = set()
        self.stamps = StampMonitor(bool(self.get_parameter("use_sim_time").value))

    def _unload(self) -> None:
        self.backend = None

    def _start(self) -> None:
        params = self.params
        self._qos_in = make_qos(params.qos_in_reliability, params.qos_in_depth)
        self._qos_out = make_qos(params.qos_out_reliability, params.qos_out_depth)
        self._publishers_out: dict = {}
        self._camera_info_subscription = self._classes = None
        self._slot = LatestSlot()
        self._ensure_io(self.settings)
        source = COMPRESSED_IMAGE if params.use_compressed else IMAGE
        self._image_subscription = self.create_subscription(
            CompressedImage if params.use_compressed else Image, source, self._on_image, self._qos_in
        )
        self._diagnostics = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._last_stats = self._last_idle_log = time.monotonic()
        # On a steady clock: with use_sim_time and no /clock yet, statistics and diagnostics still come.
        self._timer = self.create_timer(params.stats_period, self._report_stats,
                                        clock=Clock(clock_type=ClockType.STEADY_TIME))
        self._worker = threading.Thread(target=self._work, name="depth_node_inference", daemon=True)
        self._worker.start()
        self._active = True
        net_h, net_w = self.backend.input_size
        self.get_logger().info(
            f"model {params.model_path} on {self.backend.name} ({self.backend.device}), network input "
            f"{net_w}x{net_h}, depth_scale {self.settings.depth_scale:g} m/unit, in: {source}, "
            f"out: {sorted(self.settings.enabled)}"
        )

    def _ensure_io(self, settings: NodeSettings) -> None:
        """Create the publishers and subscriptions ``settings`` needs that do not exist yet."""
        new = {
            topic: self.create_publisher(message_class(OUTPUTS[topic][1]), topic, self._qos_out)
            for topic in settings.enabled - self._publishers_out.keys()
        }
        if new:  # replaced, not updated: the worker thread iterates over it
            self._publishers_out = {**self._publishers_out, **new}
        if settings.needs_camera_info and self._camera_info_subscription is None:
            self._camera_info_subscription = self.create_subscription(
                CameraInfo, CAMERA_INFO, self._on_camera_info, self._qos_in
            )
        if (settings.params.publish_semantic or settings.params.publish_semantic_colorized) and self._classes is None:
            metadata = self.backend.metadata  # latched: subscribers that join later get it too
            self._classes = self.create_publisher(String, SEMANTIC_CLASSES, LATCHED)
            self._classes.publish(String(data=classes_json(
                metadata.class_names, metadata.palette, metadata.label_format, settings.params.model_path)))

    def _stop(self) -> None:
        if not self._active:
            return
        self._active = False
        self._slot.close()
        self._worker.join(timeout=5.0)
        self.destroy_timer(self._timer)
        for subscription in (self._image_subscription, self._camera_info_subscription):
            if subscription is not None:
                self.destroy_subscription(subscription)
        for publisher in [*self._publishers_out.values(), self._classes, self._diagnostics]:
            if publisher is not None:
                self.destroy_publisher(publisher)

    # -- executor thread ---------------------------------------------------------------------------
    def _on_set_parameters(self, parameters) -> SetParametersResult:
        if self.backend is None:  # not loaded yet (lifecycle: unconfigured): read at configure
            return SetParametersResult(successful=True)
        changes = {p.name: p.value for p in parameters}
        sim_time = changes.pop("use_sim_time", None)  # rclpy's own parameter: rclpy switches the clock
        try:
            params = with_changes(self.params, changes)
            settings = node_settings(params, self.backend.metadata)
        except ValueError as error:
            return SetParametersResult(successful=False, reason=str(error))
        if scaler_changed(self.params, params):
            self.scaler = make_scaler(settings)
        if self._active:
            self._ensure_io(settings)
        self.settings = settings
        if sim_time is not None:
            self.stamps.sim_time = bool(sim_time)
        self.get_logger().info("parameters changed: " + ", ".join(f"{p.name}={p.value!r}" for p in parameters))
        return SetParametersResult(successful=True)

    def _on_image(self, msg) -> None:
        self.stats.count("frames_in")
        if self._slot.put((msg, time.monotonic())):
            self.stats.count("dropped")

    def _on_camera_info(self, msg: CameraInfo) -> None:
        try:
            stamp_ns = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
            self._cameras.add(stamp_ns, camera_model_from_msg(msg).rectified(), time.monotonic())
        except CameraInfoError as error:
            self.get_logger().warning(f"ignoring camera_info: {error}", throttle_duration_sec=WARN_THROTTLE_S)

    def _report_stats(self) -> None:
        now = time.monotonic()
        snapshot = self.stats.snapshot(now - self._last_stats)
        self._last_stats = now
        if snapshot.window["frames_in"] or now - self._last_idle_log >= IDLE_LOG_PERIOD_S:
            scale = "" if self.params.scale_mode == "fixed" else ", " + self.scaler.last.describe()
            self.get_logger().info(snapshot.summary() + scale)  # each period while images come, else 1/min
            self._last_idle_log = now
        self._diagnostics.publish(self._diagnostic_array(snapshot))

    def _diagnostic_array(self, snapshot: StatsSnapshot) -> DiagnosticArray:
        level, message = health(
            snapshot, self._failure_streak, self.params.max_consecutive_failures, self._last_failure,
            tuple(p for p in (self.stamps.problem, self._camera_info_problem(snapshot)) if p),
        )
        values = snapshot.values() | diagnostic_values(self.backend, self.settings, self.scaler.last)
        status = DiagnosticStatus(
            level=DIAGNOSTIC_LEVELS[level],
            name=f"{self.get_fully_qualified_name()}: inference",
            message=message,
            hardware_id=self.backend.device,
            values=[KeyValue(key=key, value=value) for key, value in values.items()],
        )
        return DiagnosticArray(header=Header(stamp=self.get_clock().now().to_msg()), status=[status])


    def _camera_info_problem(self, snapshot: StatsSnapshot) -> str:
        silence = self._cameras.silence_s(time.monotonic())
        if self.settings.needs_camera_info and snapshot.window["frames_in"] and silence > SILENCE_WARN_S:
            return f"no camera_info for {silence:.0f} s while images arrive: using the last one"
        return ""


class DepthNode(DepthNodeCore, Node):
    """The depth node, running from construction. Raises ``ValueError`` (bad parameters, unusable
    model) from the constructor."""

    def __init__(self, **node_kwargs) -> None:
        Node.__init__(self, NODE_NAME, **node_kwargs)
        self._declare()
        self._load()
        self._start()

    def close(self) -> None:
        """Stop the worker thread and the node's I/O (call before ``destroy_node``)."""
        self._stop()


def spin_node(make_node, args: list[str] | None = None) -> int:
    """Init rclpy, build the node with ``make_node()``, spin until Ctrl-C or shutdown, clean up.

    Exit status 1 (with a FATAL line) when the node cannot be built (``ValueError``: a bad
    parameter, an unusable model), else 0. Shared by ``depth_node`` and ``depth_lifecycle_node``.
    """
    rclpy.init(args=args)
    limit_opencv_threads(1)
    node = executor = None
    try:
        try:
            node = make_node()
        except ValueError as error:
            rclpy.logging.get_logger(NODE_NAME).fatal(f"cannot start: {error}")
            return 1
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        try:
            # Bounded waits: a shutdown (SIGINT, SIGTERM) is seen within half a second even if its wake-up
            # of the wait set is missed (under the full test suite's load, a lifecycle node after its
            # shutdown transition once did not stop within 10 s of SIGINT with rclpy.spin).
            while rclpy.ok():
                executor.spin_once(timeout_sec=0.5)
        except (KeyboardInterrupt, ExternalShutdownException):
            pass
        except Exception:
            # A signal that shuts the context down while the executor builds its wait set surfaces as an
            # RCLError ("the given context is not valid"): that is a shutdown too, anything else is not.
            if rclpy.ok():
                raise
    finally:
        if executor is not None:
            executor.shutdown()
        if node is not None:
            node.close()
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


def main(args: list[str] | None = None) -> int:
    """Entry point of ``depth_node`` / ``python -m gam_depth_ros.node``; returns the exit status."""
    return spin_node(DepthNode, args)


if __name__ == "__main__":
    sys.exit(main())

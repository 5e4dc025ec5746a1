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
processed at all while no output has a subscriber. Parameters: :class:`NodeParams`.

Run: ``depth_node --ros-args --params-file config/depth.yaml -p model_path:=model.onnx`` or
``python -m gam_depth_ros.node --ros-args ...``.
"""

from __future__ import annotations

import sys
import threading
import time

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header, String

from gam_depth_ros.camera_model import CameraInfoError, camera_model_from_msg, fill_camera_info_msg
from gam_depth_ros.colorize import colorize_depth
from gam_depth_ros.depth_scaling import DepthScaler
from gam_depth_ros.floor_scale import FloorScaleConfig
from gam_depth_ros.image_codec import (
    ImageDecodeError,
    compressed_msg_to_rgb,
    fill_image_msg,
    image_msg_to_rgb,
)
from gam_depth_ros.inference import create_backend
from gam_depth_ros.inference.preprocessing import resize_rgb
from gam_depth_ros.labels import classes_json, palette_lut
from gam_depth_ros.node_params import NodeParams, declare_and_read
from gam_depth_ros.node_stats import ERROR, OK, WARN, LatestSlot, NodeStats, StatsSnapshot, health
from gam_depth_ros.pointcloud import backproject
from gam_depth_ros.ros_messages import message_class, pointcloud_msg
from gam_depth_ros.topics import (
    CAMERA_INFO,
    COMPRESSED_IMAGE,
    DEPTH,
    DEPTH_COLORIZED,
    DEPTH_OUTPUTS,
    IMAGE,
    NEEDS_INTRINSICS,
    OUTPUTS,
    POINTS,
    SEMANTIC,
    SEMANTIC_CLASSES,
    SEMANTIC_COLORIZED,
    enabled_outputs,
)

NODE_NAME = "depth_node"
RELIABILITY = {
    "best_effort": ReliabilityPolicy.BEST_EFFORT,
    "reliable": ReliabilityPolicy.RELIABLE,
    "system_default": ReliabilityPolicy.SYSTEM_DEFAULT,
}
DIAGNOSTIC_LEVELS = {OK: DiagnosticStatus.OK, WARN: DiagnosticStatus.WARN, ERROR: DiagnosticStatus.ERROR}
#: The class description: sent once, kept for subscribers that join later (a latched topic).
LATCHED = QoSProfile(
    history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)
WARN_THROTTLE_S = 5.0
IDLE_LOG_PERIOD_S = 60.0


def make_qos(reliability: str, depth: int) -> QoSProfile:
    """Keep-last, volatile QoS with the given reliability name (see ``RELIABILITY``) and depth."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=depth,
        reliability=RELIABILITY[reliability],
        durability=DurabilityPolicy.VOLATILE,
    )


class DepthNode(Node):
    """The depth node. Raises ``ValueError`` (bad parameters, unusable model) from the constructor."""

    def __init__(self, **node_kwargs) -> None:
        super().__init__(NODE_NAME, **node_kwargs)
        self.params: NodeParams = declare_and_read(self)
        params = self.params
        try:
            self.backend = create_backend(params.backend, params.model_path, params.threads)
        except ValueError:
            raise
        except Exception as error:  # a framework failing to load the file: report it with the file name
            raise ValueError(
                f"{params.model_path}: cannot load the model: {type(error).__name__}: {error}"
            ) from error
        metadata = self.backend.metadata
        self.depth_scale = params.depth_scale or metadata.depth_scale
        self.colour_range = (
            params.colorize_min_depth or metadata.min_depth * self.depth_scale,
            params.colorize_max_depth or metadata.max_depth * self.depth_scale,
        )
        if self.colour_range[1] <= self.colour_range[0]:
            raise ValueError(f"colorize range {self.colour_range} is empty; set colorize_min_depth/max_depth")
        self.palette = palette_lut(metadata.palette, metadata.label_format)
        floor = None
        if params.scale_mode == "floor":
            floor = FloorScaleConfig(
                camera_height=params.camera_height, camera_pitch_deg=params.camera_pitch_deg,
                min_floor_pixels=params.floor_min_pixels, max_tilt_deg=params.floor_max_tilt_deg,
                window=params.floor_window, gate=params.floor_gate, hold_time=params.floor_hold_time,
            )
        self.scaler = DepthScaler(params.scale_mode, self.depth_scale, floor)
        self.stats = NodeStats()
        self._slot = LatestSlot()
        self._camera = None  # latest valid CameraModel from camera_info
        self._failure_streak, self._last_failure = 0, ""  # consecutive failed frames (worker thread)
        self._warned: set[str] = set()

        qos_in = make_qos(params.qos_in_reliability, params.qos_in_depth)
        qos_out = make_qos(params.qos_out_reliability, params.qos_out_depth)
        self._publishers_out = {
            topic: self.create_publisher(message_class(OUTPUTS[topic][1]), topic, qos_out)
            for topic in enabled_outputs(params)
        }
        if params.publish_semantic or params.publish_semantic_colorized:  # latched: late joiners get it too
            self._classes = self.create_publisher(String, SEMANTIC_CLASSES, LATCHED)
            self._classes.publish(String(data=classes_json(
                metadata.class_names, metadata.palette, metadata.label_format, str(params.model_path))))
        if params.use_compressed:
            self.create_subscription(CompressedImage, COMPRESSED_IMAGE, self._on_image, qos_in)
        else:
            self.create_subscription(Image, IMAGE, self._on_image, qos_in)
        if NEEDS_INTRINSICS & self._publishers_out.keys() or params.scale_mode == "floor":
            self.create_subscription(CameraInfo, CAMERA_INFO, self._on_camera_info, qos_in)
        self._diagnostics = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._last_stats = self._last_idle_log = time.monotonic()
        self.create_timer(params.stats_period, self._report_stats)
        self._worker = threading.Thread(target=self._work, name="depth_node_inference", daemon=True)
        self._worker.start()
        net_h, net_w = self.backend.input_size
        source = COMPRESSED_IMAGE if params.use_compressed else IMAGE
        self.get_logger().info(
            f"model {params.model_path} on {self.backend.name} ({self.backend.device}), network input "
            f"{net_w}x{net_h}, depth_scale {self.depth_scale:g} m/unit, in: {source}, "
            f"out: {sorted(self._publishers_out)}"
        )

    # -- executor thread ---------------------------------------------------------------------------
    def _on_image(self, msg) -> None:
        self.stats.count("frames_in")
        if self._slot.put((msg, time.monotonic())):
            self.stats.count("dropped")

    def _on_camera_info(self, msg: CameraInfo) -> None:
        try:
            self._camera = camera_model_from_msg(msg).rectified()
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
            snapshot, self._failure_streak, self.params.max_consecutive_failures, self._last_failure
        )
        last = self.scaler.last
        values = snapshot.values() | {
            "backend": self.backend.name,
            "device": self.backend.device,
            "model": self.params.model_path,
            "depth_scale": f"{self.depth_scale:g}",
            "scale_mode": self.params.scale_mode,
            "scale": f"{last.scale:.6g}",
            "scale_confidence": f"{last.confidence:.3f}",
            "scale_status": "relative (no floor scale yet)" if last.relative else "metric",
        }
        status = DiagnosticStatus(
            level=DIAGNOSTIC_LEVELS[level],
            name=f"{self.get_fully_qualified_name()}: inference",
            message=message,
            hardware_id=self.backend.device,
            values=[KeyValue(key=key, value=value) for key, value in values.items()],
        )
        return DiagnosticArray(header=Header(stamp=self.get_clock().now().to_msg()), status=[status])

    # -- worker thread -----------------------------------------------------------------------------
    def _work(self) -> None:
        while not self._slot.closed:
            item = self._slot.take(timeout=0.5)
            if item is None:
                continue
            try:
                self._process(*item)
                self._failure_streak = 0
            except Exception as error:  # keep serving; the next frame may be fine
                self.stats.count("errors")
                self._failure_streak += 1
                self._last_failure = f"{type(error).__name__}: {error}"
                self.get_logger().error(
                    f"frame dropped, it failed ({self._failure_streak} in a row): {self._last_failure}",
                    throttle_duration_sec=WARN_THROTTLE_S,
                )

    def _process(self, msg, received: float) -> None:
        active = {
            topic: pub for topic, pub in self._publishers_out.items() if pub.get_subscription_count() > 0
        }
        if not active:
            self.stats.count("skipped_no_subscribers")
            return
        try:
            rgb = compressed_msg_to_rgb(msg) if isinstance(msg, CompressedImage) else image_msg_to_rgb(msg)
        except ImageDecodeError as error:
            self.stats.count("malformed")
            self.get_logger().warning(
                f"dropping malformed image (frame_id {msg.header.frame_id!r}): {error}",
                throttle_duration_sec=WARN_THROTTLE_S,
            )
            return
        start = time.perf_counter()
        output_size = rgb.shape[:2] if self.params.output_resolution == "input" else self.backend.input_size
        prediction = self.backend.infer(rgb, output_size)
        self.stats.add_latency("inference_ms", (time.perf_counter() - start) * 1e3)
        if self.params.debug_inference_delay > 0:
            time.sleep(self.params.debug_inference_delay)
        start = time.perf_counter()
        self._publish(msg.header, rgb, prediction, active)
        self.stats.add_latency("outputs_ms", (time.perf_counter() - start) * 1e3)
        self.stats.count("frames_out")
        self.stats.add_latency("node_latency_ms", (time.monotonic() - received) * 1e3)
        stamp_ns = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
        if stamp_ns > 0:
            self.stats.add_latency("end_to_end_ms", (self.get_clock().now().nanoseconds - stamp_ns) * 1e-6)

    def _camera_for(self, image_size: tuple[int, int], width: int, height: int):
        """The latest camera_info scaled to width x height; None (with a warning) if there is none or
        its aspect ratio differs from the images' (a crop or another camera: scaling would be wrong)."""
        camera = self._camera
        if camera is None:
            self._warn_once(
                "no_camera_info",
                "no valid camera_info received yet: the camera_info outputs, points and the floor "
                "scale wait until one arrives",
            )
            return None
        rows, cols = image_size
        if not camera.same_aspect(cols, rows):
            self.get_logger().warning(
                f"camera_info is {camera.width}x{camera.height} but images are {cols}x{rows} (another aspect "
                "ratio): the camera_info outputs, points and the floor scale are not computed",
                throttle_duration_sec=WARN_THROTTLE_S,
            )
            return None
        return camera.scaled_to(width, height)

    def _frame_scale(self, rgb: np.ndarray, prediction, active: dict) -> tuple[float, dict]:
        """The frame's metres per unit, and the outputs to publish (no depth without a floor scale)."""
        height, width = prediction.depth.shape
        camera = self._camera_for(rgb.shape[:2], width, height) if self.params.scale_mode == "floor" else None
        K = camera.K if camera is not None else None
        decision = self.scaler.decide(prediction.depth, prediction.labels, K, time.monotonic())
        if not decision.relative:
            return decision.scale, active
        if self.params.publish_without_scale:
            self.get_logger().warning(
                f"no metric scale from the floor yet ({decision.reason}): publishing RELATIVE depth "
                f"(model scale {decision.scale:g})", throttle_duration_sec=WARN_THROTTLE_S,
            )
            return decision.scale, active
        self.get_logger().warning(
            f"no metric scale from the floor yet ({decision.reason}): depth and points are not published",
            throttle_duration_sec=WARN_THROTTLE_S,
        )
        return decision.scale, {t: p for t, p in active.items() if t not in DEPTH_OUTPUTS}

    def _publish(self, header, rgb: np.ndarray, prediction, active: dict) -> None:
        scale, active = self._frame_scale(rgb, prediction, active)
        depth_m = np.multiply(prediction.depth, np.float32(scale), dtype=np.float32)
        depth_m[~(np.isfinite(depth_m) & (depth_m > 0))] = np.nan
        height, width = depth_m.shape
        images = {}
        if DEPTH in active:
            images[DEPTH] = (depth_m, "32FC1")
        if DEPTH_COLORIZED in active:
            images[DEPTH_COLORIZED] = (colorize_depth(depth_m, *self.colour_range, self.params.colormap), "rgb8")
        if SEMANTIC in active:
            images[SEMANTIC] = (prediction.labels, "mono8")
        if SEMANTIC_COLORIZED in active:  # np.take: 3x faster than fancy indexing
            images[SEMANTIC_COLORIZED] = (np.take(self.palette, prediction.labels, axis=0), "rgb8")
        for topic, (pixels, encoding) in images.items():
            active[topic].publish(fill_image_msg(Image(header=header), pixels, encoding))
        wanted = NEEDS_INTRINSICS & active.keys()
        camera = self._camera_for(rgb.shape[:2], width, height) if wanted else None
        if camera is None:
            return
        info = fill_camera_info_msg(CameraInfo(header=header), camera)
        for topic in wanted - {POINTS}:
            active[topic].publish(info)
        if POINTS in active:
            colours = resize_rgb(rgb, height, width) if self.params.points_rgb else None
            cloud = backproject(depth_m, camera.P, self.params.points_stride, self.params.points_organized, colours)
            active[POINTS].publish(pointcloud_msg(header, cloud))

    def _warn_once(self, key: str, text: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            self.get_logger().warning(text)

    def close(self) -> None:
        """Stop the worker thread (call before ``destroy_node``)."""
        self._slot.close()
        self._worker.join(timeout=5.0)


def main(args: list[str] | None = None) -> int:
    """Entry point of ``depth_node`` / ``python -m gam_depth_ros.node``; returns the exit status."""
    rclpy.init(args=args)
    node = None
    try:
        try:
            node = DepthNode()
        except ValueError as error:
            rclpy.logging.get_logger(NODE_NAME).fatal(f"cannot start: {error}")
            return 1
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.close()
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())

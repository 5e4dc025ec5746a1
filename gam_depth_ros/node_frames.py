"""The depth node's worker thread: take the newest frame, infer, publish. Mixed into ``DepthNodeCore``.

Runs beside the executor thread. Reads the node's state through attributes the core sets
(``settings``, ``backend``, ``scaler``, ``stats``, ``stamps``, ``palette``, ``_slot``, ``_cameras``,
``_publishers_out``, ``_warned``, failure streak); takes ``settings`` once per frame, so a
parameter change applies from the next frame on, never halfway through one.
"""

from __future__ import annotations

import time

import numpy as np
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from gam_depth_ros.camera_model import fill_camera_info_msg
from gam_depth_ros.image_codec import ImageDecodeError, compressed_msg_to_rgb, fill_image_msg, image_msg_to_rgb
from gam_depth_ros.inference.preprocessing import resize_rgb
from gam_depth_ros.node_outputs import image_outputs, metric_depth
from gam_depth_ros.node_params import NodeParams
from gam_depth_ros.node_settings import NodeSettings
from gam_depth_ros.pointcloud import backproject
from gam_depth_ros.ros_messages import pointcloud_msg
from gam_depth_ros.topics import DEPTH_OUTPUTS, NEEDS_INTRINSICS, POINTS

WARN_THROTTLE_S = 5.0


class FrameWorker:
    """Per-frame processing of the depth node (worker thread)."""

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
        settings = self.settings  # one consistent set for the whole frame (a change replaces it)
        active = {
            topic: pub for topic, pub in self._publishers_out.items()
            if topic in settings.enabled and pub.get_subscription_count() > 0
        }  # fmt: skip
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
        params = settings.params
        stamp_ns = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
        self._check_jump_back(stamp_ns, params)
        camera = self._camera_of(stamp_ns, rgb.shape[:2], received) if settings.needs_camera_info else None
        start = time.perf_counter()
        output_size = rgb.shape[:2] if params.output_resolution == "input" else self.backend.input_size
        prediction = self.backend.infer(rgb, output_size)
        self.stats.add_latency("inference_ms", (time.perf_counter() - start) * 1e3)
        if params.debug_inference_delay > 0:
            time.sleep(params.debug_inference_delay)
        start = time.perf_counter()
        self._publish(msg.header, rgb, prediction, camera, active, settings)
        self.stats.add_latency("outputs_ms", (time.perf_counter() - start) * 1e3)
        self.stats.count("frames_out")
        self.stats.add_latency("node_latency_ms", (time.monotonic() - received) * 1e3)
        latency = self.stamps.latency_ms(stamp_ns, self.get_clock().now().nanoseconds)
        if latency is not None:
            self.stats.add_latency("end_to_end_ms", latency)
        else:
            self.get_logger().warning(self.stamps.problem, throttle_duration_sec=WARN_THROTTLE_S)

    def _check_jump_back(self, stamp_ns: int, params: NodeParams) -> None:
        """A stamp earlier than the previous frame's: reset the floor filter (the scene it measured may
        not be the one now) and say so; the frame is still processed and published with its header."""
        seconds = self.stamps.jump_back_s(stamp_ns)
        if seconds <= 0:
            return
        self.stats.count("time_jumps_back")
        self.scaler.reset()
        reset = "; the floor-scale filter starts over" if params.scale_mode == "floor" else ""
        self.get_logger().warning(f"input stamps went back by {seconds:.3f} s (a bag played in a loop, /clock "
                                  f"jumping back or a camera restart){reset}")

    def _camera_of(self, stamp_ns: int, image_size: tuple[int, int], received: float):
        """The camera of this image (:class:`~gam_depth_ros.camera_sync.CameraInfoTracker`), or None
        with a warning saying why: the camera_info outputs, points and the floor scale then wait."""
        rows, cols = image_size
        camera, reason = self._cameras.for_image(stamp_ns, cols, rows, received)
        if camera is None and reason.startswith("no valid camera_info"):
            self._warn_once("no_camera_info", f"{reason}: the camera_info outputs, points and the floor "
                                              "scale wait until one arrives")
        elif camera is None:
            self.get_logger().warning(f"{reason}: the camera_info outputs, points and the floor scale are not "
                                      "computed for this image", throttle_duration_sec=WARN_THROTTLE_S)
        return camera

    def _frame_scale(self, prediction, camera, active: dict, params: NodeParams) -> tuple[float, dict]:
        """The frame's metres per unit, and the outputs to publish (no depth without a floor scale)."""
        height, width = prediction.depth.shape
        K = camera.scaled_to(width, height).K if camera is not None and params.scale_mode == "floor" else None
        decision = self.scaler.decide(prediction.depth, prediction.labels, K, time.monotonic())
        if not decision.relative:
            return decision.scale, active
        if params.publish_without_scale:
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

    def _publish(self, header, rgb: np.ndarray, prediction, camera, active: dict, settings: NodeSettings) -> None:
        params = settings.params
        scale, active = self._frame_scale(prediction, camera, active, params)
        depth_m = metric_depth(prediction.depth, scale)
        height, width = depth_m.shape
        images = image_outputs(
            active.keys(), depth_m, prediction.labels, settings.colour_range, params.colormap, self.palette
        )
        for topic, (pixels, encoding) in images.items():
            active[topic].publish(fill_image_msg(Image(header=header), pixels, encoding))
        wanted = NEEDS_INTRINSICS & active.keys()
        if not wanted or camera is None:
            return
        camera = camera.scaled_to(width, height)
        info = fill_camera_info_msg(CameraInfo(header=header), camera)
        for topic in wanted - {POINTS}:
            active[topic].publish(info)
        if POINTS in active:
            colours = resize_rgb(rgb, height, width) if params.points_rgb else None
            cloud = backproject(depth_m, camera.P, params.points_stride, params.points_organized, colours)
            active[POINTS].publish(pointcloud_msg(header, cloud))

    def _warn_once(self, key: str, text: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            self.get_logger().warning(text)

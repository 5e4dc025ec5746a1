"""Helpers for tests that talk to ``depth_node`` over real DDS: the node start-up and DDS isolation of
``bench/ros_process.py`` (re-exported here) plus test images and waiting.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

sys.path.append(str(Path(__file__).resolve().parents[1] / "bench"))  # appended: bench/ modules never shadow others

from ros_process import (  # noqa: F401 - re-exported for the tests
    REPO,
    SHM_PROFILE,
    ClientNode,
    configure_process,
    node_log,
    ros_env,
    start_node,
    stop_node,
    test_domain_id,
)


def smooth_image(height: int, width: int, seed: int) -> np.ndarray:
    """[H, W, 3] uint8 test picture: gradients plus blocks (compresses well, varies enough)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.meshgrid(np.linspace(0, 1, height), np.linspace(0, 1, width), indexing="ij")
    blocks = np.kron(rng.random((height // 8 + 1, width // 8 + 1, 3)), np.ones((8, 8, 1)))[:height, :width]
    image = 0.5 * np.stack([xx, yy, 1 - xx * yy], axis=2) + 0.5 * blocks
    return np.clip(image * 255, 0, 255).astype(np.uint8)


def encode_raw(
    rgb: np.ndarray, encoding: str, padding: int = 0, seed: int = 0
) -> tuple[bytes, int, np.ndarray]:
    """Pack an RGB picture as ``encoding`` with ``padding`` garbage bytes per row.

    Returns (data, step, expected) where ``expected`` is the [H, W, 3] RGB the node should see
    (alpha dropped, mono replicated; for ``bayer_rggb8`` and ``yuv422`` (UYVY, grey: U = V = 128)
    what OpenCV decodes from the packed samples, the decoders' colours being tested in
    test_node_modules).
    """
    rng = np.random.default_rng(seed)
    alpha = rng.integers(0, 256, rgb.shape[:2] + (1,), dtype=np.uint8)
    grey = rgb[:, :, 1:2]
    mosaic = rgb[:, :, 1].copy()
    mosaic[0::2, 0::2], mosaic[1::2, 1::2] = rgb[0::2, 0::2, 0], rgb[1::2, 1::2, 2]  # R G / G B cells
    uyvy = np.full(rgb.shape[:2] + (2,), 128, np.uint8)
    uyvy[:, :, 1] = rgb[:, :, 1]  # U Y0 V Y1: every second byte is a luma sample
    pixels = {
        "rgb8": rgb,
        "bgr8": rgb[:, :, ::-1],
        "rgba8": np.concatenate([rgb, alpha], axis=2),
        "bgra8": np.concatenate([rgb[:, :, ::-1], alpha], axis=2),
        "mono8": grey,
        "bayer_rggb8": mosaic[:, :, None],
        "yuv422": uyvy,
    }[encoding]
    expected = {
        "mono8": lambda: np.repeat(grey, 3, axis=2),
        "bayer_rggb8": lambda: cv2.cvtColor(mosaic, cv2.COLOR_BayerBG2RGB),
        "yuv422": lambda: cv2.cvtColor(uyvy, cv2.COLOR_YUV2RGB_UYVY),
    }.get(encoding, lambda: rgb)()
    height, width, channels = pixels.shape
    rows = pixels.reshape(height, width * channels)
    if padding:
        rows = np.concatenate([rows, np.full((height, padding), 0xAB, np.uint8)], axis=1)
    return np.ascontiguousarray(rows).tobytes(), width * channels + padding, expected


def wait_until(executor, predicate, timeout: float, step: float = 0.02) -> bool:
    """Spin ``executor`` until ``predicate()`` is true or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        executor.spin_once(timeout_sec=step)
    return bool(predicate())


class NodeClient:
    """A test participant beside one depth node: publishes images, camera_info and /clock with chosen
    stamps; keeps ``depth/image`` and ``depth/camera_info`` by stamp (ns) and the node's diagnostics as
    ``(level, message, values)``."""

    def __init__(self, domain: int, ns: str, name: str = "test_client") -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from rosgraph_msgs.msg import Clock
        from sensor_msgs.msg import CameraInfo, Image

        from gam_depth_ros import topics

        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self.ns, self.domain = ns, domain
        self._client = ClientNode(domain, name)
        self.node, self.executor = self._client.node, self._client.executor
        self.depth: dict[int, Image] = {}
        self.depth_info: dict[int, CameraInfo] = {}
        self.diagnostics: list[tuple[int, str, dict]] = []
        self.node.create_subscription(Image, f"{ns}/{topics.DEPTH}", self._keep(self.depth), reliable)
        self.node.create_subscription(CameraInfo, f"{ns}/{topics.DEPTH_CAMERA_INFO}", self._keep(self.depth_info),
                                      reliable)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, reliable)
        self.image = self.node.create_publisher(Image, f"{ns}/image", reliable)
        self.info = self.node.create_publisher(CameraInfo, f"{ns}/camera_info", reliable)
        self.clock = self.node.create_publisher(Clock, "/clock", reliable)

    @staticmethod
    def _keep(store: dict):
        return lambda msg: store.__setitem__(msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec, msg)

    def _on_diagnostics(self, msg) -> None:
        for status in msg.status:
            if status.name.startswith(self.ns):
                level = status.level
                level = int.from_bytes(level, "little") if isinstance(level, bytes) else int(level)
                self.diagnostics.append((level, status.message, {kv.key: kv.value for kv in status.values}))

    @staticmethod
    def header(stamp_ns: int, frame_id: str = "cam"):
        from builtin_interfaces.msg import Time
        from std_msgs.msg import Header

        return Header(frame_id=frame_id, stamp=Time(sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9))

    @staticmethod
    def camera_info(stamp_ns: int, width: int, height: int, focal: float):
        """A pinhole camera_info: ``focal`` px, principal point at the centre."""
        from sensor_msgs.msg import CameraInfo

        cx, cy = (width - 1) / 2, (height - 1) / 2
        return CameraInfo(header=NodeClient.header(stamp_ns), width=width, height=height,
                          k=[focal, 0.0, cx, 0.0, focal, cy, 0.0, 0.0, 1.0])

    def send(self, stamp_ns: int, rgb: np.ndarray | None = None, encoding: str = "rgb8", info=None,
             wait_for=("depth",), timeout: float = 15.0):
        """Publish an image with ``stamp_ns`` (and ``info`` first, when given), again each second, until
        every store in ``wait_for`` (``depth``, ``depth_info``) has that stamp; the depth message."""
        from sensor_msgs.msg import Image

        rgb = smooth_image(48, 64, seed=stamp_ns % 1000) if rgb is None else rgb
        data, step, _ = encode_raw(rgb, encoding)
        image = Image(header=self.header(stamp_ns), height=rgb.shape[0], width=rgb.shape[1], encoding=encoding,
                      step=step, data=data)
        stores = [getattr(self, name) for name in wait_for]
        for _ in range(int(timeout)):
            if info is not None:
                self.info.publish(info)
            self.image.publish(image)
            if wait_until(self.executor, lambda: all(stamp_ns in store for store in stores), 1.0):
                return self.depth.get(stamp_ns)
        raise AssertionError(f"no {wait_for} for stamp {stamp_ns}")

    def next_diagnostics(self, timeout: float = 5.0, until=None) -> tuple[int, str, dict]:
        """The first diagnostics the node publishes after this call; with ``until(level, message, values)``,
        the first of those it accepts. A message the node sent before the frames just exchanged can still
        arrive after them (DDS orders each topic alone), so a test waiting for what those frames changed
        says what it waits for."""
        seen = len(self.diagnostics)

        def accepted():
            return [entry for entry in self.diagnostics[seen:] if until is None or until(*entry)]

        assert wait_until(self.executor, lambda: bool(accepted()), timeout), \
            f"no {'' if until is None else 'such '}diagnostics in {timeout} s: {self.diagnostics[seen:]}"
        return accepted()[0] if until is not None else self.diagnostics[-1]

    def spin(self, seconds: float) -> None:
        wait_until(self.executor, lambda: False, seconds)

    def close(self) -> None:
        self._client.close()


def assert_stopped_cleanly(process) -> None:
    """SIGINT the node subprocess and check it exited with status 0; the message says which status
    (-9: still running 10 s after SIGINT, killed) beside the node's log."""
    status = stop_node(process)
    assert status == 0, f"node exit status {status} (-9: killed, still running 10 s after SIGINT)\n{node_log(process)}"


@pytest.fixture()
def run_node(tmp_path, small_model):
    """``run_node(**params) -> (process, NodeClient)``: a depth node on the small test model (reliable
    input, statistics every 0.3 s, no points unless asked) with a client beside it; all stopped after
    the test, each node's exit status checked. ``small_model`` comes from conftest.py."""
    started = []

    def start(**params):
        domain = configure_process(tmp_path / "ros_log")
        ns = f"/n{os.getpid()}_{len(started)}"
        process = start_node({"model_path": str(small_model.onnx), "threads": 1, "stats_period": 0.3,
                              "qos_in_reliability": "reliable", "publish_points": False} | params,
                             tmp_path, ns, name=f"node{len(started)}")
        client = NodeClient(domain, ns)
        started.append((process, client))
        assert wait_until(client.executor, lambda: client.image.get_subscription_count() > 0, 30.0), \
            node_log(process)
        return process, client

    yield start
    for process, client in started:
        client.close()
        assert_stopped_cleanly(process)

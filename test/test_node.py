"""End-to-end tests of ``depth_node`` over real DDS (rclpy, Fast DDS, two processes).

Two node processes run for the whole module with a small random ONNX model (64x96 input):

- node A (``<ns>/a``): raw ``image`` in, outputs at the input resolution, metadata depth scale,
  points every 2nd pixel with rgb; ``debug_inference_delay`` 0.1 s so that a burst of frames
  overlaps one inference;
- node B (``<ns>/b``): ``image/compressed`` in, outputs at the network resolution, depth_scale
  3.5 by parameter, organised points without rgb.

Expected values come from the same backend run in this process on the same pixels (one thread
on both sides, so the numbers are identical) and from intrinsics scaled by hand.
"""

from __future__ import annotations

import io
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from PIL import Image as PilImage
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from ros_helpers import (
    REPO,
    configure_process,
    encode_raw,
    node_log,
    ros_env,
    smooth_image,
    start_node,
    stop_node,
    wait_until,
)
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2

from gam_depth_ros import topics
from gam_depth_ros.colorize import colorize_depth
from gam_depth_ros.image_codec import fill_image_msg, image_msg_to_array
from gam_depth_ros.inference import create_backend
from gam_depth_ros.metadata import read_metadata

NS = f"/gdt{os.getpid()}"
NODE_A, NODE_B = f"{NS}/a", f"{NS}/b"
DELAY_A = 0.1
SCALE_B = 3.5
OUTPUT_TYPES = {topic: {"Image": Image, "CameraInfo": CameraInfo, "PointCloud2": PointCloud2}[kind.split("/")[-1]]
                for topic, (_, kind) in topics.OUTPUTS.items()}
# The camera: calibrated at 640x480; test images are 4:3 at smaller sizes. K is the raw camera's,
# P the rectified image's (as image_proc publishes them): the node's outputs follow P.
CAMERA = {"width": 640, "height": 480, "fx": 520.0, "fy": 515.0, "cx": 318.2, "cy": 241.7}
RECTIFIED = {"fx": 416.0, "fy": 412.0, "cx": 322.4, "cy": 236.9}
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


def stamp_key(header) -> tuple[int, int, str]:
    return header.stamp.sec, header.stamp.nanosec, header.frame_id


@dataclass
class Ros:
    """This process's rclpy side: one node, its executor, the latest diagnostics per status name."""

    node: object
    executor: SingleThreadedExecutor
    diagnostics: dict = field(default_factory=dict)  # name -> (values, arrival count)
    arrivals: int = 0

    def on_diagnostics(self, msg: DiagnosticArray) -> None:
        self.arrivals += 1
        for status in msg.status:
            self.diagnostics[status.name] = ({kv.key: kv.value for kv in status.values}, self.arrivals)

    def spin_until(self, predicate, timeout: float) -> bool:
        return wait_until(self.executor, predicate, timeout)

    def fresh_diagnostics(self, node_name: str, timeout: float = 5.0) -> dict[str, str]:
        """Values of the first diagnostics of ``node_name`` published after this call."""
        name = f"{node_name}/depth_node: inference"
        seen = self.arrivals
        assert self.spin_until(lambda: self.diagnostics.get(name, ({}, 0))[1] > seen, timeout), (
            f"no diagnostics from {name}; have {sorted(self.diagnostics)}"
        )
        return self.diagnostics[name][0]

    def new_header(self, frame_id: str):
        from std_msgs.msg import Header

        return Header(stamp=self.node.get_clock().now().to_msg(), frame_id=frame_id)


class Outputs:
    """Subscriptions to every output of one node, messages kept by (stamp, frame_id)."""

    def __init__(self, ros: Ros, namespace: str) -> None:
        self.ros, self.namespace = ros, namespace
        self.msgs: dict[str, dict] = {topic: {} for topic in OUTPUT_TYPES}
        self.subscriptions: list = []
        self.open()

    def open(self) -> None:
        node = self.ros.node
        for topic, msg_type in OUTPUT_TYPES.items():
            callback = partial(self._store, topic)
            self.subscriptions.append(
                node.create_subscription(msg_type, f"{self.namespace}/{topic}", callback, RELIABLE)
            )
        assert self.ros.spin_until(lambda: all(s.get_publisher_count() > 0 for s in self.subscriptions), 10.0)

    def close(self) -> None:
        for subscription in self.subscriptions:
            self.ros.node.destroy_subscription(subscription)
        self.subscriptions = []

    def _store(self, topic: str, msg) -> None:
        self.msgs[topic][stamp_key(msg.header)] = msg

    def complete(self, key) -> bool:
        return all(key in by_key for by_key in self.msgs.values())

    def of(self, key) -> dict:
        return {topic: by_key[key] for topic, by_key in self.msgs.items()}


def camera_info_msg(header) -> CameraInfo:
    c, p = CAMERA, RECTIFIED
    return CameraInfo(
        header=header, width=c["width"], height=c["height"], distortion_model="plumb_bob",
        d=[0.1, -0.2, 0.001, 0.002, 0.0],
        k=[c["fx"], 0.0, c["cx"], 0.0, c["fy"], c["cy"], 0.0, 0.0, 1.0],
        r=[0.9998, -0.02, 0.0, 0.02, 0.9998, 0.0, 0.0, 0.0, 1.0],
        p=[p["fx"], 0.0, p["cx"], 0.0, 0.0, p["fy"], p["cy"], 0.0, 0.0, 0.0, 1.0, 0.0],
    )  # fmt: skip


def expected_intrinsics(width: int, height: int) -> tuple[float, float, float, float]:
    """(fx, fy, cx, cy) of the rectified camera (P) resized to width x height, pixel centres at
    integer coordinates."""
    sx, sy = width / CAMERA["width"], height / CAMERA["height"]
    p = RECTIFIED
    return p["fx"] * sx, p["fy"] * sy, (p["cx"] + 0.5) * sx - 0.5, (p["cy"] + 0.5) * sy - 0.5


@pytest.fixture(scope="module")
def ros(tmp_path_factory):
    domain = configure_process(tmp_path_factory.mktemp("ros_log"))
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain)
    node = rclpy.create_node("depth_node_test", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    state = Ros(node, executor)
    node.create_subscription(DiagnosticArray, "/diagnostics", state.on_diagnostics, RELIABLE)
    yield state
    executor.shutdown()
    node.destroy_node()
    rclpy.try_shutdown(context=context)


@pytest.fixture(scope="module")
def nodes(ros, small_model, tmp_path_factory):
    folder = tmp_path_factory.mktemp("nodes")
    common = {"model_path": str(small_model.onnx), "threads": 1, "stats_period": 0.5}
    node_a = start_node({**common, "debug_inference_delay": DELAY_A}, folder, NODE_A, name="a")
    node_b = start_node(
        {**common, "use_compressed": True, "output_resolution": "network", "depth_scale": SCALE_B,
         "points_organized": True, "points_rgb": False},
        folder, NODE_B, name="b",
    )  # fmt: skip
    try:
        for name, process in ((NODE_A, node_a), (NODE_B, node_b)):
            assert process.poll() is None, node_log(process)
            ros.fresh_diagnostics(name, timeout=30.0)
        yield {"a": node_a, "b": node_b}
    finally:
        codes = {name: stop_node(process) for name, process in (("a", node_a), ("b", node_b))}
    assert codes == {"a": 0, "b": 0}, f"nodes did not exit cleanly: {codes}\n{node_log(node_a)}"


@pytest.fixture(scope="module")
def reference(small_model):
    """The node's backend, in this process."""
    return create_backend("onnxruntime", small_model.onnx, threads=1)


@pytest.fixture(scope="module")
def io_a(ros, nodes):
    image = ros.node.create_publisher(Image, f"{NODE_A}/image", RELIABLE)
    info = ros.node.create_publisher(CameraInfo, f"{NODE_A}/camera_info", RELIABLE)
    outputs = Outputs(ros, NODE_A)
    assert ros.spin_until(
        lambda: image.get_subscription_count() > 0 and info.get_subscription_count() > 0, 10.0
    )
    return image, info, outputs


@pytest.fixture(scope="module")
def io_b(ros, nodes):
    image = ros.node.create_publisher(CompressedImage, f"{NODE_B}/image/compressed", RELIABLE)
    info = ros.node.create_publisher(CameraInfo, f"{NODE_B}/camera_info", RELIABLE)
    outputs = Outputs(ros, NODE_B)
    assert ros.spin_until(
        lambda: image.get_subscription_count() > 0 and info.get_subscription_count() > 0, 10.0
    )
    return image, info, outputs


def request(ros: Ros, image_pub, info_pub, outputs: Outputs, msg, timeout: float = 15.0) -> dict:
    """Publish camera_info + ``msg`` (again every second) until every output for it arrived."""
    key = stamp_key(msg.header)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info_pub.publish(camera_info_msg(msg.header))
        ros.executor.spin_once(timeout_sec=0.01)
        image_pub.publish(msg)
        if ros.spin_until(lambda: outputs.complete(key), 1.0):
            return outputs.of(key)
    missing = [topic for topic, by_key in outputs.msgs.items() if key not in by_key]
    raise AssertionError(f"no output on {missing} for frame {key}")


def check_header(outputs: dict, header) -> None:
    for topic, msg in outputs.items():
        assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (header.stamp.sec, header.stamp.nanosec), (
            topic
        )
        assert msg.header.frame_id == header.frame_id, topic


def check_camera_info(outputs: dict, width: int, height: int) -> None:
    """Every image's camera_info: the rectified camera (P) at the published size, zero distortion."""
    fx, fy, cx, cy = expected_intrinsics(width, height)
    for topic in (t for t in topics.OUTPUTS if t.endswith("camera_info")):
        info = outputs[topic]
        assert (info.width, info.height) == (width, height), topic
        np.testing.assert_allclose(info.k, [fx, 0, cx, 0, fy, cy, 0, 0, 1], rtol=0, atol=1e-9)
        np.testing.assert_allclose(info.p, [fx, 0, cx, 0, 0, fy, cy, 0, 0, 0, 1, 0], rtol=0, atol=1e-9)
        np.testing.assert_array_equal(info.r, np.eye(3).ravel())
        assert list(info.d) == [0.0] * 5 and info.distortion_model == "plumb_bob", topic
        assert (info.binning_x, info.binning_y, info.roi.width) == (0, 0, 0)


def depth_image_proc_xyz(depth_msg: Image, info: CameraInfo) -> np.ndarray:
    """depth_image_proc's point_cloud_xyz (``convertDepth`` for 32FC1) on a published depth and
    camera_info: an organised [H, W, 3] cloud, NaN where the depth is NaN.

    image_geometry's PinholeCameraModel takes fx, fy, cx, cy from P; the C++ computes in float:
    ``x = (u - center_x) * depth * constant_x`` with ``constant_x = 1 / fx``.
    """
    depth = image_msg_to_array(depth_msg).astype(np.float32)
    center_x, center_y = np.float32(info.p[2]), np.float32(info.p[6])
    constant_x, constant_y = np.float32(1.0 / info.p[0]), np.float32(1.0 / info.p[5])
    v, u = np.mgrid[0 : depth.shape[0], 0 : depth.shape[1]].astype(np.float32)
    return np.stack([(u - center_x) * depth * constant_x, (v - center_y) * depth * constant_y, depth], axis=2)


def check_points(cloud: PointCloud2, depth_m: np.ndarray, rgb: np.ndarray | None, organized: bool) -> None:
    """Fields, layout and a few points back-projected by hand (stride 2, all depths valid)."""
    names = ["x", "y", "z"] + (["rgb"] if rgb is not None else [])
    assert [(f.name, f.offset, f.datatype, f.count) for f in cloud.fields] == [
        (name, 4 * i, 7, 1) for i, name in enumerate(names)
    ]
    rows, cols = math.ceil(depth_m.shape[0] / 2), math.ceil(depth_m.shape[1] / 2)
    assert cloud.point_step == 4 * len(names)
    assert (cloud.height, cloud.width) == ((rows, cols) if organized else (1, rows * cols))
    assert cloud.row_step == cloud.point_step * cloud.width and not cloud.is_bigendian and cloud.is_dense
    dtype = np.dtype({"names": names, "formats": ["<f4", "<f4", "<f4", "<u4"][: len(names)]})
    points = np.frombuffer(bytes(cloud.data), dtype=dtype)
    assert points.size == rows * cols
    fx, fy, cx, cy = expected_intrinsics(depth_m.shape[1], depth_m.shape[0])
    for index in (0, 1, cols + 3, points.size // 2, points.size - 1):
        v, u = 2 * (index // cols), 2 * (index % cols)
        z = depth_m[v, u]
        point = points[index]
        np.testing.assert_allclose(
            [point["x"], point["y"], point["z"]],
            [(u - cx) * z / fx, (v - cy) * z / fy, z],
            rtol=1e-5,
            atol=1e-6,
        )
        if rgb is not None:
            r, g, b = (int(c) for c in rgb[v, u])
            assert int(point["rgb"]) == (r << 16) | (g << 8) | b


def check_images(
    outputs: dict, reference, rgb: np.ndarray, size: tuple[int, int], scale: float
) -> np.ndarray:
    """Depth, semantic and colorized outputs against the backend run here; returns the depth."""
    height, width = size
    expected = reference.infer(rgb, size)
    depth_msg = outputs[topics.DEPTH]
    assert (depth_msg.encoding, depth_msg.width, depth_msg.height, depth_msg.step) == (
        "32FC1",
        width,
        height,
        4 * width,
    )
    depth_m = image_msg_to_array(depth_msg)
    assert np.isfinite(depth_m).all()
    assert np.abs(depth_m - expected.depth * np.float32(scale)).max() <= 1e-5
    assert depth_m.std() > 0  # the random network's output varies over the image
    semantic = outputs[topics.SEMANTIC]
    assert (semantic.encoding, semantic.width, semantic.height) == ("mono8", width, height)
    np.testing.assert_array_equal(image_msg_to_array(semantic), expected.labels)
    for topic in (topics.DEPTH_COLORIZED, topics.SEMANTIC_COLORIZED):
        msg = outputs[topic]
        assert (msg.encoding, msg.width, msg.height, msg.step) == ("rgb8", width, height, 3 * width), topic
    metadata = reference.metadata
    np.testing.assert_array_equal(
        image_msg_to_array(outputs[topics.DEPTH_COLORIZED]),
        colorize_depth(depth_m, metadata.min_depth * scale, metadata.max_depth * scale, "turbo"),
    )
    palette = np.asarray(metadata.palette, dtype=np.uint8)
    np.testing.assert_array_equal(image_msg_to_array(outputs[topics.SEMANTIC_COLORIZED]), palette[expected.labels])
    return depth_m


def test_no_subscribers_no_inference(ros, nodes, io_a):
    image_pub, info_pub, outputs = io_a
    outputs.close()
    topics = [f"{NODE_A}/{topic}" for topic in OUTPUT_TYPES]
    assert ros.spin_until(lambda: all(ros.node.count_subscribers(t) == 0 for t in topics), 10.0)
    ros.spin_until(lambda: False, 0.5)  # let the node see the subscriptions go, too
    before = ros.fresh_diagnostics(NODE_A)
    for _ in range(5):
        image_pub.publish(raw_msg(ros, "no_subscribers"))
        ros.spin_until(lambda: False, 2 * DELAY_A)
    ros.spin_until(lambda: False, 0.3)
    after = ros.fresh_diagnostics(NODE_A)
    outputs.open()
    frames_in = int(after["frames_in"]) - int(before["frames_in"])
    assert frames_in >= 3
    assert int(after["skipped_no_subscribers"]) - int(before["skipped_no_subscribers"]) == frames_in
    assert after["frames_out"] == before["frames_out"]


RAW_CASES = [
    ("rgb8", 0, (120, 160)),
    ("bgr8", 0, (96, 128)),
    ("rgba8", 0, (72, 96)),
    ("bgra8", 0, (48, 64)),
    ("mono8", 0, (72, 96)),
    ("rgb8", 5, (48, 64)),
    ("bgr8", 3, (72, 96)),
    ("bgra8", 8, (48, 64)),
    ("mono8", 3, (96, 128)),
    ("bayer_rggb8", 4, (72, 96)),
    ("yuv422", 6, (48, 64)),
]


@pytest.mark.parametrize(("encoding", "padding", "size"), RAW_CASES)
def test_raw_image(ros, io_a, reference, small_model, encoding, padding, size):
    image_pub, info_pub, outputs = io_a
    height, width = size
    rgb = smooth_image(height, width, seed=height + padding)
    data, step, seen_rgb = encode_raw(rgb, encoding, padding)
    msg = Image(header=ros.new_header(f"cam_{encoding}_{padding}"), height=height, width=width,
                encoding=encoding, step=step, data=data)  # fmt: skip
    result = request(ros, image_pub, info_pub, outputs, msg)
    check_header(result, msg.header)
    scale = read_metadata(small_model.onnx).depth_scale  # node A: depth_scale 0.0 = from metadata
    depth_m = check_images(result, reference, seen_rgb, size, scale)
    check_camera_info(result, width, height)
    check_points(result[topics.POINTS], depth_m, seen_rgb, organized=False)


@pytest.mark.parametrize("node", ["a", "b"])
def test_points_equal_depth_image_proc_from_published_camera_info(ros, io_a, io_b, node):
    """points == depth_image_proc's point_cloud_xyz on the published depth/image + depth/camera_info
    (node A: valid points only, with rgb; node B: organised, network resolution), stride 2."""
    image_pub, info_pub, outputs = io_a if node == "a" else io_b
    rgb = smooth_image(96, 128, seed=21)
    header = ros.new_header(f"dip_{node}")
    if node == "a":
        msg = fill_image_msg(Image(header=header), rgb, "rgb8")
    else:
        buffer = io.BytesIO()
        PilImage.fromarray(rgb).save(buffer, format="PNG")
        msg = CompressedImage(header=header, format="png", data=buffer.getvalue())
    result = request(ros, image_pub, info_pub, outputs, msg)
    info = result[topics.DEPTH_CAMERA_INFO]
    assert list(info.d) == [0.0] * 5 and info.p[0] != CAMERA["fx"] * info.width / CAMERA["width"]  # P, not K
    expected = depth_image_proc_xyz(result[topics.DEPTH], info)[::2, ::2]
    cloud = result[topics.POINTS]
    names = [f.name for f in cloud.fields]
    dtype = np.dtype({"names": names, "formats": ["<f4"] * len(names)})
    points = np.frombuffer(bytes(cloud.data), dtype=dtype)
    xyz = np.stack([points["x"], points["y"], points["z"]], axis=1)
    if node == "b":
        assert (cloud.height, cloud.width) == expected.shape[:2]
        np.testing.assert_allclose(xyz, expected.reshape(-1, 3), rtol=1e-5, atol=1e-6, equal_nan=True)
    else:
        valid = expected.reshape(-1, 3)
        valid = valid[np.isfinite(valid[:, 2])]
        np.testing.assert_allclose(xyz, valid, rtol=1e-5, atol=1e-6)


def test_class_names_and_palette_on_a_latched_topic(ros, nodes, small_model):
    """semantic/classes reaches a subscriber that joins long after the node published it."""
    from rclpy.qos import DurabilityPolicy
    from std_msgs.msg import String

    latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    received = []
    subscription = ros.node.create_subscription(String, f"{NODE_B}/{topics.SEMANTIC_CLASSES}", received.append, latched)
    try:
        assert ros.spin_until(lambda: bool(received), 10.0), "no latched class description"
    finally:
        ros.node.destroy_subscription(subscription)
    description = json.loads(received[0].data)
    metadata = read_metadata(small_model.onnx)
    assert description["label_format"] == metadata.label_format == "zero-based"
    assert [c["id"] for c in description["classes"]] == list(range(metadata.num_classes))
    assert [c["name"] for c in description["classes"]] == list(metadata.class_names)
    assert [tuple(c["color"]) for c in description["classes"]] == list(metadata.palette)
    assert description["model"] == str(small_model.onnx) and description["unknown_id"] is None


def test_best_effort_camera_is_served(ros, io_a):
    _, info_pub, outputs = io_a
    camera = ros.node.create_publisher(Image, f"{NODE_A}/image", qos_profile_sensor_data)
    try:
        assert ros.spin_until(lambda: camera.get_subscription_count() > 0, 10.0)
        msg = raw_msg(ros, "best_effort_cam", 120, 160)
        result = request(ros, camera, info_pub, outputs, msg)
        check_header(result, msg.header)
    finally:
        ros.node.destroy_publisher(camera)


@pytest.mark.parametrize("fmt", ["jpeg", "png"])
def test_compressed_image_network_resolution(ros, io_b, reference, fmt):
    image_pub, info_pub, outputs = io_b
    buffer = io.BytesIO()
    PilImage.fromarray(smooth_image(96, 128, seed=3)).save(buffer, format=fmt.upper())
    msg = CompressedImage(header=ros.new_header(f"cam_{fmt}"), format=fmt, data=buffer.getvalue())
    result = request(ros, image_pub, info_pub, outputs, msg)
    check_header(result, msg.header)
    decoded = np.asarray(PilImage.open(io.BytesIO(buffer.getvalue())).convert("RGB"))
    size = reference.input_size  # output_resolution: network
    depth_m = check_images(result, reference, decoded, size, SCALE_B)
    check_camera_info(result, size[1], size[0])
    check_points(result[topics.POINTS], depth_m, None, organized=True)


def test_latest_frame_only(ros, io_a):
    """Frames arriving during an inference replace each other: only the newest is processed."""
    image_pub, info_pub, outputs = io_a
    request(ros, image_pub, info_pub, outputs, raw_msg(ros, "warmup"))  # camera_info known, node idle
    before = ros.fresh_diagnostics(NODE_A)
    keys = []
    start = time.monotonic()
    for i in range(6):
        msg = raw_msg(ros, f"burst{i}")
        keys.append(stamp_key(msg.header))
        image_pub.publish(msg)
        ros.spin_until(lambda: False, 0.01)
    burst_s = time.monotonic() - start
    assert ros.spin_until(lambda: outputs.complete(keys[-1]), 10.0), "the newest frame was not processed"
    ros.spin_until(lambda: False, 2 * DELAY_A)
    after = ros.fresh_diagnostics(NODE_A)
    processed = [key for key in keys if key in outputs.msgs[topics.DEPTH]]
    # One frame per inference the burst overlapped: the first, then the newest at the end of each
    # inference. Six 10 ms spins fit in one DELAY_A (2 frames); beside a training run on the 2 cores the
    # burst once took 0.124 s, and 3 of the 6 frames were rightly processed.
    allowed = 1 + math.ceil(burst_s / DELAY_A)
    assert len(processed) <= allowed, f"a queue built up: {len(processed)} of 6 frames processed in {burst_s:.3f} s"
    assert int(after["dropped"]) - int(before["dropped"]) >= len(keys) - len(processed) - 1
    assert int(after["frames_in"]) - int(before["frames_in"]) >= 5


def raw_msg(ros: Ros, frame_id: str, height: int = 48, width: int = 64) -> Image:
    data, step, _ = encode_raw(smooth_image(height, width, seed=11), "rgb8")
    return Image(
        header=ros.new_header(frame_id), height=height, width=width, encoding="rgb8", step=step, data=data
    )


def test_malformed_image_is_dropped(ros, nodes, io_a):
    image_pub, info_pub, outputs = io_a
    before = ros.fresh_diagnostics(NODE_A)
    bad = raw_msg(ros, "malformed")
    bad.data = bytes(100)  # 48 rows x 192 bytes expected
    image_pub.publish(bad)
    ros.spin_until(lambda: False, 3 * DELAY_A)
    good = raw_msg(ros, "after_malformed")
    request(ros, image_pub, info_pub, outputs, good)
    after = ros.fresh_diagnostics(NODE_A)
    assert int(after["malformed"]) - int(before["malformed"]) == 1
    assert stamp_key(bad.header) not in outputs.msgs[topics.DEPTH]
    assert nodes["a"].poll() is None
    assert "dropping malformed image" in node_log(nodes["a"]) and "data has 100 bytes" in node_log(nodes["a"])


def run_node_once(tmp_path, **params) -> subprocess.CompletedProcess:
    import yaml

    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump({"/**/depth_node": {"ros__parameters": params}}))
    env = {**os.environ, **ros_env(tmp_path / "ros_log")}
    command = [sys.executable, "-m", "gam_depth_ros.node", "--ros-args", "--params-file", str(params_file)]
    return subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=60)


def test_missing_or_corrupt_model_exits_with_error(tmp_path, small_model):
    missing = tmp_path / "missing.onnx"
    result = run_node_once(tmp_path, model_path=str(missing))
    assert result.returncode == 1 and str(missing) in result.stderr and "does not exist" in result.stderr
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"not an onnx model")
    corrupt.with_suffix(".json").write_text(small_model.onnx.with_suffix(".json").read_text())
    result = run_node_once(tmp_path, model_path=str(corrupt))
    assert result.returncode == 1 and str(corrupt) in result.stderr, result.stderr
    result = run_node_once(tmp_path, model_path=str(small_model.onnx), output_resolution="double")
    assert result.returncode == 1 and "output_resolution='double'" in result.stderr, result.stderr

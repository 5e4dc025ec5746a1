"""Fuzzing depth_node over real DDS: > 1000 malformed messages interleaved with valid frames.

Two node processes (raw ``image`` in, ``image/compressed`` in) each get rounds of malformed
messages (random and wrong encodings, ``step`` too small, data shorter or longer than
``step x height``, zero and absurd sizes, garbage, truncated and bomb-sized JPEG/PNG, CameraInfo
with zeros, NaN, inf or another size), then one valid frame whose outputs must arrive, be correct
and carry its header. At the end: the nodes are alive and exit cleanly, published nothing for a bad
stamp, counted the bad images as malformed (or replaced in the one-frame slot), and logged them
rate-limited. The figures are printed (``pytest -s``) for the reliability report.
"""

from __future__ import annotations

import io
import os
import re
import struct
import time
import zlib

import numpy as np
import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from PIL import Image as PilImage
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy
from ros_helpers import configure_process, node_log, smooth_image, start_node, stop_node, wait_until
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header

from gam_depth_ros import topics
from gam_depth_ros.image_codec import fill_image_msg, image_msg_to_array
from gam_depth_ros.inference import create_backend

RELIABLE = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
ROUNDS, BAD_PER_ROUND = 36, 16  # 2 nodes x 36 x 16 = 1152 malformed images, plus 72 CameraInfo
H, W = 48, 64


def header(sec: int, nanosec: int) -> Header:
    h = Header(frame_id="fuzz")
    h.stamp.sec, h.stamp.nanosec = sec, nanosec
    return h


def bad_raw(rng: np.random.Generator, h: Header) -> Image:
    kind = int(rng.integers(7))
    msg = Image(header=h, height=H, width=W, encoding="rgb8", step=3 * W)
    data = rng.integers(0, 256, 3 * W * H, dtype=np.uint8)
    if kind == 0:
        msg.encoding = str(rng.choice(["nv21", "16UC1", "32FC1", "", "rgb9", "bayer_rggb16", "\x00\xff"]))
    elif kind == 1:
        msg.step = int(rng.integers(0, 3 * W))  # too small
    elif kind == 2:
        data = data[: int(rng.integers(0, data.size))]  # shorter
    elif kind == 3:
        data = np.concatenate([data, data[: int(rng.integers(1, 500))]])  # longer
    elif kind == 4:
        msg.height, msg.width = 0, int(rng.choice([0, W]))  # zero size
    elif kind == 5:
        msg.height, msg.width, msg.step = 100_000, 100_000, 300_000  # absurd size, tiny data
        data = data[:64]
    else:
        msg.height, msg.width, msg.step = 2**31 - 1, 2**31 - 1, 2**32 - 1  # overflowing products
        data = data[:16]
    msg.data = data.tobytes()
    return msg


def png_bomb(width: int, height: int) -> bytes:
    """A valid PNG header declaring ``width x height`` with a few bytes of (too short) data."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body


def bad_compressed(rng: np.random.Generator, h: Header, good_png: bytes, good_jpeg: bytes) -> CompressedImage:
    kind = int(rng.integers(5))
    if kind == 0:
        data, fmt = rng.integers(0, 256, int(rng.integers(0, 3000)), dtype=np.uint8).tobytes(), "jpeg"
    elif kind == 1:
        data, fmt = good_jpeg[: int(rng.integers(0, len(good_jpeg) // 2))], "jpeg"  # truncated
    elif kind == 2:
        data, fmt = good_png[: int(rng.integers(8, len(good_png) - 1))], "png"  # truncated
    elif kind == 3:
        data, fmt = png_bomb(100_000, 100_000), "png"  # decompression bomb
    else:
        data, fmt = good_png, "16UC1; compressedDepth png"  # a depth stream, not a camera image
    return CompressedImage(header=h, format=fmt, data=data)


def bad_info(rng: np.random.Generator, h: Header) -> CameraInfo:
    value = float(rng.choice([0.0, np.nan, np.inf, -np.inf]))
    return CameraInfo(header=h, width=int(rng.choice([0, W, 4 * W, 7])), height=int(rng.choice([0, H, 9])),
                      k=[value, 0.0, W / 2, 0.0, value, H / 2, 0.0, 0.0, 1.0])


class Harness:
    def __init__(self, node, executor, ns: str, compressed: bool) -> None:
        self.ns, self.compressed = ns, compressed
        self.outputs: dict[tuple[int, int], Image] = {}
        self.image = node.create_publisher(CompressedImage if compressed else Image,
                                           f"{ns}/image/compressed" if compressed else f"{ns}/image", RELIABLE)
        self.info = node.create_publisher(CameraInfo, f"{ns}/camera_info", RELIABLE)
        node.create_subscription(Image, f"{ns}/{topics.DEPTH}", self._store, RELIABLE)
        assert wait_until(executor, lambda: self.image.get_subscription_count() > 0, 30.0)

    def _store(self, msg: Image) -> None:
        self.outputs[(msg.header.stamp.sec, msg.header.stamp.nanosec)] = msg


def test_fuzzed_inputs_never_crash_hang_or_leak_into_outputs(tmp_path, small_model):
    domain = configure_process(tmp_path / "ros_log")
    ns = f"/fuzz{os.getpid()}"
    common = {"model_path": str(small_model.onnx), "threads": 1, "stats_period": 0.5, "qos_in_reliability": "reliable",
              "qos_in_depth": 100, "qos_out_depth": 20, "publish_points": False, "publish_depth_colorized": False,
              "publish_semantic_colorized": False}
    processes = {"raw": start_node(common, tmp_path, f"{ns}/raw", name="raw"),
                 "compressed": start_node({**common, "use_compressed": True}, tmp_path, f"{ns}/compressed",
                                          name="compressed")}
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain)
    node = rclpy.create_node("fuzzer", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    totals: dict[str, dict[str, str]] = {}
    node.create_subscription(DiagnosticArray, "/diagnostics", lambda m: totals.update(
        {s.name.split("/")[2]: {kv.key: kv.value for kv in s.values} for s in m.status if s.name.startswith(ns)}),
        RELIABLE)
    rng = np.random.default_rng(2024)
    reference = create_backend("onnxruntime", small_model.onnx, threads=1)
    scale = reference.metadata.depth_scale
    sent_bad = {"raw": 0, "compressed": 0}
    answered, wrong, started = 0, 0, time.monotonic()
    try:
        harnesses = {name: Harness(node, executor, f"{ns}/{name}", name == "compressed") for name in processes}
        for round_index in range(ROUNDS):
            rgb = smooth_image(H, W, round_index)
            buffer = io.BytesIO()
            PilImage.fromarray(rgb).save(buffer, format="PNG")
            good_png = buffer.getvalue()
            buffer = io.BytesIO()
            PilImage.fromarray(rgb).save(buffer, format="JPEG", quality=90)
            good_jpeg = buffer.getvalue()
            for name, harness in harnesses.items():
                for k in range(BAD_PER_ROUND):
                    h = header(1, round_index * 1000 + k + 1)  # bad stamps: sec 1
                    bad = bad_compressed(rng, h, good_png, good_jpeg) if harness.compressed else bad_raw(rng, h)
                    harness.image.publish(bad)
                    sent_bad[name] += 1
                    if k % 8 == 0:
                        harness.info.publish(bad_info(rng, h))
                    time.sleep(0.002)
                good_header = header(2, round_index)  # valid stamps: sec 2
                if harness.compressed:
                    harness.image.publish(CompressedImage(header=good_header, format="png", data=good_png))
                else:
                    harness.image.publish(fill_image_msg(Image(header=good_header), rgb, "rgb8"))
                key = (2, round_index)
                assert wait_until(executor, lambda h=harness, key=key: key in h.outputs, 20.0), (
                    f"{name} node did not answer valid frame {round_index} (hang?)\n"
                    f"{node_log(processes[name])[-3000:]}")
                answered += 1
                depth = image_msg_to_array(harness.outputs[key])
                expected = reference.infer(rgb, (H, W)).depth * scale
                if depth.shape != (H, W) or not np.allclose(depth, expected, rtol=1e-5, atol=1e-5) or \
                        harness.outputs[key].header.frame_id != "fuzz":
                    wrong += 1
        wait_until(executor, lambda: False, 1.2)  # a last diagnostics period
        leaked = [k for h in harnesses.values() for k in h.outputs if k[0] == 1]
        alive = {name: p.poll() is None for name, p in processes.items()}
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown(context=context)
        codes = {name: stop_node(p) for name, p in processes.items()}
    logs = {name: node_log(p) for name, p in processes.items()}
    log_lines = {name: len(re.findall(r"dropping malformed image", text)) for name, text in logs.items()}
    seconds = time.monotonic() - started
    counts = {n: (t.get("malformed"), t.get("dropped")) for n, t in totals.items()}
    print(f"\nfuzz: {sum(sent_bad.values())} malformed images + {ROUNDS * 2 * BAD_PER_ROUND // 8} bad CameraInfo, "
          f"{answered} valid frames answered, {wrong} wrong, {len(leaked)} outputs for bad frames, crashes "
          f"{sum(not a for a in alive.values())}, exit codes {codes}, malformed-log lines {log_lines}, "
          f"node (malformed, dropped) totals {counts}, {seconds:.0f} s")
    assert sum(sent_bad.values()) >= 1000
    assert all(alive.values()) and codes == {"raw": 0, "compressed": 0}
    assert answered == 2 * ROUNDS and wrong == 0 and not leaked
    for name in processes:
        # Every message reached the node (reliable, deep history) and every bad one is accounted for:
        # decoded and refused (malformed), or replaced in the one-frame slot before decoding (dropped).
        assert int(totals[name]["frames_in"]) == sent_bad[name] + ROUNDS, (name, totals[name])
        assert int(totals[name]["malformed"]) + int(totals[name]["dropped"]) == sent_bad[name], (name, totals[name])
        assert int(totals[name]["frames_out"]) == ROUNDS
        assert 0 < log_lines[name] < sent_bad[name] / 10  # logged, and rate-limited
        assert "Traceback" not in logs[name]


@pytest.mark.parametrize("size", [(0, 0), (100_000, 100_000)])
def test_decoder_refuses_absurd_sizes_without_allocating(size):
    from gam_depth_ros.image_codec import ImageDecodeError, raw_to_rgb

    with pytest.raises(ImageDecodeError, match="invalid image size"):
        raw_to_rgb(size[0], size[1], "rgb8", 3 * size[1], b"\x00" * 64)

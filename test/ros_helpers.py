"""Helpers for tests that talk to ``depth_node`` over real DDS: the node start-up and DDS isolation of
``bench/ros_process.py`` (re-exported here) plus test images and waiting.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.append(str(Path(__file__).resolve().parents[1] / "bench"))  # appended: bench/ modules never shadow others

from ros_process import (  # noqa: E402, F401 - re-exported for the tests
    REPO,
    SHM_PROFILE,
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
    (alpha dropped, mono replicated).
    """
    rng = np.random.default_rng(seed)
    alpha = rng.integers(0, 256, rgb.shape[:2] + (1,), dtype=np.uint8)
    grey = rgb[:, :, 1:2]
    pixels = {
        "rgb8": rgb,
        "bgr8": rgb[:, :, ::-1],
        "rgba8": np.concatenate([rgb, alpha], axis=2),
        "bgra8": np.concatenate([rgb[:, :, ::-1], alpha], axis=2),
        "mono8": grey,
    }[encoding]
    expected = np.repeat(grey, 3, axis=2) if encoding == "mono8" else rgb
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

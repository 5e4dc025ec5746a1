"""Helpers for tests (and the node benchmark) that talk to ``depth_node`` over real DDS.

Isolation: every test process picks its own ROS domain (``GAM_TEST_ROS_DOMAIN_ID`` or one derived
from the pid), restricts discovery to this machine, logs into a temporary folder and uses the
package's Fast DDS shared-memory profile; :func:`ros_env` returns the same settings for the node
subprocesses. Topic namespaces carry the pid too, so two runs that land on the same domain still
do not see each other's topics.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
SHM_PROFILE = REPO / "config" / "fastdds_shm.xml"


def test_domain_id() -> int:
    """This process's ROS domain: ``GAM_TEST_ROS_DOMAIN_ID`` or 1..100 from the pid."""
    return int(os.environ.get("GAM_TEST_ROS_DOMAIN_ID", 0)) or 1 + os.getpid() % 100


def ros_env(log_dir: Path, shm_profile: bool = True) -> dict[str, str]:
    """Environment variables for DDS isolation (see the module docstring)."""
    env = {
        "ROS_DOMAIN_ID": str(test_domain_id()),
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",  # Jazzy and newer (Humble: ROS_LOCALHOST_ONLY=1)
        "ROS_LOG_DIR": str(log_dir),
        "PYTHONUNBUFFERED": "1",
    }
    if shm_profile:
        env["FASTDDS_DEFAULT_PROFILES_FILE"] = str(SHM_PROFILE)
        env["FASTRTPS_DEFAULT_PROFILES_FILE"] = str(SHM_PROFILE)
    return env


def configure_process(log_dir: Path, shm_profile: bool = True) -> int:
    """Apply :func:`ros_env` to this process (before its first DDS participant); return the domain."""
    if not shm_profile:
        os.environ.pop("FASTDDS_DEFAULT_PROFILES_FILE", None)
        os.environ.pop("FASTRTPS_DEFAULT_PROFILES_FILE", None)
    os.environ.update(ros_env(log_dir, shm_profile))
    return test_domain_id()


def start_node(
    params: dict,
    folder: Path,
    namespace: str = "",
    shm_profile: bool = True,
    name: str = "node",
) -> subprocess.Popen:
    """Start ``python -m gam_depth_ros.node`` with ``params`` in a params file; output to a log file."""
    folder.mkdir(parents=True, exist_ok=True)
    params_file = folder / f"{name}_params.yaml"
    params_file.write_text(yaml.safe_dump({"/**/depth_node": {"ros__parameters": params}}))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FASTDDS_", "FASTRTPS_"))}
    env.update(ros_env(folder / "ros_log", shm_profile))
    command = [sys.executable, "-m", "gam_depth_ros.node", "--ros-args", "--params-file", str(params_file)]
    if namespace:
        command += ["-r", f"__ns:={namespace}"]
    log = open(folder / f"{name}.log", "wb")  # noqa: SIM115 - closed by stop_node
    process = subprocess.Popen(command, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    process.log_path = folder / f"{name}.log"  # type: ignore[attr-defined]
    process.log_file = log  # type: ignore[attr-defined]
    return process


def stop_node(process: subprocess.Popen, timeout: float = 10.0) -> int:
    """SIGINT, then SIGKILL after ``timeout``; return the exit status."""
    if process.poll() is None:
        process.send_signal(2)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    process.log_file.close()  # type: ignore[attr-defined]
    return process.returncode


def node_log(process: subprocess.Popen) -> str:
    return Path(process.log_path).read_text(errors="replace")  # type: ignore[attr-defined]


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

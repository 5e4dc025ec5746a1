"""Starting ``depth_node`` and isolating DDS, shared by the benchmarks and the tests.

Isolation: every process picks its own ROS domain (``GAM_TEST_ROS_DOMAIN_ID`` or one derived from
the pid), restricts discovery to this machine, logs into a temporary folder and uses the package's
Fast DDS shared-memory profile; :func:`ros_env` returns the same settings for node subprocesses.
Topic namespaces carry the pid too, so two runs that land on the same domain still do not see each
other's topics. ``bench/`` owns this module so that benchmarks never import ``test/``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml

from gam_depth_ros.evaluation.live import stop_node  # noqa: F401 - one implementation, re-exported

REPO = Path(__file__).resolve().parents[1]
SHM_PROFILE = REPO / "config" / "fastdds_shm.xml"


def camera_pictures(count: int = 8, height: int = 480, width: int = 640) -> list[np.ndarray]:
    """Smooth ``[height, width, 3]`` uint8 test pictures with 32 px colour blocks (varied, decodable), the
    same every call: the frames the node benchmarks publish."""
    rng = np.random.default_rng(0)
    yy, xx = np.meshgrid(np.linspace(0, 1, height), np.linspace(0, 1, width), indexing="ij")
    out = []
    for _ in range(count):
        blocks = np.kron(rng.random((height // 32, width // 32, 3)), np.ones((32, 32, 1)))
        out.append(np.clip((0.5 * np.stack([xx, yy, 1 - xx * yy], 2) + 0.5 * blocks) * 255, 0, 255).astype(np.uint8))
    return out


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
    module: str = "gam_depth_ros.node",
) -> subprocess.Popen:
    """Start ``python -m <module>`` (the node, or ``gam_depth_ros.lifecycle_node``) with ``params`` in a
    params file; output to a log file."""
    folder.mkdir(parents=True, exist_ok=True)
    params_file = folder / f"{name}_params.yaml"
    params_file.write_text(yaml.safe_dump({"/**/depth_node": {"ros__parameters": params}}))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FASTDDS_", "FASTRTPS_"))}
    env.update(ros_env(folder / "ros_log", shm_profile))
    command = [sys.executable, "-m", module, "--ros-args", "--params-file", str(params_file)]
    if namespace:
        command += ["-r", f"__ns:={namespace}"]
    log = open(folder / f"{name}.log", "wb")  # noqa: SIM115 - closed by stop_node
    process = subprocess.Popen(command, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    process.log_path = folder / f"{name}.log"  # type: ignore[attr-defined]
    process.log_file = log  # type: ignore[attr-defined]
    return process


def node_log(process: subprocess.Popen) -> str:
    return Path(process.log_path).read_text(errors="replace")  # type: ignore[attr-defined]


class ClientNode:
    """A node of this process in its own rclpy context on ``domain``, with a single-threaded executor
    (a benchmark's feeder or a test's client beside a node subprocess); :meth:`close` tears it down."""

    def __init__(self, domain: int, name: str) -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor

        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)

    def close(self) -> None:
        import rclpy

        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)

"""The package builds with colcon and pip, installs launch and config files, and keeps its layering."""

from __future__ import annotations

import ast
import subprocess
import sys
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# What share/ must hold (runtime files only) and what must stay out of it (training configs, the
# demo's safetensors checkpoint, evaluation scores).
SHARED_FILES = sorted(
    [f"launch/{p.name}" for p in (ROOT / "launch").glob("*.launch.py")]
    + ["config/depth.yaml", "config/fastdds_shm.xml", "config/gam_depth.rviz", "config/foxglove_layout.json"]
    + ["models/demo/gam_depth_demo.onnx", "models/demo/gam_depth_demo.json"]
)
NOT_SHARED = sorted(
    {f"config/{p.name}" for p in (ROOT / "config").iterdir()} - set(SHARED_FILES)
    | {f"models/demo/{p.name}" for p in (ROOT / "models" / "demo").iterdir()} - set(SHARED_FILES)
)
# ROS client libraries imported by name; message/service packages are found by their .msg/.srv imports.
ROS_LIBRARIES = {"rclpy", "ament_index_python", "launch", "launch_ros"}
ROS_INTERFACE_KINDS = ("msg", "srv", "action")


def test_colcon_builds_and_installs_launch_and_config(tmp_path):
    colcon = BIN / "colcon"
    if not colcon.exists():
        pytest.skip("colcon is not installed in this environment (make venv installs it)")
    result = subprocess.run(
        [str(colcon), "--log-base", str(tmp_path / "log"), "build", "--base-paths", str(ROOT),
         "--build-base", str(tmp_path / "build"), "--install-base", str(tmp_path / "install")],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 package finished" in result.stdout
    prefix = tmp_path / "install" / "gam_depth_ros"
    share = prefix / "share" / "gam_depth_ros"
    assert (prefix / "share/ament_index/resource_index/packages/gam_depth_ros").is_file()
    assert (share / "package.xml").is_file()
    for relative in SHARED_FILES:
        assert (share / relative).is_file(), relative
    assert "config/train_nyu.yaml" in NOT_SHARED and "models/demo/gam_depth_demo.safetensors" in NOT_SHARED
    for relative in NOT_SHARED:
        assert not (share / relative).exists(), relative
    for script in ("depth_node", "depth_lifecycle_node", "gam-depth-export", "gam-depth-bag-eval"):
        assert (prefix / "lib" / "gam_depth_ros" / script).is_file(), script
    site = next(prefix.glob("lib/python3*/site-packages"))
    assert (site / "gam_depth_ros" / "inference" / "onnx_backend.py").is_file()
    assert not (site / "training").exists()  # the robot's install holds no generic 'training' module


def test_pip_wheel_holds_package_and_data(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-q", "-w",
         str(tmp_path)], capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    (wheel,) = tmp_path.glob("gam_depth_ros-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    data = "gam_depth_ros-0.1.0.data/data/share/gam_depth_ros/"
    for relative in SHARED_FILES:
        assert data + relative in names
    for relative in NOT_SHARED:
        assert data + relative not in names
    assert "gam_depth_ros/networks/resnet.py" in names
    assert not any(n.startswith("training/") for n in names)


def _imported_modules(path: Path) -> set[str]:
    """Dotted names of the absolute imports of ``path`` (``import a.b``, ``from a.b import c``: ``a.b``)."""
    tree = ast.parse(path.read_text(), str(path))
    modules = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module)
    return modules


def _ros_packages(modules: set[str]) -> set[str]:
    """The ROS packages among dotted module names: client libraries and message/service packages."""
    packages = set()
    for module in modules:
        parts = module.split(".")
        if parts[0] in ROS_LIBRARIES or (len(parts) > 1 and parts[1] in ROS_INTERFACE_KINDS):
            packages.add(parts[0])
    return packages


def test_runtime_never_imports_training_and_declares_its_ros_dependencies():
    imported = set()
    for path in [*(ROOT / "gam_depth_ros").rglob("*.py"), *(ROOT / "launch").glob("*.py")]:
        modules = _imported_modules(path)
        assert "training" not in {m.split(".")[0] for m in modules}, f"{path} imports training/"
        imported |= modules
    ros_packages = _ros_packages(imported)
    # Found, not assumed: what the node, the lifecycle node and the launch file import.
    assert {"rclpy", "rcl_interfaces", "sensor_msgs", "diagnostic_msgs", "launch_ros"} <= ros_packages
    manifest = ET.parse(ROOT / "package.xml").getroot()
    assert manifest.get("format") == "3" and manifest.findtext("name") == "gam_depth_ros"
    exec_depends = {e.text for e in manifest.findall("exec_depend")}
    assert ros_packages <= exec_depends, f"missing from package.xml: {sorted(ros_packages - exec_depends)}"
    assert "lifecycle_msgs" in exec_depends  # rclpy.lifecycle's services, which lifecycle managers call
    assert {"python3-numpy", "python3-yaml", "python3-opencv"} <= exec_depends
    # image work is OpenCV's (what JetPack and apt give a robot); Pillow is for training and tests only
    assert "cv2" in {m.split(".")[0] for m in imported} and "PIL" not in {m.split(".")[0] for m in imported}
    runtime = (ROOT / "requirements" / "runtime.txt").read_text().lower()
    assert "opencv-python-headless" in runtime and "pillow" not in runtime
    assert "python3-pytest" in {e.text for e in manifest.findall("test_depend")}
    assert manifest.find("export/build_type").text == "ament_python"


def test_requirements_pin_torch_and_never_name_torchvision():
    texts = {p.name: p.read_text() for p in (ROOT / "requirements").glob("*.txt")}
    assert "torch==2.13.0" in texts["training.txt"]
    assert not any("torchvision" in t for t in texts.values())
    assert "make test" in (ROOT / ".ci" / "run").read_text()

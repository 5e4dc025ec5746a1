"""ament_python build of gam_depth_ros (colcon on a ROS 2 install, or pip in a plain venv).

Only the runtime package is installed; ``training/`` stays in the repository so that a robot's
install space holds no generically named ``training`` module, and share/ gets only runtime files.
"""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "gam_depth_ros"
# What a robot needs in share/: the node's parameters, the DDS profile, viewer layouts and the demo
# model (ONNX + metadata). Training configs and the demo's safetensors checkpoint stay in the repository.
RUNTIME_CONFIGS = ["config/depth.yaml", "config/fastdds_shm.xml", "config/gam_depth.rviz",
                   "config/foxglove_layout.json"]
DEMO_MODEL_FILES = ["models/demo/gam_depth_demo.onnx", "models/demo/gam_depth_demo.json"]

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", RUNTIME_CONFIGS),
        (f"share/{PACKAGE}/models/demo", DEMO_MODEL_FILES),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="gam_depth_ros maintainers",
    maintainer_email="gam-depth-ros@example.com",
    description="Monocular depth and semantics for indoor robots (GAM-Depth), ONNX/TensorRT inference node.",
    license="Apache-2.0",
    python_requires=">=3.10",
    entry_points={
        "console_scripts": [
            "depth_node = gam_depth_ros.node:main",
            "depth_lifecycle_node = gam_depth_ros.lifecycle_node:main",
            "gam-depth-export = gam_depth_ros.export:main",
            "gam-depth-build-engine = gam_depth_ros.inference.tensorrt_engine:main",
            "gam-depth-bag-eval = gam_depth_ros.evaluation.bag_eval:main",
        ],
    },
)

"""Where the shipped demo model lives, for a node started without ``model_path``.

The demo model (compact GAM-Depth trained on the project's synthetic indoor video, see
docs/training.md) is in ``models/demo/`` of the source tree and is installed to
``share/gam_depth_ros/models/demo/``. It is for trying the node; a robot should run a model
fine-tuned on its own building (README, "Adapting to your building").
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = "gam_depth_ros"
DEMO_MODEL_FILE = "gam_depth_demo.onnx"
SOURCE_TREE_DEMO_MODEL = Path(__file__).resolve().parents[1] / "models" / "demo" / DEMO_MODEL_FILE


def shipped_demo_model() -> Path | None:
    """The demo model's ONNX file: the installed package's share folder first, then the source tree; None if neither."""
    candidates = []
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

        try:
            candidates.append(Path(get_package_share_directory(PACKAGE)) / "models" / "demo" / DEMO_MODEL_FILE)
        except (PackageNotFoundError, OSError):  # not installed, or no AMENT_PREFIX_PATH (a source checkout)
            pass
    except ImportError:  # plain Python use without the ROS index
        pass
    candidates.append(SOURCE_TREE_DEMO_MODEL)
    return next((path for path in candidates if path.is_file()), None)

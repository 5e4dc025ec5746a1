"""The shipped viewer layouts (config/gam_depth.rviz, config/foxglove_layout.json) parse and show only
topics that depth_node publishes, each in a display that fits its message type."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from gam_depth_ros import topics

CONFIG = Path(__file__).resolve().parents[1] / "config"
# Global topics the node publishes besides its per-frame outputs.
PUBLISHED = {f"/{topic}": kind for topic, (_, kind) in topics.OUTPUTS.items()} | {
    f"/{topics.SEMANTIC_CLASSES}": "std_msgs/msg/String",
    "/diagnostics": "diagnostic_msgs/msg/DiagnosticArray",
}
RVIZ_DISPLAY_TYPES = {
    "rviz_default_plugins/Image": topics.IMAGE_TYPE,
    "rviz_default_plugins/PointCloud2": topics.POINTS_TYPE,
}


def _rviz_displays(node) -> list[dict]:
    """Every display of an RViz config, groups included."""
    found = []
    for display in node.get("Displays", []):
        found.append(display)
        found += _rviz_displays(display)
    return found


def test_rviz_config_shows_published_topics_in_fitting_displays():
    config = yaml.safe_load((CONFIG / "gam_depth.rviz").read_text())
    displays = _rviz_displays(config["Visualization Manager"])
    shown = {}
    for display in displays:
        if "Topic" in display:
            topic = display["Topic"]["Value"]
            assert topic in PUBLISHED, f"{display['Name']}: {topic} is not published by depth_node"
            assert RVIZ_DISPLAY_TYPES[display["Class"]] == PUBLISHED[topic], display["Name"]
            shown[topic] = display
    assert set(shown) == {"/points", "/depth/colorized/image", "/semantic/colorized/image"}
    # The node publishes best-effort-compatible reliable outputs; keep-last 1 never queues old frames.
    assert all(d["Topic"]["Depth"] == 1 for d in shown.values())
    assert shown["/points"]["Color Transformer"] == "RGB8"  # points_rgb: packed rgb field


def test_foxglove_layout_shows_published_topics():
    layout = json.loads((CONFIG / "foxglove_layout.json").read_text())
    panels = layout["configById"]
    used = []
    for panel_id, panel in panels.items():
        kind = panel_id.split("!")[0]
        if kind == "Image":
            image, calibration = panel["imageMode"]["imageTopic"], panel["imageMode"]["calibrationTopic"]
            assert PUBLISHED.get(image) == topics.IMAGE_TYPE, image
            # image_transport layout: the camera_info beside the image describes exactly that image.
            assert calibration == image.rsplit("/", 1)[0] + "/camera_info" and calibration in PUBLISHED
            used += [image, calibration]
        elif kind == "3D":
            assert all(PUBLISHED.get(t) == topics.POINTS_TYPE for t in panel["topics"]), panel["topics"]
            used += list(panel["topics"])
        elif kind == "DiagnosticSummary":
            used.append(panel["topicToRender"])
        elif kind == "RawMessages":
            used.append(panel["topicPath"])
    assert set(used) <= set(PUBLISHED), set(used) - set(PUBLISHED)
    assert {"/points", "/depth/colorized/image", "/semantic/colorized/image", "/diagnostics"} <= set(used)

    def leaves(node) -> list[str]:
        return [node] if isinstance(node, str) else leaves(node["first"]) + leaves(node["second"])

    assert sorted(leaves(layout["layout"])) == sorted(panels)  # every panel placed once, none missing

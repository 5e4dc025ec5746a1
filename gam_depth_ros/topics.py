"""Topic names of ``depth_node``'s outputs, laid out the way image_transport expects.

An image_transport consumer of the image topic ``<ns>/X`` looks for its intrinsics on
``<ns>/camera_info`` (``depth_image_proc``, RViz's Camera and DepthCloud displays, Foxglove). So
every image output sits in a namespace of its own beside a camera_info with the intrinsics of
exactly that image: ``depth/image`` + ``depth/camera_info``, ``depth/colorized/image`` +
``depth/colorized/camera_info``, ``semantic/image`` + ``semantic/camera_info``,
``semantic/colorized/image`` + ``semantic/colorized/camera_info``. All names are relative, so a
node namespace or remapping moves them. Plain Python: the node, the evaluation tools, the
benchmarks and the tests share these names.
"""

from __future__ import annotations

DEPTH = "depth/image"
DEPTH_CAMERA_INFO = "depth/camera_info"
DEPTH_COLORIZED = "depth/colorized/image"
DEPTH_COLORIZED_CAMERA_INFO = "depth/colorized/camera_info"
SEMANTIC = "semantic/image"
SEMANTIC_CAMERA_INFO = "semantic/camera_info"
SEMANTIC_COLORIZED = "semantic/colorized/image"
SEMANTIC_COLORIZED_CAMERA_INFO = "semantic/colorized/camera_info"
POINTS = "points"
#: Latched (transient-local) JSON description of the label ids: names, palette, convention.
SEMANTIC_CLASSES = "semantic/classes"

IMAGE = "image"
COMPRESSED_IMAGE = "image/compressed"
CAMERA_INFO = "camera_info"

IMAGE_TYPE = "sensor_msgs/msg/Image"
CAMERA_INFO_TYPE = "sensor_msgs/msg/CameraInfo"
POINTS_TYPE = "sensor_msgs/msg/PointCloud2"

#: Every per-frame output: topic -> (the ``publish_*`` switches that must all be true, message type).
#: A camera_info is published beside each published image (``publish_camera_info``).
OUTPUTS: dict[str, tuple[tuple[str, ...], str]] = {
    DEPTH: (("publish_depth",), IMAGE_TYPE),
    DEPTH_CAMERA_INFO: (("publish_depth", "publish_camera_info"), CAMERA_INFO_TYPE),
    DEPTH_COLORIZED: (("publish_depth_colorized",), IMAGE_TYPE),
    DEPTH_COLORIZED_CAMERA_INFO: (("publish_depth_colorized", "publish_camera_info"), CAMERA_INFO_TYPE),
    SEMANTIC: (("publish_semantic",), IMAGE_TYPE),
    SEMANTIC_CAMERA_INFO: (("publish_semantic", "publish_camera_info"), CAMERA_INFO_TYPE),
    SEMANTIC_COLORIZED: (("publish_semantic_colorized",), IMAGE_TYPE),
    SEMANTIC_COLORIZED_CAMERA_INFO: (("publish_semantic_colorized", "publish_camera_info"), CAMERA_INFO_TYPE),
    POINTS: (("publish_points",), POINTS_TYPE),
}
#: The outputs computed from depth (withheld in floor mode until the floor gives a scale).
DEPTH_OUTPUTS = frozenset({DEPTH, DEPTH_CAMERA_INFO, DEPTH_COLORIZED, DEPTH_COLORIZED_CAMERA_INFO, POINTS})
#: Outputs that need the input camera_info.
NEEDS_INTRINSICS = frozenset(topic for topic, (_, kind) in OUTPUTS.items() if kind != IMAGE_TYPE)


def enabled_outputs(params) -> list[str]:
    """The output topics whose switches are all on in ``params`` (a :class:`NodeParams`)."""
    return [topic for topic, (switches, _) in OUTPUTS.items() if all(getattr(params, s) for s in switches)]

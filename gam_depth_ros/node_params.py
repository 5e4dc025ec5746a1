"""The depth node's parameters: one typed, frozen object, declared with descriptors, validated once.

:class:`NodeParams` is plain Python (tests and tools use it without ROS); :func:`declare_and_read`
declares every field on an rclpy node with its type, description and constraints, reads the values
given on the command line or in a params file, and validates them. Most parameters can be changed
while the node runs (``ros2 param set``): :func:`with_changes` validates a change as a whole. The
others are read once at start; each says why (:data:`READ_ONLY`), and a change is rejected with
that reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

from gam_depth_ros.colorize import COLORMAPS
from gam_depth_ros.demo_model import shipped_demo_model
from gam_depth_ros.inference import BACKENDS

RELIABILITIES = ("best_effort", "reliable", "system_default")
SCALE_MODES = ("fixed", "floor")
OUTPUT_RESOLUTIONS = ("input", "network")


# Why the parameters that cannot change at run time cannot (shown on a rejected change).
_MODEL = "the model is loaded once at start: restart the node (lifecycle node: cleanup, then configure)"
_QOS = "QoS is fixed when the publishers and subscriptions are created: restart the node"


def _param(
    default,
    description: str,
    choices: tuple[str, ...] = (),
    minimum: float | None = None,
    read_only: str = "",
):
    """A :class:`NodeParams` field; ``read_only`` is the reason it cannot change while the node runs."""
    return field(
        default=default,
        metadata={"description": description, "choices": choices, "minimum": minimum, "read_only": read_only},
    )


@dataclass(frozen=True)
class NodeParams:
    """Every parameter of ``depth_node``; field names are the ROS parameter names."""

    model_path: str = _param(
        "",
        "Model file: .onnx (with its .json metadata beside it) or a .pt/.safetensors checkpoint. "
        "Empty: the shipped demo model (trained on synthetic rooms; for trying the node).",
        read_only=_MODEL,
    )
    backend: str = _param(
        "auto", "Inference backend; auto picks ONNX Runtime for .onnx, torch for checkpoints.", BACKENDS,
        read_only=_MODEL,
    )
    threads: int = _param(0, "CPU threads of the backend; 0 lets the backend decide.", minimum=0, read_only=_MODEL)
    depth_scale: float = _param(
        0.0, "Metres per network depth unit; 0 takes depth_scale from the model metadata.", minimum=0.0
    )
    scale_mode: str = _param(
        "fixed",
        "Metres per network unit: fixed (depth_scale) or floor (estimated online from the floor and camera_height; "
        "needs camera_info).",
        SCALE_MODES,
    )
    camera_height: float = _param(0.0, "floor mode: height of the camera's optical centre above the floor (m).",
                                  minimum=0.0)
    camera_pitch_deg: float = _param(0.0, "floor mode: downward pitch of the camera in degrees (positive looks down).")
    floor_min_pixels: int = _param(300, "floor mode: fewer floor pixels in a frame give no measurement.", minimum=3)
    floor_max_tilt_deg: float = _param(
        25.0, "floor mode: reject floor planes tilted more than this from the expected up direction.", minimum=0.0
    )
    floor_window: int = _param(15, "floor mode: accepted measurements in the running median.", minimum=1)
    floor_gate: float = _param(
        0.15, "floor mode: measurements further than this from the estimate (|ln ratio|) are outliers.", minimum=0.001
    )
    floor_min_agreeing: int = _param(
        3, "floor mode: measurements that must agree (within floor_gate) before a scale is given.", minimum=1
    )
    floor_hold_time: float = _param(
        5.0, "floor mode: seconds over which a held scale's confidence decays (1/e) without measurements.",
        minimum=0.001,
    )
    publish_without_scale: bool = _param(
        False,
        "floor mode, before the first valid scale: false publishes no depth, true publishes relative depth "
        "(model scale) with a warning.",
    )
    output_resolution: str = _param(
        "input", "Resolution of all image outputs: the input image's or the network's.", OUTPUT_RESOLUTIONS
    )
    use_compressed: bool = _param(
        False, "Subscribe to image/compressed (JPEG/PNG) instead of image.",
        read_only="the image subscription's message type is chosen at start: restart the node",
    )
    publish_depth: bool = _param(True, "Publish depth/image (32FC1, metres, NaN where invalid).")
    publish_camera_info: bool = _param(
        True,
        "Publish <ns>/camera_info beside every published image (depth, depth/colorized, semantic, "
        "semantic/colorized): the rectified intrinsics of that image (needs camera_info in).",
    )
    publish_depth_colorized: bool = _param(True, "Publish depth/colorized/image (rgb8).")
    publish_semantic: bool = _param(True, "Publish semantic/image (mono8 class ids).")
    publish_semantic_colorized: bool = _param(True, "Publish semantic/colorized/image (rgb8 class palette).")
    publish_points: bool = _param(True, "Publish points (PointCloud2; needs camera_info in).")
    colormap: str = _param("turbo", "Colormap of depth/colorized/image.", COLORMAPS)
    colorize_min_depth: float = _param(
        0.0,
        "Depth (m) at the low end of the colormap; 0: the model's minimum depth times depth_scale.",
        minimum=0.0,
    )
    colorize_max_depth: float = _param(
        0.0,
        "Depth (m) at the high end of the colormap; 0: the model's maximum depth times depth_scale.",
        minimum=0.0,
    )
    points_stride: int = _param(2, "Keep every n-th pixel in both directions in points.", minimum=1)
    points_organized: bool = _param(
        False,
        "Publish an organised cloud (image-shaped, NaN for invalid points) instead of only the valid points.",
    )
    points_rgb: bool = _param(True, "Add a packed rgb field (input image colours) to points.")
    qos_in_reliability: str = _param(
        "best_effort", "Reliability of the image and camera_info subscriptions.", RELIABILITIES, read_only=_QOS
    )
    qos_in_depth: int = _param(1, "History depth of the input subscriptions (keep last).", minimum=1, read_only=_QOS)
    qos_out_reliability: str = _param(
        "reliable",
        "Reliability of the output publishers (reliable also serves best-effort subscribers).",
        RELIABILITIES,
        read_only=_QOS,
    )
    qos_out_depth: int = _param(1, "History depth of the output publishers (keep last).", minimum=1, read_only=_QOS)
    stats_period: float = _param(
        5.0, "Seconds between statistics (INFO log and diagnostics).", minimum=0.1,
        read_only="the statistics timer is created at start: restart the node",
    )
    max_consecutive_failures: int = _param(
        10, "Diagnostics level ERROR after this many frames in a row failed in inference or publishing.", minimum=1
    )
    debug_inference_delay: float = _param(
        0.0,
        "Test/benchmark knob: extra seconds slept after each inference to "
        "emulate a slower model. Leave 0 in production.",
        minimum=0.0,
    )

    def validate(self) -> None:
        """Raise ``ValueError`` listing every invalid value."""
        problems = []
        for spec in fields(self):
            value = getattr(self, spec.name)
            choices, minimum = spec.metadata["choices"], spec.metadata["minimum"]
            if choices and value not in choices:
                problems.append(f"{spec.name}={value!r} is not one of {list(choices)}")
            if minimum is not None and value < minimum:
                problems.append(f"{spec.name}={value!r} must be >= {minimum}")
        if not self.model_path:
            problems.append("model_path is empty and no shipped demo model was found: set model_path "
                            "(the .onnx model or checkpoint to run)")
        if self.scale_mode == "floor" and self.camera_height <= 0:
            problems.append("scale_mode=floor needs camera_height > 0 (metres from the camera to the floor)")
        if self.floor_min_agreeing > self.floor_window:
            problems.append(f"floor_min_agreeing={self.floor_min_agreeing} must not exceed "
                            f"floor_window={self.floor_window} (the running median holds that many)")
        if self.colorize_max_depth and self.colorize_max_depth <= self.colorize_min_depth:
            problems.append(
                f"colorize_max_depth={self.colorize_max_depth} must exceed "
                f"colorize_min_depth={self.colorize_min_depth}"
            )
        if problems:
            raise ValueError("invalid parameters: " + "; ".join(problems))


#: name -> why it cannot change while the node runs, for the parameters that cannot.
READ_ONLY = {spec.name: spec.metadata["read_only"] for spec in fields(NodeParams) if spec.metadata["read_only"]}


def with_changes(params: NodeParams, changes: dict) -> NodeParams:
    """``params`` with ``changes`` (name -> value) applied and validated as a whole.

    Raises
    ------
    ValueError
        A read-only parameter (with the reason), an unknown name, or an invalid result (the
        problems of :meth:`NodeParams.validate`).
    """
    known = {spec.name for spec in fields(NodeParams)}
    problems = [f"{name} is not a parameter of this node" for name in changes if name not in known]
    problems += [
        f"{name} cannot change while the node runs: {READ_ONLY[name]}"
        for name, value in changes.items()
        if name in READ_ONLY and value != getattr(params, name)
    ]
    if problems:
        raise ValueError("; ".join(problems))
    updated = replace(params, **{k: v for k, v in changes.items() if k not in READ_ONLY})
    updated.validate()
    return updated


def parameter_descriptor(spec):
    """rcl_interfaces ParameterDescriptor for one :class:`NodeParams` field (type, description, range).

    Not ``read_only`` in the descriptor (rclpy would reject a change without saying why): the
    node's parameter callback rejects changes of :data:`READ_ONLY` parameters with the reason, and
    ``additional_constraints`` says so.
    """
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType

    types = {
        str: ParameterType.PARAMETER_STRING,
        bool: ParameterType.PARAMETER_BOOL,
        int: ParameterType.PARAMETER_INTEGER,
        float: ParameterType.PARAMETER_DOUBLE,
    }
    kind = type(spec.default)
    descriptor = ParameterDescriptor(name=spec.name, type=types[kind], description=spec.metadata["description"])
    constraints = []
    if spec.metadata["choices"]:
        constraints.append("one of: " + ", ".join(spec.metadata["choices"]))
    constraints.append(f"read at start only: {spec.metadata['read_only']}" if spec.metadata["read_only"]
                       else "can change while the node runs")
    descriptor.additional_constraints = "; ".join(constraints)
    minimum = spec.metadata["minimum"]
    if minimum is not None and kind is int:
        descriptor.integer_range = [IntegerRange(from_value=int(minimum), to_value=2**31 - 1, step=0)]
    elif minimum is not None and kind is float:
        descriptor.floating_point_range = [
            FloatingPointRange(from_value=float(minimum), to_value=1e9, step=0.0)
        ]
    return descriptor


def declare(node) -> None:
    """Declare every :class:`NodeParams` field on ``node`` (values from the command line or params file).

    Raises
    ------
    ValueError
        A value of the wrong type (e.g. ``2`` for a float: write ``2.0``) or out of range.
    """
    for spec in fields(NodeParams):
        try:
            node.declare_parameter(spec.name, spec.default, parameter_descriptor(spec))
        except Exception as error:  # rclpy: InvalidParameterTypeException, InvalidParameterValueException
            raise ValueError(f"parameter {spec.name}: {error}") from error


def read(node) -> NodeParams:
    """The declared parameters of ``node``, validated; an empty model_path becomes the demo model.

    Raises
    ------
    ValueError
        An invalid value or combination (:meth:`NodeParams.validate`).
    """
    values = {spec.name: node.get_parameter(spec.name).value for spec in fields(NodeParams)}
    if not values["model_path"]:
        demo = shipped_demo_model()
        if demo is not None:
            node.get_logger().warning(
                f"model_path not set: using the shipped demo model {demo} (trained on synthetic rooms, for "
                "trying the node; fine-tune on your own rosbags for real use)"
            )
            values["model_path"] = str(demo)
    params = NodeParams(**values)
    params.validate()
    return params


def declare_and_read(node) -> NodeParams:
    """:func:`declare` then :func:`read`."""
    declare(node)
    return read(node)

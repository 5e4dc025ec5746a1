"""What the depth node derives from its parameters and the model, rebuilt whenever a parameter
changes while it runs. ROS-free.

The node keeps one :class:`NodeSettings` and replaces it as a whole on a change, so its worker
thread reads one consistent set per frame. The floor-scale estimator is rebuilt only when a
parameter it depends on changed (:func:`scaler_changed`); anything else keeps the running estimate.
"""

from __future__ import annotations

from dataclasses import dataclass

from gam_depth_ros.depth_scaling import DepthScaler
from gam_depth_ros.floor_scale import FloorScaleConfig
from gam_depth_ros.node_params import NodeParams
from gam_depth_ros.topics import DEPTH_OUTPUTS, NEEDS_INTRINSICS, enabled_outputs

#: Parameters the depth scaler is built from.
SCALER_FIELDS = ("depth_scale", "scale_mode", "camera_height", "camera_pitch_deg", "floor_min_pixels",
                 "floor_max_tilt_deg", "floor_window", "floor_gate", "floor_min_agreeing", "floor_hold_time")


@dataclass(frozen=True)
class NodeSettings:
    """Parameters plus what follows from them and the model's metadata.

    Attributes
    ----------
    params:
        The validated parameters.
    depth_scale:
        Metres per network unit of ``fixed`` mode: ``params.depth_scale`` or the metadata's.
    colour_range:
        (near, far) metres at the ends of ``depth/colorized``'s colormap.
    enabled:
        Output topics whose switches are on.
    """

    params: NodeParams
    depth_scale: float
    colour_range: tuple[float, float]
    enabled: frozenset[str]

    @property
    def needs_camera_info(self) -> bool:
        """Whether an enabled output or the floor scale needs the input camera_info."""
        return bool(NEEDS_INTRINSICS & self.enabled) or self.params.scale_mode == "floor"

    @property
    def depth_outputs(self) -> frozenset[str]:
        return self.enabled & DEPTH_OUTPUTS


def node_settings(params: NodeParams, metadata) -> NodeSettings:
    """:class:`NodeSettings` of ``params`` for a model with ``metadata`` (a ModelMetadata).

    Raises ``ValueError`` when the colormap's depth range is empty.
    """
    depth_scale = params.depth_scale or metadata.depth_scale
    colour_range = (
        params.colorize_min_depth or metadata.min_depth * depth_scale,
        params.colorize_max_depth or metadata.max_depth * depth_scale,
    )
    if colour_range[1] <= colour_range[0]:
        raise ValueError(f"colorize range {colour_range} is empty; set colorize_min_depth/max_depth")
    return NodeSettings(params, depth_scale, colour_range, frozenset(enabled_outputs(params)))


def make_scaler(settings: NodeSettings) -> DepthScaler:
    """The depth scaler of ``settings`` (a fresh floor estimate in ``floor`` mode)."""
    params = settings.params
    floor = None
    if params.scale_mode == "floor":
        floor = FloorScaleConfig(
            camera_height=params.camera_height, camera_pitch_deg=params.camera_pitch_deg,
            min_floor_pixels=params.floor_min_pixels, max_tilt_deg=params.floor_max_tilt_deg,
            window=params.floor_window, gate=params.floor_gate, min_agreeing=params.floor_min_agreeing,
            hold_time=params.floor_hold_time,
        )  # fmt: skip
    return DepthScaler(params.scale_mode, settings.depth_scale, floor)


def scaler_changed(old: NodeParams, new: NodeParams) -> bool:
    """Whether the depth scaler must be rebuilt going from ``old`` to ``new``."""
    return any(getattr(old, name) != getattr(new, name) for name in SCALER_FIELDS)

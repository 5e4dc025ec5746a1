"""The metadata JSON written beside every exported model (``model.onnx`` -> ``model.json``).

It tells a runtime everything it needs without torch or the training code: input name, size,
layout, colour order and value range; output names; depth range and scale; class names, palette
and the id convention of the semantic output (``label_format``, see :mod:`gam_depth_ros.labels`);
provenance (source checkpoint hash, training config, versions).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gam_depth_ros.classes import NYU40_CLASS_NAMES, NYU40_PALETTE
from gam_depth_ros.config_io import ConfigError, from_dict, read_text_limited
from gam_depth_ros.labels import LABEL_FORMATS, first_id

METADATA_FORMAT = "gam_depth_ros.model/1"
#: Largest metadata file read (an export writes a few kilobytes, the training config included).
MAX_METADATA_BYTES = 1 << 20
#: Deepest JSON nesting accepted (the training config inside is 3-4 levels deep).
MAX_METADATA_DEPTH = 16
#: Largest network input side accepted, in pixels.
MAX_INPUT_SIDE = 8192


class MetadataError(ValueError):
    """A model's metadata is missing or invalid; the message names the file."""


@dataclass(frozen=True)
class ModelMetadata:
    """Contents of the metadata JSON. Field names are the JSON keys."""

    input_height: int
    input_width: int
    min_depth: float = 0.1
    max_depth: float = 10.0
    depth_scale: float = 1.0  # metres per network depth unit
    input_name: str = "image"
    input_layout: str = "NCHW"
    input_colour_order: str = "RGB"
    input_range: tuple[float, float] = (0.0, 1.0)
    disparity_output: str = "disparity"  # [1,1,H,W] sigmoid disparity
    semantic_output: str = "semantic"  # [1,H,W] uint8 class ids in label_format
    # Id convention of the semantic output: "zero-based" (id i = class_names[i]; NYU-40 0 = wall ...
    # 39 = other prop; what every exporter of this project writes) or "nyu40" (0 = unknown, 1 = wall).
    label_format: str = "zero-based"
    semantic_logits_output: str | None = None  # [1,C,H,W] when exported with --semantic-logits
    class_names: tuple[str, ...] = NYU40_CLASS_NAMES
    palette: tuple[tuple[int, int, int], ...] = NYU40_PALETTE
    source_checkpoint: str | None = None
    source_checkpoint_sha256: str | None = None
    training_config: dict[str, Any] | None = None
    opset: int | None = None
    weights_dtype: str = "float32"  # storage of the weights in the file (float16: cast to float32 at load)
    exporter: dict[str, str] = field(default_factory=dict)
    format: str = METADATA_FORMAT

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=False)


def metadata_path(model_path: str | Path) -> Path:
    """Where the metadata of ``model_path`` lives: same folder and stem, ``.json`` suffix."""
    return Path(model_path).with_suffix(".json")


def write_metadata(model_path: str | Path, metadata: ModelMetadata) -> Path:
    path = metadata_path(model_path)
    path.write_text(metadata.to_json() + "\n", encoding="utf-8")
    return path


def read_metadata(model_path: str | Path) -> ModelMetadata:
    """Read and validate the metadata beside ``model_path``.

    A file over :data:`MAX_METADATA_BYTES`, JSON nested deeper than :data:`MAX_METADATA_DEPTH`,
    a field of the wrong type or out of range raise :class:`MetadataError` naming the file.
    Unknown keys are ignored (metadata written by a newer exporter).
    """
    path = metadata_path(model_path)
    if not path.exists():
        raise MetadataError(f"{path}: model metadata not found (expected beside {Path(model_path).name})")
    try:
        data = json.loads(read_text_limited(path, MAX_METADATA_BYTES, "model metadata"))
    except ConfigError as error:
        raise MetadataError(str(error)) from error
    except RecursionError as error:
        raise MetadataError(f"{path}: model metadata is nested too deeply") from error
    except json.JSONDecodeError as error:
        raise MetadataError(f"{path}: cannot read model metadata: {error}") from error
    if not isinstance(data, dict) or data.get("format") != METADATA_FORMAT:
        raise MetadataError(f"{path}: not gam_depth_ros model metadata (format != {METADATA_FORMAT!r})")
    if json_depth(data) > MAX_METADATA_DEPTH:
        raise MetadataError(f"{path}: model metadata is nested deeper than {MAX_METADATA_DEPTH} levels")
    known = set(ModelMetadata.__dataclass_fields__)
    try:  # types checked field by field (a string height, a bool depth, a palette of strings are errors)
        metadata = from_dict(ModelMetadata, {k: v for k, v in data.items() if k in known}, str(path))
    except ConfigError as error:
        raise MetadataError(f"{error} (invalid model metadata)") from error
    if not 0 < metadata.min_depth < metadata.max_depth or metadata.depth_scale <= 0:
        raise MetadataError(f"{path}: invalid depth range or scale")
    if not (0 < metadata.input_height <= MAX_INPUT_SIDE and 0 < metadata.input_width <= MAX_INPUT_SIDE):
        raise MetadataError(f"{path}: input size {metadata.input_height}x{metadata.input_width} outside "
                            f"1..{MAX_INPUT_SIDE} pixels")
    if len(metadata.palette) != metadata.num_classes or not 0 < metadata.num_classes <= 255:
        raise MetadataError(f"{path}: palette and class names disagree")
    if any(not 0 <= c <= 255 for rgb in metadata.palette for c in rgb):
        raise MetadataError(f"{path}: palette colours must be 0..255")
    if metadata.label_format not in LABEL_FORMATS:
        raise MetadataError(f"{path}: label_format {metadata.label_format!r} is not one of {list(LABEL_FORMATS)}")
    if first_id(metadata.label_format) + metadata.num_classes > 255:
        raise MetadataError(f"{path}: {metadata.num_classes} classes do not fit {metadata.label_format} ids below 255")
    return metadata


def json_depth(value: Any) -> int:
    """Nesting depth of parsed JSON (a scalar is 0, ``[]`` and ``{}`` are 1), computed without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest

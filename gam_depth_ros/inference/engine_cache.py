"""Where a TensorRT engine is cached, what it is tied to, and whether a cached one can be used.

Pure Python (no TensorRT import), so naming, the metadata JSON and the staleness rules are
unit-tested on machines without a GPU.

A serialized TensorRT engine only runs with the exact TensorRT version that built it and on the
GPU it was tuned for. The cache key is therefore

- the TensorRT version (full, e.g. ``10.3.0.30``),
- the GPU name and compute capability (``Orin``, 8.7),
- the precision (``fp32``, ``fp16``, ``int8``),
- the network input shape ([1, 3, H, W]),

and it appears both in the file name and in a metadata JSON beside the engine::

    model.onnx  ->  model.fp16.288x384.trt10.3.0.30.orin.sm87.engine
                    model.fp16.288x384.trt10.3.0.30.orin.sm87.engine.json

The JSON also records what the file name cannot hold: the SHA-256 of the source ONNX (a
re-exported model makes the engine stale), the layers kept in FP32, the INT8 calibration source,
the engine's size (a truncated file is stale), the build time, and a copy of the model metadata so
that an ``.engine`` file is self-describing.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from gam_depth_ros.config_io import ConfigError, read_text_limited
from gam_depth_ros.metadata import MAX_METADATA_BYTES, METADATA_FORMAT, ModelMetadata

ENGINE_METADATA_FORMAT = "gam_depth_ros.trt_engine/1"
PRECISIONS = ("fp32", "fp16", "int8")
ENGINE_SUFFIXES = (".engine", ".plan")


class EngineCacheError(ValueError):
    """An engine's metadata JSON is unreadable or invalid; the message names the file."""


@dataclass(frozen=True)
class BuildEnvironment:
    """What a serialized engine is tied to. :func:`current_environment` reads it from the machine.

    Attributes
    ----------
    tensorrt_version:
        ``tensorrt.__version__``, e.g. ``"10.3.0.30"``; engines only load in the same version.
    gpu_name:
        The CUDA device name, e.g. ``"Orin"`` or ``"NVIDIA GeForce RTX 4090"``.
    compute_capability:
        (major, minor), e.g. (8, 7) for Jetson Orin.
    """

    tensorrt_version: str
    gpu_name: str
    compute_capability: tuple[int, int]

    @property
    def gpu_slug(self) -> str:
        """GPU name for a file name: lower case, runs of other characters as one ``-``."""
        return re.sub(r"[^a-z0-9]+", "-", self.gpu_name.lower()).strip("-") or "gpu"

    @property
    def sm(self) -> str:
        """Compute capability as ``sm87``."""
        return f"sm{self.compute_capability[0]}{self.compute_capability[1]}"


@dataclass(frozen=True)
class EngineSpec:
    """How to build an engine from an ONNX model.

    Attributes
    ----------
    precision:
        ``fp32``, ``fp16`` or ``int8`` (INT8 also enables FP16 for layers without INT8 kernels).
    input_height, input_width:
        The network input size; the engine's input is [1, 3, input_height, input_width].
    fp32_layers:
        Selectors of layers kept in FP32 (see :mod:`gam_depth_ros.inference.layer_precision`).
    obey_precision:
        Fail the build when a selected layer has no FP32 kernel (``OBEY_PRECISION_CONSTRAINTS``)
        instead of falling back with a warning (``PREFER_PRECISION_CONSTRAINTS``).
    workspace_mib:
        Builder workspace memory pool limit in MiB.
    """

    precision: str
    input_height: int
    input_width: int
    fp32_layers: tuple[str, ...] = ()
    obey_precision: bool = False
    workspace_mib: int = 1024

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.input_height <= 0 or self.input_width <= 0:
            raise ValueError(f"invalid input size {self.input_height}x{self.input_width}")
        if self.workspace_mib <= 0:
            raise ValueError(f"workspace_mib must be positive, got {self.workspace_mib}")

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return (1, 3, self.input_height, self.input_width)


@dataclass(frozen=True)
class EngineRecord:
    """Contents of the metadata JSON beside an engine. Field names are the JSON keys."""

    tensorrt_version: str
    gpu_name: str
    compute_capability: tuple[int, int]
    precision: str
    input_shape: tuple[int, int, int, int]
    fp32_layers: tuple[str, ...]
    obey_precision: bool
    onnx_file: str
    onnx_sha256: str
    engine_bytes: int
    model: dict[str, Any]
    calibration: dict[str, Any] | None = None
    build_seconds: float | None = None
    built_at: str | None = None
    format: str = ENGINE_METADATA_FORMAT

    @property
    def environment(self) -> BuildEnvironment:
        return BuildEnvironment(self.tensorrt_version, self.gpu_name, self.compute_capability)

    def model_metadata(self) -> ModelMetadata:
        """The model metadata copied into the record (as written beside the ONNX at export)."""
        data = dict(self.model)
        try:
            data["input_range"] = tuple(data.get("input_range", (0.0, 1.0)))
            data["class_names"] = tuple(data["class_names"])
            data["palette"] = tuple(tuple(int(c) for c in rgb) for rgb in data["palette"])
            known = set(ModelMetadata.__dataclass_fields__)
            return ModelMetadata(**{k: v for k, v in data.items() if k in known})
        except (KeyError, TypeError, ValueError) as error:
            raise EngineCacheError(f"engine metadata holds invalid model metadata: {error}") from error


def engine_path(onnx_path: str | Path, spec: EngineSpec, env: BuildEnvironment, cache_dir: Path | None = None) -> Path:
    """The cached engine's path for ``onnx_path`` built with ``spec`` in ``env``.

    Beside the ONNX by default, or in ``cache_dir``.
    """
    onnx_path = Path(onnx_path)
    name = (
        f"{onnx_path.stem}.{spec.precision}.{spec.input_height}x{spec.input_width}"
        f".trt{env.tensorrt_version}.{env.gpu_slug}.{env.sm}.engine"
    )
    return (cache_dir or onnx_path.parent) / name


def record_path(engine: str | Path) -> Path:
    """The metadata JSON of ``engine``: its full file name plus ``.json``."""
    engine = Path(engine)
    return engine.with_name(engine.name + ".json")


def write_record(engine: str | Path, record: EngineRecord) -> Path:
    """Write ``record`` beside ``engine`` atomically (a reader never sees half a file)."""
    path = record_path(engine)
    _atomic_write(path, (json.dumps(asdict(record), indent=2) + "\n").encode("utf-8"))
    return path


def read_record(engine: str | Path) -> EngineRecord:
    """Read and validate the metadata JSON of ``engine``.

    Raises
    ------
    FileNotFoundError
        When there is no JSON beside the engine.
    EngineCacheError
        When it is unreadable, of another format, or misses fields.
    """
    path = record_path(engine)
    if not path.exists():
        raise FileNotFoundError(path)
    try:
        data = json.loads(read_text_limited(path, MAX_METADATA_BYTES, "engine metadata"))
    except (ConfigError, RecursionError, json.JSONDecodeError) as error:
        raise EngineCacheError(f"{path}: cannot read engine metadata: {str(error) or 'nested too deeply'}") from error
    if not isinstance(data, dict) or data.get("format") != ENGINE_METADATA_FORMAT:
        raise EngineCacheError(f"{path}: not gam_depth_ros engine metadata (format != {ENGINE_METADATA_FORMAT!r})")
    try:
        data["compute_capability"] = tuple(int(v) for v in data["compute_capability"])
        data["input_shape"] = tuple(int(v) for v in data["input_shape"])
        data["fp32_layers"] = tuple(str(v) for v in data.get("fp32_layers", ()))
        known = set(EngineRecord.__dataclass_fields__)
        record = EngineRecord(**{k: v for k, v in data.items() if k in known})
    except (KeyError, TypeError, ValueError) as error:
        raise EngineCacheError(f"{path}: invalid engine metadata: {error}") from error
    if len(record.compute_capability) != 2 or len(record.input_shape) != 4:
        raise EngineCacheError(f"{path}: invalid compute capability or input shape")
    if record.model.get("format") != METADATA_FORMAT:
        raise EngineCacheError(f"{path}: the embedded model metadata is not {METADATA_FORMAT!r}")
    return record


def environment_problems(record: EngineRecord, env: BuildEnvironment) -> list[str]:
    """Why an engine built as ``record`` says cannot run in ``env`` (empty: it can)."""
    problems = []
    if record.tensorrt_version != env.tensorrt_version:
        problems.append(f"built with TensorRT {record.tensorrt_version}, this is TensorRT {env.tensorrt_version}")
    if record.compute_capability != env.compute_capability or record.gpu_name != env.gpu_name:
        problems.append(
            f"built on {record.gpu_name!r} ({record.environment.sm}), this GPU is {env.gpu_name!r} ({env.sm})"
        )
    return problems


def stale_reasons(engine: str | Path, env: BuildEnvironment, spec: EngineSpec, onnx_sha256: str) -> list[str]:
    """Why the cached ``engine`` must be (re)built for ``spec`` in ``env`` (empty: use it).

    Parameters
    ----------
    engine:
        The engine path (normally :func:`engine_path`).
    env:
        The running environment (a plain :class:`BuildEnvironment`, so tests can describe any).
    spec:
        The wanted build.
    onnx_sha256:
        SHA-256 hex digest of the ONNX the engine should come from.
    """
    engine = Path(engine)
    if not engine.is_file():
        return [f"no engine at {engine}"]
    try:
        record = read_record(engine)
    except FileNotFoundError:
        return [f"no metadata {record_path(engine).name} beside the engine"]
    except EngineCacheError as error:
        return [str(error)]
    reasons = environment_problems(record, env)
    if record.precision != spec.precision:
        reasons.append(f"precision {record.precision}, wanted {spec.precision}")
    if tuple(record.input_shape) != spec.input_shape:
        reasons.append(f"input shape {list(record.input_shape)}, wanted {list(spec.input_shape)}")
    if record.fp32_layers != spec.fp32_layers or record.obey_precision != spec.obey_precision:
        reasons.append(f"FP32 layers {list(record.fp32_layers)}, wanted {list(spec.fp32_layers)}")
    if record.onnx_sha256 != onnx_sha256:
        reasons.append("the ONNX model changed since the engine was built")
    size = engine.stat().st_size
    if record.engine_bytes != size:
        reasons.append(f"engine file has {size} bytes, metadata says {record.engine_bytes} (incomplete write?)")
    return reasons


def find_cached_engine(
    onnx_path: str | Path,
    spec: EngineSpec,
    env: BuildEnvironment,
    onnx_sha256: str,
    folders: list[Path],
) -> tuple[Path | None, list[str]]:
    """The first up-to-date engine for ``spec`` in ``folders``, or None and why the first folder's is stale."""
    first_reasons: list[str] = []
    for position, folder in enumerate(folders):
        path = engine_path(onnx_path, spec, env, folder)
        reasons = stale_reasons(path, env, spec, onnx_sha256)
        if not reasons:
            return path, []
        if position == 0:
            first_reasons = reasons
    return None, first_reasons


def default_folders(onnx_path: str | Path, cache_dir: Path | None = None) -> list[Path]:
    """Where engines of ``onnx_path`` are looked for: ``cache_dir``, else beside it and the user cache."""
    return [cache_dir] if cache_dir is not None else [Path(onnx_path).parent, user_cache_dir()]


def user_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/gam_depth_ros/engines`` (default ``~/.cache/...``): engines of read-only models."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "gam_depth_ros" / "engines"


def writable_dir(preferred: Path) -> Path:
    """``preferred`` if a file can be created there, else :func:`user_cache_dir` (created).

    An ONNX installed in a read-only share folder still gets a cached engine.
    """
    try:
        preferred.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=preferred, prefix=".write-test-"):
            return preferred
    except OSError:
        fallback = user_cache_dir()
        fallback.mkdir(parents=True, exist_ok=True)
        return fallback


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    _atomic_write(path, data)


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise

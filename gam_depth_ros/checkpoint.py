"""Safe reading and atomic writing of model checkpoints.

Two formats are accepted:

* ``.pt`` / ``.pth``: a ``torch.save`` dict with at least ``model`` (the ``GamDepthNet`` state
  dict) and ``model_config`` (a dict of :class:`ModelConfig` fields); training adds
  ``training_config``, optimiser state and counters. Always read with ``weights_only=True``, so a
  malicious pickle is refused instead of executed.
* ``.safetensors``: the state dict, with ``model_config`` and ``training_config`` as JSON strings
  in the file's metadata. The header is checked before the ``safetensors`` library reads the file:
  at most :data:`MAX_SAFETENSORS_HEADER` bytes, known dtypes, every tensor's byte range inside the
  file and of its shape's size, :data:`MAX_CHECKPOINT_BYTES` in all (a header that declares absurd
  sizes is refused before anything is allocated).

Every failure raises :class:`CheckpointError` naming the file and the problem.
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gam_depth_ros.config_io import ConfigError, from_dict, to_dict
from gam_depth_ros.metadata import json_depth
from gam_depth_ros.model_config import ModelConfig

CHECKPOINT_FORMAT = "gam_depth_ros.checkpoint/1"
PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt")
#: Largest safetensors JSON header accepted (the network's header is about 30 kB).
MAX_SAFETENSORS_HEADER = 16 << 20
#: Most tensor bytes a checkpoint may hold (the network is tens of MB; an optimiser state x3).
MAX_CHECKPOINT_BYTES = 4 << 30
#: Deepest JSON nesting accepted in a safetensors header and in the configs stored in it.
MAX_JSON_DEPTH = 16
_SAFETENSORS_DTYPE_BYTES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8,
}


class CheckpointError(ValueError):
    """A checkpoint cannot be used; the message names the file."""


class CheckpointWriteError(CheckpointError):
    """A checkpoint could not be written (``errno``: e.g. ``errno.ENOSPC``); any previous file is untouched."""

    def __init__(self, message: str, errno_code: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno_code


class _RecordingWriter:
    """A binary file for ``torch.save`` that keeps the ``OSError`` of a failed write.

    torch turns a failed write into a ``RuntimeError`` without the cause ("unexpected pos ..."); the
    recorded error says what happened (``ENOSPC``: no space left on device). Short writes are retried.
    """

    def __init__(self, stream) -> None:
        self.stream, self.error = stream, None

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        done = 0
        try:
            while done < len(view):
                written = self.stream.write(view[done:])
                if not written:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                done += written
        except OSError as error:
            self.error = error
            raise
        return done

    def flush(self) -> None:
        self.stream.flush()


@dataclass
class Checkpoint:
    """What a checkpoint holds for building the network."""

    path: Path
    state_dict: dict[str, Any]
    model_config: ModelConfig
    training_config: dict[str, Any] | None
    extra: dict[str, Any]  # everything else (optimiser state, epoch, step ...)


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes (recorded in export metadata)."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint safely; see the module docstring for the formats."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file does not exist")
    if path.suffix == ".safetensors":
        return _load_safetensors(path)
    if path.suffix not in PICKLE_SUFFIXES:
        raise CheckpointError(
            f"{path}: unknown checkpoint type {path.suffix!r} (expected .safetensors or {PICKLE_SUFFIXES})"
        )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises UnpicklingError, RuntimeError, EOFError ...
        raise CheckpointError(
            f"{path}: cannot load checkpoint safely (weights_only=True): {type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else ''}"
        ) from error
    if not isinstance(payload, dict) or "model" not in payload or "model_config" not in payload:
        raise CheckpointError(f"{path}: not a gam_depth_ros checkpoint (needs 'model' and 'model_config' keys)")
    extra = {k: v for k, v in payload.items() if k not in ("model", "model_config", "training_config")}
    return Checkpoint(
        path=path,
        state_dict=payload["model"],
        model_config=_model_config(payload["model_config"], path),
        training_config=payload.get("training_config"),
        extra=extra,
    )


def _load_safetensors(path: Path) -> Checkpoint:
    from safetensors import SafetensorError, safe_open

    check_safetensors_header(path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            state = {key: handle.get_tensor(key) for key in handle.keys()}
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"{path}: cannot read safetensors file: {error}") from error
    if "model_config" not in metadata:
        raise CheckpointError(f"{path}: safetensors metadata has no 'model_config'")
    try:
        model_config = json.loads(metadata["model_config"])
        training_config = json.loads(metadata.get("training_config", "null"))
    except (json.JSONDecodeError, RecursionError) as error:
        raise CheckpointError(f"{path}: invalid JSON in safetensors metadata: {error}") from error
    if max(json_depth(model_config), json_depth(training_config)) > MAX_JSON_DEPTH:
        raise CheckpointError(f"{path}: configs in the safetensors metadata nest deeper than {MAX_JSON_DEPTH} levels")
    return Checkpoint(path, state, _model_config(model_config, path), training_config, {})


def check_safetensors_header(path: Path) -> int:
    """Validate a safetensors file's header against the file without reading any tensor data.

    Returns
    -------
    int
        The tensor bytes the file holds.

    Raises
    ------
    CheckpointError
        A header over :data:`MAX_SAFETENSORS_HEADER` or past the end of the file, invalid or deeply
        nested JSON, an unknown dtype, a shape that is not a list of non-negative integers, a byte
        range that is outside the data or does not match the shape, or more than
        :data:`MAX_CHECKPOINT_BYTES` in all; the message names the file and the tensor.
    """
    size = path.stat().st_size
    with open(path, "rb") as stream:
        prefix = stream.read(8)
        if len(prefix) < 8:
            raise CheckpointError(f"{path}: not a safetensors file ({size} bytes, no header length)")
        header_bytes = int.from_bytes(prefix, "little")
        if header_bytes > MAX_SAFETENSORS_HEADER or header_bytes > size - 8:
            raise CheckpointError(f"{path}: safetensors header declares {header_bytes} bytes (limit "
                                  f"{MAX_SAFETENSORS_HEADER}, file {size} bytes); refusing it")
        text = stream.read(header_bytes)
    try:
        header = json.loads(text)
    except (ValueError, RecursionError) as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        why = str(error) or "nested too deeply"
        raise CheckpointError(f"{path}: safetensors header is not valid JSON: {why}") from error
    if not isinstance(header, dict) or json_depth(header) > MAX_JSON_DEPTH:
        raise CheckpointError(f"{path}: safetensors header is not a mapping of tensors")
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise CheckpointError(f"{path}: safetensors __metadata__ must map names to strings")
    data_bytes, total = size - 8 - header_bytes, 0
    for name, entry in header.items():
        shape = entry.get("shape") if isinstance(entry, dict) else None
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        itemsize = _SAFETENSORS_DTYPE_BYTES.get(entry.get("dtype")) if isinstance(entry, dict) else None
        if (itemsize is None or not _int_list(shape) or not _int_list(offsets) or len(offsets) != 2
                or any(v < 0 for v in shape)):
            raise CheckpointError(f"{path}: tensor {name!r}: invalid safetensors entry {str(entry)[:200]}")
        nbytes = itemsize * math.prod(shape)
        begin, end = offsets
        if not 0 <= begin <= end <= data_bytes or end - begin != nbytes:
            raise CheckpointError(f"{path}: tensor {name!r} declares shape {shape} ({nbytes} bytes) at bytes "
                                  f"{begin}..{end}; the file has {data_bytes} bytes of data")
        total += nbytes
        if total > MAX_CHECKPOINT_BYTES:
            raise CheckpointError(f"{path}: tensors declare more than {MAX_CHECKPOINT_BYTES} bytes; refusing it")
    return total


def _int_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)


def _model_config(data: Any, path: Path) -> ModelConfig:
    try:
        return from_dict(ModelConfig, data, f"{path}:model_config")
    except ConfigError as error:
        raise CheckpointError(str(error)) from error


def save_checkpoint(
    path: str | Path,
    state_dict: dict[str, Any],
    model_config: ModelConfig,
    training_config: dict[str, Any] | None = None,
    **extra: Any,
) -> Path:
    """Write a checkpoint atomically: a crash or a failed write leaves any previous file intact.

    ``.safetensors`` stores only the weights and configs; ``.pt`` also stores ``extra``.

    Raises
    ------
    CheckpointWriteError
        The file could not be written (a full disk, a quota, an I/O error); the temporary file is
        removed and the message names the file and the cause.
    """
    path = Path(path)
    tmp_name = ""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb", buffering=0) as stream:
            writer = _RecordingWriter(stream)
            try:
                _serialize(writer, path.suffix, state_dict, model_config, training_config, extra)
            except Exception as error:
                if writer.error is None or writer.error is error:
                    raise
                raise writer.error from error  # torch's RuntimeError hides the cause
            os.fsync(stream.fileno())  # delayed allocation: a full disk may only show here
        os.replace(tmp_name, path)
    except OSError as error:
        reason = error.strerror or str(error)
        if error.errno == errno.ENOSPC:
            reason = f"{reason} (the disk is full)"
        raise CheckpointWriteError(f"{path}: cannot write the checkpoint: {reason}", error.errno) from error
    finally:
        if tmp_name and os.path.exists(tmp_name):
            os.unlink(tmp_name)
    return path


def _serialize(stream: _RecordingWriter, suffix: str, state_dict: dict[str, Any], model_config: ModelConfig,
               training_config: dict[str, Any] | None, extra: dict[str, Any]) -> None:
    if suffix == ".safetensors":
        from safetensors.torch import save

        metadata = {
            "format": CHECKPOINT_FORMAT,
            "model_config": json.dumps(to_dict(model_config)),
            "training_config": json.dumps(training_config),
        }
        tensors = {k: v.detach().contiguous() for k, v in state_dict.items()}
        stream.write(save(tensors, metadata=metadata))
    else:
        import torch

        payload = {
            "format": CHECKPOINT_FORMAT,
            "model": state_dict,
            "model_config": to_dict(model_config),
            "training_config": training_config,
            **extra,
        }
        torch.save(payload, stream)


def build_model(checkpoint: Checkpoint):  # -> GamDepthNet (torch imported lazily)
    """Instantiate ``GamDepthNet`` from a checkpoint and load its weights (eval mode).

    Training checkpoints may hold extra multi-scale depth heads; only what the single-scale
    network needs is loaded, and any missing key is an error naming the file.
    """
    from gam_depth_ros.networks import GamDepthNet

    model = GamDepthNet.from_config(checkpoint.model_config)
    expected = model.state_dict()
    state = {k: v for k, v in checkpoint.state_dict.items() if k in expected}
    missing = sorted(set(expected) - set(state))
    if missing:
        raise CheckpointError(f"{checkpoint.path}: missing weights {missing[:5]} ({len(missing)} in all)")
    for key, value in state.items():
        if tuple(value.shape) != tuple(expected[key].shape):
            raise CheckpointError(
                f"{checkpoint.path}: {key} has shape {tuple(value.shape)}, expected {tuple(expected[key].shape)}"
            )
    model.load_state_dict(state)
    return model.eval()

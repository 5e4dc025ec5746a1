"""Checking an ONNX file's external-data references before any ONNX library reads the file.

An ONNX model may keep tensor data in other files (``external_data`` entries of a ``TensorProto``:
``location``, ``offset``, ``length``), found relative to the model's folder. A hostile model can name
``../../etc/shadow``, an absolute path, a symbolic link out of the folder or a FIFO (ONNX Runtime
then blocks on open). Older ONNX Runtime (1.12 on a Humble robot) and TensorRT's parser do not all
refuse these, so :func:`check_external_data` does, first: it walks the protobuf wire format of the
file itself (no ``onnx`` package needed, none of the referenced files opened) through the graph,
subgraphs of node attributes, sparse initializers, functions and training graphs, and every tensor
with external data must name a regular file inside the model's folder, with ``offset + length``
within that file.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

#: Deepest message nesting followed (protobuf's own default limit is 100).
MAX_NESTING = 64

# Which fields of which ONNX message hold messages that may contain tensors (onnx.proto numbers).
_FIELDS: dict[str, dict[int, str]] = {
    "model": {7: "graph", 20: "training", 25: "function"},
    "training": {1: "graph", 2: "graph"},
    "graph": {1: "node", 5: "tensor", 15: "sparse"},
    "function": {7: "node", 11: "attribute"},
    "node": {5: "attribute"},
    "attribute": {5: "tensor", 6: "graph", 10: "tensor", 11: "graph", 22: "sparse", 23: "sparse"},
    "sparse": {1: "tensor", 2: "tensor"},
}
_TENSOR_NAME, _TENSOR_EXTERNAL_DATA, _TENSOR_DATA_LOCATION = 8, 13, 14
_EXTERNAL = 1  # TensorProto.DataLocation.EXTERNAL


class UnsafeModelError(ValueError):
    """The ONNX file is malformed or refers to data outside its folder; the message names the file."""


@dataclass
class ExternalTensor:
    """A tensor whose data lives in another file."""

    name: str
    entries: dict[str, str] = field(default_factory=dict)  # location, offset, length, checksum
    repeated: list[str] = field(default_factory=list)  # keys given more than once (refused)


def check_external_data(model_path: str | Path) -> list[ExternalTensor]:
    """Refuse ``model_path`` if any tensor's external data lies outside the model's folder.

    Returns
    -------
    list of ExternalTensor
        The tensors with external data (empty for a self-contained model).

    Raises
    ------
    UnsafeModelError
        The file is not an ONNX protobuf, or an external-data location is absolute, contains
        ``..``, resolves (through links) outside the folder, is not a regular file, or
        ``offset``/``length`` do not fit that file.
    """
    model_path = Path(model_path)
    try:
        data = model_path.read_bytes()
    except OSError as error:
        raise UnsafeModelError(f"{model_path}: cannot read the model: {error.strerror or error}") from error
    try:
        tensors = _external_tensors(memoryview(data))
    except _WireError as error:
        raise UnsafeModelError(f"{model_path}: cannot load the model: not a valid ONNX protobuf ({error})") from None
    folder = model_path.resolve().parent
    for tensor in tensors:
        _check_location(model_path, folder, tensor)
    return tensors


def _check_location(model_path: Path, folder: Path, tensor: ExternalTensor) -> None:
    location = tensor.entries.get("location", "")
    if tensor.repeated:
        raise UnsafeModelError(f"{model_path}: tensor {tensor.name!r} repeats external-data key(s) "
                               f"{sorted(set(tensor.repeated))}; refusing to load the model")

    def refuse(why: str) -> UnsafeModelError:
        return UnsafeModelError(f"{model_path}: tensor {tensor.name!r} has external data {location!r} {why}; "
                                f"refusing to load the model")

    parts = PurePosixPath(location.replace("\\", "/")).parts
    if not location or "\0" in location:
        raise refuse("(an empty or invalid location)")
    if PurePosixPath(location).is_absolute() or location.startswith("\\") or (len(location) > 1 and location[1] == ":"):
        raise refuse("(an absolute path, outside the model's folder)")
    if ".." in parts:
        raise refuse("(a path that leaves the model's folder)")
    target = (folder / location).resolve()
    if not target.is_relative_to(folder):
        raise refuse(f"(resolves to {target}, outside the model's folder {folder})")
    try:
        info = os.stat(target)
    except OSError as error:
        raise refuse(f"(cannot be read: {error.strerror or error})") from error
    if not stat.S_ISREG(info.st_mode):
        raise refuse("(not a regular file)")
    try:
        offset = int(tensor.entries.get("offset", "0"))
        length = int(tensor.entries["length"]) if "length" in tensor.entries else info.st_size - offset
    except ValueError as error:
        raise refuse(f"(offset or length is not an integer: {error})") from error
    if offset < 0 or length < 0 or offset + length > info.st_size:
        raise refuse(f"(offset {offset} + length {length} lie outside the file's {info.st_size} bytes)")


class _WireError(ValueError):
    pass


def _varint(data: memoryview, pos: int, end: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if pos >= end or shift > 63:
            raise _WireError(f"bad varint at byte {pos}")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _fields(data: memoryview, start: int, end: int):
    """``(field number, wire type, value or (start, end))`` of one message's fields (groups skipped)."""
    pos = start
    while pos < end:
        tag, pos = _varint(data, pos, end)
        number, wire = tag >> 3, tag & 7
        if number == 0:
            raise _WireError(f"field number 0 at byte {pos}")
        if wire == 0:
            value, pos = _varint(data, pos, end)
            yield number, wire, value
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        elif wire == 2:
            size, pos = _varint(data, pos, end)
            if pos + size > end:
                raise _WireError(f"field {number} at byte {pos} runs past its message")
            yield number, wire, (pos, pos + size)
            pos += size
        elif wire == 3:
            pos = _skip_group(data, pos, end, number)
        else:
            raise _WireError(f"wire type {wire} at byte {pos}")
    if pos != end:
        raise _WireError("a field runs past its message")


def _skip_group(data: memoryview, pos: int, end: int, number: int) -> int:
    open_groups = [number]
    while open_groups:
        tag, pos = _varint(data, pos, end)
        wire = tag & 7
        if wire == 0:
            _, pos = _varint(data, pos, end)
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        elif wire == 2:
            size, pos = _varint(data, pos, end)
            pos += size
        elif wire == 3:
            open_groups.append(tag >> 3)
            if len(open_groups) > MAX_NESTING:
                raise _WireError("groups nested too deeply")
        elif wire == 4 and tag >> 3 == open_groups[-1]:
            open_groups.pop()
        else:
            raise _WireError(f"unbalanced group at byte {pos}")
        if pos > end:
            raise _WireError("a group runs past its message")
    return pos


def _external_tensors(data: memoryview) -> list[ExternalTensor]:
    found = []
    stack = [("model", 0, len(data), 0)]
    while stack:
        kind, start, end, depth = stack.pop()
        if depth > MAX_NESTING:
            raise _WireError(f"messages nested deeper than {MAX_NESTING}")
        if kind == "tensor":
            tensor = _tensor(data, start, end)
            if tensor is not None:
                found.append(tensor)
            continue
        children = _FIELDS[kind]
        for number, wire, value in _fields(data, start, end):
            if wire == 2 and number in children:
                stack.append((children[number], *value, depth + 1))
    return found


def _tensor(data: memoryview, start: int, end: int) -> ExternalTensor | None:
    name, entries, repeated, external = "", {}, [], False
    for number, wire, value in _fields(data, start, end):
        if number == _TENSOR_NAME and wire == 2:
            name = _text(data, value)
        elif number == _TENSOR_DATA_LOCATION and wire == 0:
            external = external or value == _EXTERNAL
        elif number == _TENSOR_EXTERNAL_DATA and wire == 2:
            external = True
            entry = {1: "", 2: ""}  # StringStringEntryProto: key = 1, value = 2
            for entry_number, entry_wire, entry_value in _fields(data, *value):
                if entry_wire == 2 and entry_number in entry:
                    entry[entry_number] = _text(data, entry_value)
            key, text = entry[1], entry[2]
            if key in entries:
                repeated.append(key)
            entries[key] = text
    return ExternalTensor(name, entries, repeated) if external else None


def _text(data: memoryview, span: tuple[int, int]) -> str:
    return bytes(data[span[0]:span[1]]).decode("utf-8", errors="replace")

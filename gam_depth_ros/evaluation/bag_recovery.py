"""Reading what is left of a rosbag2 that a normal reader refuses: truncated or never closed.

A recorder that is killed leaves a bag without ``metadata.yaml`` (written at close) and, for mcap,
without the file's summary and footer; a copy cut short loses the end. ``rosbags`` cannot open
either. :func:`recover_messages` reads the storage file directly and yields every complete message
up to the damage:

- ``.mcap``: the records in file order (magic, then opcode u8 + length u64 + content), including the
  records inside uncompressed chunks (also the complete ones at the start of a chunk cut short); a
  record cut short ends the stream. Compressed chunks
  (zstd/lz4) cannot be recovered here and end it too (the reason says so).
- ``.db3`` (sqlite3): the ``topics`` and ``messages`` tables, in timestamp order, until sqlite
  reports the damage.

Message types come from the mcap schemas / sqlite topic table, so the caller can deserialize
with a ``rosbags`` typestore.
"""

from __future__ import annotations

import sqlite3
import struct
from collections.abc import Iterator
from pathlib import Path

MCAP_MAGIC = b"\x89MCAP0\r\n"
OP_SCHEMA, OP_CHANNEL, OP_MESSAGE, OP_CHUNK = 0x03, 0x04, 0x05, 0x06

#: (topic, message type, log time ns, serialized message)
RawMessage = tuple[str, str, int, bytes]


class RecoveryStop(Exception):
    """The storage ends or is damaged here; everything before it was yielded."""


def storage_file(path: str | Path) -> Path | None:
    """The ``.mcap`` or ``.db3`` file of a bag folder (or the file itself), None if there is none."""
    path = Path(path)
    if path.is_file() and path.suffix in (".mcap", ".db3"):
        return path
    files = sorted(path.glob("*.mcap")) + sorted(path.glob("*.db3")) if path.is_dir() else []
    return files[0] if files else None


def _string(data: bytes, offset: int) -> tuple[str, int]:
    (length,) = struct.unpack_from("<I", data, offset)
    end = offset + 4 + length
    if end > len(data):
        raise struct.error("string past the end of the record")
    return data[offset + 4:end].decode("utf-8"), end


def _records(data: bytes, start: int = 0) -> Iterator[tuple[int, bytes]]:
    offset = start
    while offset < len(data):
        if offset + 9 > len(data):
            raise RecoveryStop(f"record header cut short at byte {offset}")
        opcode, length = struct.unpack_from("<BQ", data, offset)
        end = offset + 9 + length
        if end > len(data):
            if opcode == OP_CHUNK:  # the complete records at the start of a cut chunk still count
                yield opcode, data[offset + 9:]
            raise RecoveryStop(f"record (opcode {opcode:#x}) cut short at byte {offset}")
        yield opcode, data[offset + 9:end]
        offset = end


def _mcap_messages(data: bytes) -> Iterator[RawMessage]:
    if not data.startswith(MCAP_MAGIC):
        raise RecoveryStop("not an mcap file (bad magic)")
    schemas: dict[int, str] = {}
    channels: dict[int, tuple[str, str]] = {}

    def walk(records: Iterator[tuple[int, bytes]]) -> Iterator[RawMessage]:
        for opcode, content in records:
            if opcode == OP_SCHEMA:
                (schema_id,) = struct.unpack_from("<H", content, 0)
                schemas[schema_id], _ = _string(content, 2)
            elif opcode == OP_CHANNEL:
                channel_id, schema_id = struct.unpack_from("<HH", content, 0)
                topic, _ = _string(content, 4)
                channels[channel_id] = (topic, schemas.get(schema_id, ""))
            elif opcode == OP_MESSAGE:
                channel_id, _sequence, log_time, _publish = struct.unpack_from("<HIQQ", content, 0)
                if channel_id in channels:
                    topic, msgtype = channels[channel_id]
                    yield topic, msgtype, log_time, bytes(content[22:])
            elif opcode == OP_CHUNK:
                compression, offset = _string(content, 28)
                (size,) = struct.unpack_from("<Q", content, offset)
                if compression:
                    raise RecoveryStop(f"compressed ({compression}) chunk: not recoverable here")
                yield from walk(_records(content[offset + 8:offset + 8 + size]))

    try:
        yield from walk(_records(data, len(MCAP_MAGIC)))
    except struct.error as error:
        raise RecoveryStop(f"malformed record: {error}") from error


def _sqlite_messages(path: Path) -> Iterator[RawMessage]:
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            topics = {row[0]: (row[1], row[2]) for row in connection.execute("SELECT id, name, type FROM topics")}
            for topic_id, timestamp, data in connection.execute(
                    "SELECT topic_id, timestamp, data FROM messages ORDER BY timestamp"):
                if topic_id in topics:
                    yield topics[topic_id][0], topics[topic_id][1], int(timestamp), bytes(data)
        finally:
            connection.close()
    except sqlite3.DatabaseError as error:
        raise RecoveryStop(f"sqlite3: {error}") from error


def recover_messages(path: str | Path) -> Iterator[RawMessage]:
    """Every complete message of the bag's storage file, in file order; ends with :class:`RecoveryStop`
    at damage (not at a clean end). Raises :class:`RecoveryStop` at once when there is no storage file."""
    storage = storage_file(path)
    if storage is None:
        raise RecoveryStop(f"{path}: no .mcap or .db3 storage file")
    if storage.suffix == ".mcap":
        yield from _mcap_messages(storage.read_bytes())
    else:
        yield from _sqlite_messages(storage)

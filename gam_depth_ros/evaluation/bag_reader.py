"""Reading a rosbag2 for evaluation: camera frames with stamp-matched ground truth.

:func:`read_bag` makes one pass over the chosen topics with the pure-Python ``rosbags`` reader
(sqlite3 or mcap storage) and returns :class:`BagFrames`: every image of ``image_topic`` (Image or
CompressedImage) in bag order with its raw serialized message (for live replay), and for each the
ground-truth depth (``16UC1`` millimetres or ``32FC1`` metres) and labels (``mono8``) whose header
stamps are nearest, if within ``max_dt`` seconds. A bag that cannot be read to the end (truncated,
corrupt, never closed) does not raise: what could be read (through :mod:`.bag_recovery` when
``rosbags`` refuses the file) is returned with ``complete = False`` and the reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gam_depth_ros.evaluation.bag_recovery import RecoveryStop, recover_messages, storage_file
from gam_depth_ros.image_codec import ImageDecodeError, depth_msg_to_metres, header_stamp_ns, image_msg_to_rgb_any

IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")
#: The message types each role's topic may carry.
ROLE_TYPES = {"image": IMAGE_TYPES, "camera_info": ("sensor_msgs/msg/CameraInfo",),
              "depth": ("sensor_msgs/msg/Image",), "labels": ("sensor_msgs/msg/Image",)}


class BagError(ValueError):
    """The bag cannot be evaluated as asked; the message says why (missing topic, bad type ...)."""


@dataclass
class Frame:
    """One camera frame and its matched ground truth."""

    stamp_ns: int
    raw: bytes  # serialized (CDR) image message, as recorded
    rgb: np.ndarray  # [H,W,3] uint8
    depth_m: np.ndarray | None = None  # [h,w] float32 metres, 0 = invalid
    labels: np.ndarray | None = None  # [h,w] uint8 class ids, 255 = void


@dataclass
class BagFrames:
    """What :func:`read_bag` found."""

    frames: list[Frame]
    image_msgtype: str
    camera_info_raw: list[tuple[int, bytes]] = field(default_factory=list)  # (stamp, CDR) in bag order
    camera_info: object | None = None  # the first CameraInfo, deserialized
    topics: dict[str, str] = field(default_factory=dict)  # every topic of the bag -> message type
    complete: bool = True
    reason: str = ""  # why it is incomplete
    skipped: list[str] = field(default_factory=list)  # undecodable messages, one line each


def _typestore():
    from rosbags.typesys import Stores, get_typestore

    return get_typestore(Stores.ROS2_HUMBLE)


class _Source:
    """The bag's messages as ``(topic, msgtype, timestamp, raw)``: through ``rosbags`` when it opens the
    bag, else through :mod:`.bag_recovery` (``recovered`` is then the reason)."""

    def __init__(self, path: Path) -> None:
        from rosbags.highlevel import AnyReader

        self.path, self.recovered = path, ""
        self.types: dict[str, set[str]] = {}  # topic -> every message type its connections declare
        try:
            with AnyReader([path], default_typestore=_typestore()) as reader:
                self.topics = {c.topic: c.msgtype for c in reader.connections}
                for connection in reader.connections:
                    self.types.setdefault(connection.topic, set()).add(connection.msgtype)
        except Exception as error:  # rosbags raises many types for missing, truncated or foreign files
            if storage_file(path) is None:
                raise BagError(f"{path}: cannot open the bag ({error})") from error
            self.recovered = f"the bag is damaged or was never closed ({error}); read what is left"
            self.topics = {}
            try:
                for topic, msgtype, _, _ in recover_messages(path):
                    self.topics.setdefault(topic, msgtype)
                    self.types.setdefault(topic, set()).add(msgtype)
            except RecoveryStop:
                pass
            if not self.topics:
                raise BagError(f"{path}: cannot open the bag ({error}) and no message could be recovered") from error

    def messages(self, topics: set[str]) -> Iterator[tuple[str, str, int, bytes]]:
        if self.recovered:
            for message in recover_messages(self.path):
                if message[0] in topics:
                    yield message
            return
        from rosbags.highlevel import AnyReader

        with AnyReader([self.path], default_typestore=_typestore()) as reader:
            for connection, timestamp, raw in reader.messages([c for c in reader.connections if c.topic in topics]):
                yield connection.topic, connection.msgtype, timestamp, raw


def topic_messages(path: str | Path, topics: set[str]) -> list[tuple[str, str, int, bytes]]:
    """``(topic, msgtype, header stamp, raw)`` of ``topics``, as far as the bag can be read (no error)."""
    store = _typestore()
    out: list[tuple[str, str, int, bytes]] = []
    try:
        for topic, msgtype, timestamp, raw in _Source(Path(path)).messages(topics):
            out.append((topic, msgtype, header_stamp_ns(store.deserialize_cdr(raw, msgtype), timestamp), bytes(raw)))
    except Exception:  # damaged bag: read_bag has already reported it; keep what was read
        pass
    return out


def bag_topics(path: str | Path) -> dict[str, str]:
    """Topic -> message type of every connection in the bag (raises :class:`BagError` if unreadable)."""
    return _Source(Path(path)).topics


def _nearest(stamps: np.ndarray, stamp: int, max_dt_ns: int) -> int | None:
    if stamps.size == 0:
        return None
    index = int(np.argmin(np.abs(stamps - stamp)))
    return index if abs(int(stamps[index]) - stamp) <= max_dt_ns else None


def read_bag(path: str | Path, image_topic: str, camera_info_topic: str = "", depth_topic: str = "",
             label_topic: str = "", max_dt: float = 0.02, max_frames: int = 0) -> BagFrames:
    """Read frames and ground truth (see the module docstring).

    Raises
    ------
    BagError
        The bag cannot be opened, or a requested topic is missing or of the wrong type; the message
        lists the bag's topics.
    """
    path = Path(path)
    source = _Source(path)
    topics = source.topics
    wanted = {"image": image_topic, "camera_info": camera_info_topic, "depth": depth_topic, "labels": label_topic}
    listing = ", ".join(f"{t} ({m})" for t, m in sorted(topics.items())) or "none"
    for role, topic in wanted.items():
        if topic and topic not in topics:
            raise BagError(f"{path}: no topic {topic!r} ({role}); the bag has: {listing}")
    for role, topic in wanted.items():
        declared = sorted(source.types.get(topic, {topics.get(topic, "")})) if topic else []
        if declared and (len(declared) > 1 or declared[0] not in ROLE_TYPES[role]):
            raise BagError(f"{path}: {topic} ({role}) carries {' and '.join(declared)}, expected "
                           f"{' or '.join(ROLE_TYPES[role])}" + (" only" if len(declared) > 1 else ""))

    store = _typestore()
    result = BagFrames([], topics[image_topic], topics=topics, complete=not source.recovered, reason=source.recovered)
    truth: dict[str, list[tuple[int, np.ndarray]]] = {"depth": [], "labels": []}
    roles = {topic: role for role, topic in wanted.items() if topic}
    try:
        for topic, msgtype, timestamp, raw in source.messages(set(roles)):
            role = roles[topic]
            if role == "image" and max_frames and len(result.frames) >= max_frames:
                continue
            try:  # a message that is not what its connection declares (hostile or mislabelled bag)
                msg = store.deserialize_cdr(raw, msgtype)
            except Exception as error:  # rosbags raises SerdeError, struct.error, IndexError ...
                result.skipped.append(f"{topic} @ {timestamp}: not a valid {msgtype} message "
                                      f"({type(error).__name__}: {error})")
                continue
            stamp = header_stamp_ns(msg, timestamp)
            try:
                if role == "image":
                    result.frames.append(Frame(stamp, bytes(raw), image_msg_to_rgb_any(msg, msgtype)))
                elif role == "camera_info":
                    result.camera_info = result.camera_info or msg
                    result.camera_info_raw.append((stamp, bytes(raw)))
                elif role == "depth":
                    truth["depth"].append((stamp, depth_msg_to_metres(msg)))
                elif msg.encoding != "mono8":
                    raise ImageDecodeError(f"label encoding {msg.encoding!r} unsupported; expected mono8")
                else:
                    rows = np.asarray(msg.data, np.uint8)[: msg.height * msg.step].reshape(msg.height, msg.step)
                    truth["labels"].append((stamp, rows[:, : msg.width].copy()))
            except (ImageDecodeError, ValueError) as error:
                result.skipped.append(f"{topic} @ {stamp}: {error}")
    except RecoveryStop as stop:
        result.complete, result.reason = False, f"{source.recovered}: stopped at damage ({stop})"
    except Exception as error:  # truncated or corrupt storage: keep what was read
        result.complete = False
        result.reason = f"the bag could not be read to the end ({type(error).__name__}: {error})"
    max_dt_ns = int(max_dt * 1e9)
    for role, attribute in (("depth", "depth_m"), ("labels", "labels")):
        stamps = np.array([s for s, _ in truth[role]], dtype=np.int64)
        for frame in result.frames:
            index = _nearest(stamps, frame.stamp_ns, max_dt_ns)
            if index is not None:
                setattr(frame, attribute, truth[role][index][1])
    return result

"""INT8 calibration data: images from a folder or a rosbag2, as network input batches.

Pure numpy + OpenCV (+ ``rosbags`` for bags), no TensorRT: the TensorRT calibrator in
:mod:`gam_depth_ros.inference.tensorrt_support` copies these batches to the GPU.

Every image goes through :func:`gam_depth_ros.inference.preprocessing.to_network_input`, the
same pre-processing as inference, so the calibrated ranges are those the engine will see. Use
a few hundred images of the deployment scenes (TensorRT's guidance for image networks is about
500); more only adds build time. Images are taken evenly spread over the folder (sorted by
path) or the bag's topic (in bag order), so consecutive near-duplicate video frames do not
dominate.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from gam_depth_ros.inference.preprocessing import to_network_input

LOG = logging.getLogger("gam_depth_ros.calibration")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".tif", ".tiff", ".webp")
DEFAULT_CALIBRATION_IMAGES = 500


class CalibrationError(ValueError):
    """Calibration data cannot be read; the message names the folder, bag or topic."""


def evenly_spread(count: int, limit: int) -> list[int]:
    """``min(count, limit)`` indices spread evenly over ``range(count)``, first one included."""
    if count <= 0 or limit <= 0:
        return []
    if count <= limit:
        return list(range(count))
    return [int(i * count / limit) for i in range(limit)]


def folder_image_paths(folder: str | Path, limit: int = DEFAULT_CALIBRATION_IMAGES) -> list[Path]:
    """Image files under ``folder`` (recursively, sorted), at most ``limit`` spread evenly."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CalibrationError(f"{folder}: calibration image folder does not exist")
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not paths:
        raise CalibrationError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)}) for calibration")
    return [paths[i] for i in evenly_spread(len(paths), limit)]


def iter_folder_images(paths: Iterable[Path]) -> Iterator[np.ndarray]:
    """[H, W, 3] uint8 RGB of each file (grey, RGBA and 16-bit converted; EXIF orientation ignored)."""
    for path in paths:
        # imdecode of the bytes rather than imread: a clear error for unreadable files and non-ASCII paths.
        try:
            raw = np.fromfile(path, dtype=np.uint8)
        except OSError as error:
            raise CalibrationError(f"{path}: cannot read calibration image: {error}") from error
        bgr = cv2.imdecode(raw, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION) if raw.size else None
        if bgr is None:
            raise CalibrationError(f"{path}: cannot read calibration image: not a decodable image")
        yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def iter_bag_images(bag: str | Path, topic: str, limit: int = DEFAULT_CALIBRATION_IMAGES) -> Iterator[np.ndarray]:
    """[H, W, 3] uint8 RGB from ``topic`` (``sensor_msgs/Image`` or ``CompressedImage``) of a rosbag2.

    At most ``limit`` messages, spread evenly over the topic (sqlite3 or mcap storage).
    """
    from rosbags.highlevel import AnyReader
    from rosbags.typesys import Stores, get_typestore

    from gam_depth_ros.image_codec import ImageDecodeError, compressed_msg_to_rgb, image_msg_to_rgb

    bag = Path(bag)
    try:
        reader = AnyReader([bag], default_typestore=get_typestore(Stores.ROS2_HUMBLE))
        reader.open()
    except Exception as error:  # rosbags raises its own ReaderError, AnyReaderError, ...
        raise CalibrationError(f"{bag}: cannot open rosbag2: {error}") from error
    try:
        connections = [c for c in reader.connections if c.topic == topic]
        if not connections:
            topics = sorted({c.topic for c in reader.connections})
            raise CalibrationError(f"{bag}: topic {topic!r} not in the bag; it has {topics}")
        count = sum(c.msgcount for c in connections)
        keep = set(evenly_spread(count, limit))
        for position, (connection, _stamp, raw) in enumerate(reader.messages(connections=connections)):
            if position not in keep:
                continue
            msg: Any = reader.deserialize(raw, connection.msgtype)
            try:
                if connection.msgtype.endswith("CompressedImage"):
                    yield compressed_msg_to_rgb(msg)
                else:
                    yield np.ascontiguousarray(image_msg_to_rgb(msg))
            except ImageDecodeError as error:
                raise CalibrationError(f"{bag}: message {position} on {topic}: {error}") from error
    finally:
        reader.close()


@dataclass(frozen=True)
class CalibrationSource:
    """Where calibration images come from: an image folder, or a rosbag2 and its image topic."""

    path: Path
    topic: str | None = None  # set for a rosbag2, None for a folder
    limit: int = DEFAULT_CALIBRATION_IMAGES

    def images(self) -> Iterator[np.ndarray]:
        if self.topic is None:
            return iter_folder_images(folder_image_paths(self.path, self.limit))
        return iter_bag_images(self.path, self.topic, self.limit)

    def describe(self) -> dict[str, Any]:
        """For the engine metadata JSON."""
        kind = "rosbag2" if self.topic is not None else "images"
        return {"kind": kind, "path": str(self.path), "topic": self.topic, "limit": self.limit}


class CalibrationBatches:
    """Network-input batches [batch_size, 3, height, width] float32 from images.

    Parameters
    ----------
    images:
        [H, W, 3] uint8 RGB images of any size (resized by ``to_network_input``).
    height, width:
        Network input size.
    batch_size:
        Images per batch; must equal the engine input's batch dimension (1 for exported models).
        A last, incomplete batch is dropped.

    Iterate once; :attr:`images_used` counts the images that went into yielded batches.
    """

    def __init__(self, images: Iterable[np.ndarray], height: int, width: int, batch_size: int = 1) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self._images = images
        self.height, self.width, self.batch_size = height, width, batch_size
        self.images_used = 0

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (self.batch_size, 3, self.height, self.width)

    def __iter__(self) -> Iterator[np.ndarray]:
        batch = np.empty(self.shape, dtype=np.float32)
        filled = 0
        for image in self._images:
            batch[filled] = to_network_input(image, self.height, self.width)[0]
            filled += 1
            if filled == self.batch_size:
                self.images_used += filled
                yield batch
                batch = np.empty(self.shape, dtype=np.float32)
                filled = 0
        if filled:
            LOG.info("calibration: dropped a last incomplete batch of %d image(s)", filled)


def calibration_cache_path(
    onnx_path: str | Path, onnx_sha256: str, height: int, width: int, cache_dir: Path | None = None
) -> Path:
    """Where TensorRT's INT8 calibration table for this model and size is kept.

    The ONNX hash is part of the name, so a re-exported model never reuses an old table.
    """
    onnx_path = Path(onnx_path)
    name = f"{onnx_path.stem}.{onnx_sha256[:12]}.{height}x{width}.int8-calibration.cache"
    return (cache_dir or onnx_path.parent) / name


"""rosbag2 recordings as training data (``source: rosbag``), read with the pure-Python ``rosbags``.

``data.path`` is a rosbag2 folder (sqlite3 or mcap storage), a glob (``recordings/2026-*``) or a
list of either: a robot's recordings come as many bags. Each bag is its own sequence (no sample
spans two bags). On first use each bag is scanned once and its useful frames are extracted into
an image-sequence folder (the layout of :mod:`training.data.folder`), which then serves the
samples; later runs with the same settings reuse it (``manifest.yaml`` records bag, settings and
what was dropped; a change rebuilds it). Every run logs per bag how many frames were kept, how many
were dropped and why (near-stationary, stamp out of order, outside the odometry), and how many
samples the spacing rule found.

Source frames are spaced by camera motion when the bag gives poses (``odometry_topic``), else by
time (``spacing: auto``, :mod:`training.data.spacing`; 5-15 cm or 3-10 degrees, or 0.2-0.6 s),
so one configuration fits 10, 15 and 30 Hz cameras; ``stride`` alone selects the old frame-count
rule.

Extraction
----------
- images from ``options.topic``: ``sensor_msgs/msg/Image`` (rgb8, bgr8, rgba8, bgra8, mono8) or
  ``sensor_msgs/msg/CompressedImage`` (JPEG/PNG), in bag order;
- near-stationary frames are skipped: a frame is kept only when the mean absolute difference of
  its grey image (0..255, downsampled to at most 160 px wide) to the last *kept* frame is at least
  ``options.min_motion`` (0 keeps every frame);
- intrinsics from the first ``sensor_msgs/msg/CameraInfo`` on ``options.camera_info_topic``, or
  from ``options.intrinsics`` (a mapping in the ``intrinsics.yaml`` format); plumb_bob distortion
  is removed when ``options.undistort`` (true) - set it false for rectified topics;
- optional ground truth from ``options.depth_topic`` (``16UC1`` millimetres or ``32FC1`` metres,
  registered to the colour image): per kept frame the depth message with the nearest header stamp
  within ``options.depth_max_dt`` seconds, resized (nearest) to the image size, saved as
  ``depth/<stem>.npy`` in metres;
- optional camera poses from the robot's odometry on ``options.odometry_topic`` (for
  ``networks.pose_source: data``; :mod:`training.data.bag_poses`): the body pose interpolated at
  each kept frame's stamp (gaps up to ``options.pose_max_dt`` seconds, 0.2), times the
  body-from-camera transform from ``options.tf_static_topic`` (``/tf_static``) or
  ``options.camera_extrinsic``; the camera frame is the images' ``frame_id`` unless
  ``options.camera_frame`` says otherwise. Frames outside the odometry's span are dropped.
  Written as ``poses.txt``.

Frames are named by their header stamp in nanoseconds (``images/<stamp:019d>.png``), the keys of
side files. ``DataConfig.options``: ``topic`` (required), ``camera_info_topic``, ``intrinsics``,
``undistort``, ``min_motion`` (1.0), ``depth_topic``, ``depth_max_dt`` (0.02), ``cache_dir``
(default ``<bag folder>_frames`` beside the bag), ``odometry_topic``, ``tf_static_topic``,
``camera_frame``, ``body_frame``, ``camera_extrinsic`` (``{translation: [x, y, z], rotation: [qx, qy,
qz, qw]}``), ``pose_max_dt``, ``spacing`` and its ranges, ``stride``, ``labels_dir``, ``structure_dir``
(folder options; labels and structure default to folders inside each bag's cache, and cannot be
shared by several bags). With several bags, ``cache_dir`` is a parent folder: ``<cache_dir>/<bag
name>`` per bag.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from PIL import Image

from gam_depth_ros.config_io import MAX_YAML_BYTES, ConfigError, parse_yaml, read_text_limited
from gam_depth_ros.image_codec import ImageDecodeError, depth_msg_to_metres, header_stamp_ns, image_msg_to_rgb_any
from training.data.bag_poses import body_from_camera, read_pose_topic, read_static_transforms
from training.data.common import DataError, resize_nearest
from training.data.folder import INTRINSICS_FILE, POSES_FILE
from training.data.poses import interpolate_poses, write_pose_file
from training.data.spacing import OPTION_KEYS as SPACING_OPTIONS

LOG = logging.getLogger("training.data")

POSE_OPTIONS = ("odometry_topic", "tf_static_topic", "camera_frame", "body_frame", "camera_extrinsic", "pose_max_dt")
EXTRACT_OPTIONS = ("topic", "camera_info_topic", "intrinsics", "undistort", "min_motion", "depth_topic",
                   "depth_max_dt", *POSE_OPTIONS)
OPTIONS = {*EXTRACT_OPTIONS, *SPACING_OPTIONS, "cache_dir", "labels_dir", "structure_dir"}
MANIFEST = "manifest.yaml"
MOTION_WIDTH = 160  # grey images are downsampled to at most this width for the stationarity test


def _grey_small(rgb: np.ndarray) -> np.ndarray:
    step = max(1, int(np.ceil(rgb.shape[1] / MOTION_WIDTH)))
    small = rgb[::step, ::step].astype(np.float32)
    return small @ np.array([0.299, 0.587, 0.114], np.float32)


def _camera_from_info(msg) -> dict[str, Any]:
    k = np.asarray(msg.k, dtype=np.float64).reshape(3, 3)
    camera: dict[str, Any] = {"fx": float(k[0, 0]), "fy": float(k[1, 1]), "cx": float(k[0, 2]), "cy": float(k[1, 2]),
                              "width": int(msg.width), "height": int(msg.height)}
    d = [float(v) for v in np.asarray(msg.d, dtype=np.float64)]
    if any(d):
        model = str(msg.distortion_model)
        if model != "plumb_bob" and not (model == "rational_polynomial" and not any(d[5:])):
            raise DataError(f"camera_info distortion model {model!r} is not supported (plumb_bob only); "
                            "use a rectified image topic with options.undistort false")
        camera["distortion"] = d[:5]
    return camera


class _Extractor:
    """One pass over a bag writing an image-sequence folder (see the module docstring)."""

    def __init__(self, bag: Path, options: dict[str, Any]) -> None:
        self.bag, self.options = bag, options
        self.stats = {"messages": 0, "kept": 0, "stationary": 0, "stamp_out_of_order": 0, "no_odometry": 0}
        if not options.get("topic"):
            raise DataError(f"{bag}: rosbag data needs options.topic (the image topic)")

    def run(self, out: Path) -> dict[str, int]:
        """Write the folder into ``out``; the frame counts (:attr:`stats`)."""
        from rosbags.highlevel import AnyReader
        from rosbags.typesys import Stores, get_typestore

        opts = self.options
        try:
            reader = AnyReader([self.bag], default_typestore=get_typestore(Stores.ROS2_HUMBLE))
            reader.open()
        except Exception as error:  # rosbags raises its own ReaderError, AnyReaderError, ...
            raise DataError(f"{self.bag}: cannot open rosbag2: {error}") from error
        try:
            topics = {c.topic: c for c in reader.connections}
            for key in ("topic", "camera_info_topic", "depth_topic", "odometry_topic"):
                if opts.get(key) and opts[key] not in topics:
                    raise DataError(f"{self.bag}: topic {opts[key]!r} ({key}) not in the bag; it has {sorted(topics)}")
            camera = self._camera(reader, topics)
            (out / "images").mkdir(parents=True)
            stamps, size, camera_frame = self._images(reader, topics[opts["topic"]], out / "images")
            if opts.get("odometry_topic"):
                stamps = self._poses(reader, topics, stamps, camera_frame, out)
            if not stamps:
                raise DataError(f"{self.bag}: no frame kept from {opts['topic']}")
            if (camera["height"], camera["width"]) != size:
                raise DataError(f"{self.bag}: images are {size[1]}x{size[0]} but the intrinsics are for "
                                f"{camera['width']}x{camera['height']}")
            if not opts.get("undistort", True):
                camera.pop("distortion", None)
            (out / INTRINSICS_FILE).write_text(yaml.safe_dump(camera, sort_keys=False), encoding="utf-8")
            if opts.get("depth_topic"):
                self._depth(reader, topics[opts["depth_topic"]], stamps, size, out / "depth")
        finally:
            reader.close()
        self.stats["kept"] = len(stamps)
        return self.stats

    def _camera(self, reader, topics) -> dict[str, Any]:
        opts = self.options
        if opts.get("camera_info_topic"):
            for connection, _, raw in reader.messages(connections=[topics[opts["camera_info_topic"]]]):
                return _camera_from_info(reader.deserialize(raw, connection.msgtype))
            raise DataError(f"{self.bag}: no message on {opts['camera_info_topic']}")
        if isinstance(opts.get("intrinsics"), dict):
            return dict(opts["intrinsics"])
        raise DataError(
            f"{self.bag}: give options.camera_info_topic or options.intrinsics (fx, fy, cx, cy, width, height)"
        )

    def _images(self, reader, connection, folder: Path) -> tuple[list[int], tuple[int, int], str]:
        min_motion = float(self.options.get("min_motion", 1.0))
        stamps: list[int] = []
        size: tuple[int, int] | None = None
        last = None
        seen = 0
        frame_id = ""
        for conn, timestamp, raw in reader.messages(connections=[connection]):
            msg = reader.deserialize(raw, conn.msgtype)
            stamp = header_stamp_ns(msg, timestamp)
            frame_id = frame_id or msg.header.frame_id
            try:
                rgb = image_msg_to_rgb_any(msg, conn.msgtype)
            except ImageDecodeError as error:
                raise DataError(f"{self.bag}: {conn.topic} message at {stamp} ns: {error}") from error
            seen += 1
            if size is None:
                size = rgb.shape[:2]
            elif rgb.shape[:2] != size:
                raise DataError(f"{self.bag}: {conn.topic} message at {stamp} ns is {rgb.shape[1]}x{rgb.shape[0]}, "
                                f"earlier frames {size[1]}x{size[0]}")
            grey = _grey_small(rgb)
            if last is not None and float(np.abs(grey - last).mean()) < min_motion:
                self.stats["stationary"] += 1
                continue
            if stamps and stamp <= stamps[-1]:
                self.stats["stamp_out_of_order"] += 1
                continue  # duplicate or out-of-order stamp: names must stay unique and sorted
            last = grey
            stamps.append(stamp)
            Image.fromarray(rgb).save(folder / f"{stamp:019d}.png", compress_level=1)
        self.stats["messages"] = seen
        return stamps, size or (0, 0), frame_id

    def _poses(self, reader, topics, stamps: list[int], camera_frame: str, out: Path) -> list[int]:
        """Write ``poses.txt`` for the frames with odometry; delete the others' images; their stamps."""
        opts = self.options
        fixed_stamps, fixed_from_body, body = read_pose_topic(reader, topics[opts["odometry_topic"]], self.bag)
        body = opts.get("body_frame") or body
        camera = opts.get("camera_frame") or camera_frame
        tf_topic = opts.get("tf_static_topic", "/tf_static")
        edges = read_static_transforms(reader, topics[tf_topic]) if tf_topic in topics else None
        extrinsic = body_from_camera(opts, edges, body, camera, self.bag)
        max_gap = int(float(opts.get("pose_max_dt", 0.2)) * 1e9)
        poses = interpolate_poses(fixed_stamps, fixed_from_body, np.asarray(stamps), max_gap) @ extrinsic
        keep = np.isfinite(poses).all(axis=(1, 2))
        self.stats["no_odometry"] = int((~keep).sum())
        for stamp in np.asarray(stamps)[~keep]:
            (out / "images" / f"{stamp:019d}.png").unlink()
        LOG.debug("%s: camera poses from %s for %d of %d frames (%s -> %s)", self.bag, opts["odometry_topic"],
                  int(keep.sum()), len(stamps), body, camera)
        kept = [s for s, k in zip(stamps, keep) if k]
        if kept:
            write_pose_file(out / POSES_FILE, kept, poses[keep])
        return kept

    def _depth(self, reader, connection, stamps: list[int], size: tuple[int, int], folder: Path) -> None:
        folder.mkdir()
        max_dt = int(float(self.options.get("depth_max_dt", 0.02)) * 1e9)
        keys = np.asarray(stamps, dtype=np.int64)
        best: dict[int, int] = {}
        for conn, timestamp, raw in reader.messages(connections=[connection]):
            msg = reader.deserialize(raw, conn.msgtype)
            stamp = header_stamp_ns(msg, timestamp)
            i = int(np.searchsorted(keys, stamp))
            candidates = [j for j in (i - 1, i) if 0 <= j < len(keys)]
            j = min(candidates, key=lambda c: abs(int(keys[c]) - stamp))
            dt = abs(int(keys[j]) - stamp)
            if dt > max_dt or dt >= best.get(j, max_dt + 1):
                continue
            try:
                depth = depth_msg_to_metres(msg)
            except ImageDecodeError as error:
                raise DataError(f"{self.bag}: {conn.topic} message at {stamp} ns: {error}") from error
            best[j] = dt
            np.save(folder / f"{stamps[j]:019d}.npy", resize_nearest(depth, *size))
        LOG.info("%s: ground-truth depth for %d of %d frames", self.bag, len(best), len(stamps))


def _bag_signature(bag: Path) -> list[list]:
    files = sorted(p for p in bag.rglob("*") if p.is_file()) if bag.is_dir() else [bag]
    return [[p.name, p.stat().st_size, int(p.stat().st_mtime)] for p in files]


def extract_bag(bag: str | Path, options: dict[str, Any], cache_dir: str | Path | None = None) -> Path:
    """Extract (or reuse) the image-sequence folder of ``bag``; returns its path (counts: :func:`extraction_stats`)."""
    bag = Path(bag)
    if not bag.exists():
        raise DataError(f"{bag}: rosbag does not exist")
    cache = Path(cache_dir) if cache_dir else bag.parent / f"{bag.name}_frames"
    manifest = {"bag": str(bag.resolve()), "files": _bag_signature(bag),
                "settings": {k: options.get(k) for k in EXTRACT_OPTIONS}}
    if _manifest_matches(cache, manifest):
        return cache
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{cache.name}.", dir=cache.parent))
    try:
        stats = _Extractor(bag, options).run(tmp / "data")
        (tmp / "data" / MANIFEST).write_text(yaml.safe_dump(manifest | {"frames": stats["kept"], "stats": stats}),
                                            encoding="utf-8")
        if cache.exists() and not _manifest_matches(cache, manifest):
            shutil.rmtree(cache)
        try:
            os.replace(tmp / "data", cache)
        except OSError:
            if not _manifest_matches(cache, manifest):  # another process finished first with other settings
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return cache


def extraction_stats(cache: str | Path) -> dict[str, int]:
    """Frame counts recorded when ``cache`` was extracted: messages, kept, and each reason for a drop."""
    path = Path(cache) / MANIFEST
    try:
        stored = parse_yaml(read_text_limited(path, MAX_YAML_BYTES, "manifest"), str(path))
    except ConfigError as error:
        raise DataError(str(error)) from error
    stats = stored.get("stats") if isinstance(stored, dict) else None
    return {str(k): int(v) for k, v in stats.items()} if isinstance(stats, dict) else {}


def _manifest_matches(cache: Path, manifest: dict[str, Any]) -> bool:
    try:
        stored = parse_yaml(read_text_limited(cache / MANIFEST, MAX_YAML_BYTES, "manifest"), str(cache / MANIFEST))
    except ConfigError:
        return False
    return isinstance(stored, dict) and all(
        yaml.safe_load(yaml.safe_dump(manifest[k])) == stored.get(k) for k in ("bag", "files", "settings"))

"""``gam-depth-synth``: procedural indoor video with exact depth, labels and poses.

Each sequence is one random furnished room (:mod:`.scene`) seen along a camera trajectory
(:mod:`.trajectory`, ``robot`` or ``handheld`` motion) at 30 Hz (``--fps``), rendered by the ray caster of
:mod:`.room`; sequence ``i`` of a run with seed ``S`` is a pure function of ``(S, i)``. Usage::

    .venv/bin/python -m training.synthetic.generate --output data/synth --sequences 20 --frames 150 \\
        --height 96 --width 128 --motion handheld --format folder --label-noise light

Outputs per sequence ``seq_NNNN`` (``--format folder``, ``bag`` or ``both``):

- folder (the image-sequence layout of :mod:`training.data.folder`, trainable as ``source: folder``
  with ``data.path`` the output folder): ``images/<stamp>.png`` RGB, ``depth/<stamp>.npy`` float32
  metres (camera z), ``labels/<stamp>.png`` uint8 NYU-40 ids (noise applied if requested; exact ones
  in ``labels_exact/`` then), ``intrinsics.yaml``, ``poses.txt`` (``stamp_ns tx ty tz qx qy qz qw``,
  world-from-camera, ROS optical axes), ``sequence.yaml`` (seed, motion, camera height, room size);
- bag (``seq_NNNN_bag/``, rosbag2, mcap storage) with :data:`TOPICS`: colour image rgb8, camera info
  (plumb_bob, no distortion), ground-truth depth 32FC1 metres or 16UC1 millimetres, ground-truth
  labels mono8; every message of a frame has the same header stamp (``--fps`` from ``START_NS``) and
  frame id ``camera_optical_frame``. Like a robot's recording it also holds the odometry
  (``/odom``, ``nav_msgs/Odometry`` of ``base_link`` in ``odom``, z up, at the frame stamps) and
  ``/tf_static`` with the camera's mounting (``base_link`` -> ``camera_optical_frame``:
  :func:`base_from_camera`).

The Python API (:func:`render_sequence`, :func:`write_folder`, :func:`write_bag`) serves the tests,
the benchmarks and ``make demo``. ``scripts/gam-depth-synth`` runs this module from any directory.

Speed (frames per CPU second on one core of the development machine, ``bench/generator_speed.py``):
plain 128x160 about 170, 480x640 about 17; rich 192x256 with ``--supersample 3`` about 4. ``--workers``
renders sequences in parallel processes.
"""

from __future__ import annotations

import argparse
import multiprocessing
import shutil
import sys
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from training.data.poses import homogeneous, matrix_quaternion, write_pose_file
from training.synthetic.label_noise import LEVELS, degrade_labels
from training.synthetic.relit_scene import relit_scene
from training.synthetic.rich_scene import rich_scene
from training.synthetic.room import intrinsics, render
from training.synthetic.scene import FLOOR_Y, Scene, random_scene
from training.synthetic.trajectory import FPS, MARGIN, ROBOT_PITCH, NoFreeFloorError, rotation, trajectory

TOPICS = {
    "image": "/camera/image_raw",
    "camera_info": "/camera/camera_info",
    "depth": "/camera/depth/image_raw",
    "labels": "/camera/labels",
}
FRAME_ID = "camera_optical_frame"
ODOM_TOPIC, TF_STATIC_TOPIC = "/odom", "/tf_static"
ODOM_FRAME, BODY_FRAME = "odom", "base_link"
# REP 103 (x forward, y left, z up) from the optical axes (x right, y down, z forward); also odom from
# the generator's world, whose y points down
BODY_FROM_OPTICAL = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
STYLES = ("plain", "rich", "rich_nonperiodic", "rich_unlit", "relit")
START_NS = 1_700_000_000 * 10**9  # stamps are deterministic: 2023-11-14 22:13:20 UTC + frame / 30 s
MAX_ROOM_REDRAWS = 8  # rooms drawn again, at most, when one leaves the camera no free floor
ROOM_REDRAW_STREAM = 2  # a redrawn room's generator: (seed, index, 2, redraw); (seed, index, 1) is the label noise's


@dataclass
class Sequence:
    """One rendered sequence (F frames of H x W)."""

    images: np.ndarray  # [F,H,W,3] uint8 RGB
    depth: np.ndarray  # [F,H,W] float32 metres (camera z)
    labels: np.ndarray  # [F,H,W] uint8 exact NYU-40 ids
    noisy_labels: np.ndarray | None  # [F,H,W] uint8 degraded labels, None without noise
    poses: list[tuple[np.ndarray, np.ndarray]]  # world-from-camera (R [3,3], t [3]) per frame
    K: np.ndarray  # [3,3] intrinsics
    stamps_ns: np.ndarray  # [F] int64
    info: dict  # seed, motion, camera height, room size


def _draw_scene(rng: np.random.Generator, style: str) -> Scene:
    """A random furnished room of ``style`` (see :func:`render_sequence`)."""
    if style == "plain":
        return random_scene(rng)
    if style == "relit":
        return relit_scene(rng)
    scene = rich_scene(rng, "nonperiodic" if style == "rich_nonperiodic" else "all")
    if style == "rich_unlit":
        return Scene(replace(scene.room, lights=()), scene.footprints)
    return scene


def render_sequence(seed: int, index: int, frames: int, height: int, width: int, motion: str = "handheld",
                    camera_height: float | None = 0.8, hfov_deg: float = 65.0, label_noise: str = "none",
                    style: str = "plain", supersample: int = 1, fps: float = FPS,
                    waypoint_margin: float = MARGIN, robot_start_turn_deg: float = 180.0) -> Sequence:
    """Render sequence ``index`` of a run with ``seed`` (see the module docstring).

    ``style``: ``plain`` (the first generator's rooms, :mod:`.scene`), ``rich``
    (:mod:`.rich_scene`), ``rich_nonperiodic`` (the same rooms, trajectories, depth and labels with
    textures that do not repeat), ``rich_unlit`` (the rich rooms without their point lights: the plain
    style's fixed shading per face orientation, to measure what the lights do to learning) or
    ``relit`` (:mod:`.relit_scene`: the plain rooms re-dressed and lit by lamps). ``fps``: frames per
    second of the trajectory and the stamps. ``camera_height`` None: the robot camera's height is drawn
    from 0.2-1.2 m per sequence (small robots to tall ones) and its pitch from 0-17 degrees down.
    ``supersample``: rays per pixel side for the colour (:func:`.room.render`); the room, the
    trajectory, depth and labels do not depend on it. ``waypoint_margin``: metres between the
    trajectory's waypoints (where the camera stops and turns) and walls or furniture.
    ``robot_start_turn_deg``: the robot's first heading lies within this of its first leg's (180: any
    heading, the default; smaller values let short sequences drive instead of only turning).
    A room whose furniture leaves the camera no free floor is drawn again (``info["room_redraws"]``,
    at most :data:`MAX_ROOM_REDRAWS` times, then :class:`NoFreeFloorError` naming the sequence).
    """
    if style not in STYLES:
        raise ValueError(f"style must be one of {STYLES}, got {style!r}")
    requested_height = camera_height  # None: drawn with the room
    for redraw in range(MAX_ROOM_REDRAWS + 1):
        # The first draw is the room every earlier dataset holds; a room whose furniture leaves the camera no
        # free floor (seed 32, sequence 97 of the rich rooms) is drawn again from a stream of its own.
        rng = np.random.default_rng([seed, index] if redraw == 0 else [seed, index, ROOM_REDRAW_STREAM, redraw])
        scene = _draw_scene(rng, style)
        pitch, camera_height = ROBOT_PITCH, requested_height
        if camera_height is None:
            camera_height, pitch = float(rng.uniform(0.2, 1.2)), float(rng.uniform(-0.3, 0.0))
        try:
            poses = trajectory(scene, frames, rng, motion, camera_height, pitch, fps, waypoint_margin,
                               robot_start_turn_deg)
            break
        except NoFreeFloorError as error:
            if redraw == MAX_ROOM_REDRAWS:
                raise NoFreeFloorError(f"sequence {index} of seed {seed}: none of the {redraw + 1} rooms drawn "
                                       f"leaves the camera free floor ({error})") from None
    K = intrinsics(width, height, hfov_deg)
    views = [render(scene.room, K, R, t, width, height, supersample) for R, t in poses]
    labels = np.stack([v.labels for v in views])
    noise_rng = np.random.default_rng([seed, index, 1])
    noisy = None if label_noise == "none" else np.stack([degrade_labels(x, noise_rng, label_noise) for x in labels])
    lo, hi = scene.room.lo, scene.room.hi
    info = {"seed": seed, "index": index, "motion": motion, "fps": fps, "hfov_deg": hfov_deg,
            "camera_height_m": camera_height if motion == "robot" else None,
            "camera_pitch_rad": pitch if motion == "robot" else None, "style": style, "supersample": supersample,
            "floor_y": FLOOR_Y, "waypoint_margin_m": waypoint_margin,
            "robot_start_turn_deg": robot_start_turn_deg if motion == "robot" else None,
            "room_size_m": [round(float(b - a), 3) for a, b in zip(lo, hi)], "label_noise": label_noise,
            "room_redraws": redraw}
    return Sequence(np.stack([v.image for v in views]), np.stack([v.depth for v in views]), labels, noisy,
                    poses, K, START_NS + np.round(np.arange(frames) * 1e9 / fps).astype(np.int64), info)


def world_from_camera(sequence: Sequence) -> np.ndarray:
    """``[F,4,4]`` homogeneous world-from-camera poses of the frames."""
    return np.stack([homogeneous(R, t) for R, t in sequence.poses])


def base_from_camera(camera_height: float, pitch: float = ROBOT_PITCH) -> np.ndarray:
    """``[4,4]`` pose of the camera optical frame in ``base_link``: ``camera_height`` above it, pitched down."""
    return homogeneous(BODY_FROM_OPTICAL @ rotation(0.0, pitch), [0.0, 0.0, camera_height])


def write_folder(sequence: Sequence, folder: str | Path) -> Path:
    """Write ``sequence`` in the image-sequence folder layout (module docstring); returns the folder."""
    folder = Path(folder)
    for sub in ("images", "depth", "labels") + (("labels_exact",) if sequence.noisy_labels is not None else ()):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    labels = sequence.labels if sequence.noisy_labels is None else sequence.noisy_labels
    for i, stamp in enumerate(sequence.stamps_ns):
        stem = f"{stamp:019d}"
        Image.fromarray(sequence.images[i]).save(folder / "images" / f"{stem}.png")
        np.save(folder / "depth" / f"{stem}.npy", sequence.depth[i])
        Image.fromarray(labels[i]).save(folder / "labels" / f"{stem}.png")
        if sequence.noisy_labels is not None:
            Image.fromarray(sequence.labels[i]).save(folder / "labels_exact" / f"{stem}.png")
    height, width = sequence.depth.shape[1:]
    K = sequence.K
    (folder / "intrinsics.yaml").write_text(yaml.safe_dump({
        "fx": float(K[0, 0]), "fy": float(K[1, 1]), "cx": float(K[0, 2]), "cy": float(K[1, 2]),
        "width": int(width), "height": int(height)}, sort_keys=False))
    write_pose_file(folder / "poses.txt", sequence.stamps_ns, world_from_camera(sequence))
    (folder / "sequence.yaml").write_text(yaml.safe_dump(sequence.info, sort_keys=False))
    return folder


def write_bag(sequence: Sequence, path: str | Path, depth_encoding: str = "32FC1", storage: str = "mcap",
              topics: dict[str, str] | None = None) -> Path:
    """Write ``sequence`` as a rosbag2 with :data:`TOPICS` (module docstring); returns the bag folder.

    ``topics`` renames some: keys of :data:`TOPICS` and ``odometry`` (``/odom``).
    """
    names = {**TOPICS, "odometry": ODOM_TOPIC, **(topics or {})}
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    if depth_encoding not in ("32FC1", "16UC1"):
        raise ValueError(f"depth encoding must be 32FC1 or 16UC1, got {depth_encoding!r}")
    store = get_typestore(Stores.ROS2_HUMBLE)
    T = store.types
    height, width = sequence.depth.shape[1:]
    labels = sequence.labels if sequence.noisy_labels is None else sequence.noisy_labels
    K = sequence.K

    def header(ns: int, frame_id: str = FRAME_ID):
        stamp = T["builtin_interfaces/msg/Time"](sec=int(ns // 10**9), nanosec=int(ns % 10**9))
        return T["std_msgs/msg/Header"](stamp=stamp, frame_id=frame_id)

    def image(ns: int, array: np.ndarray, encoding: str):
        data = np.ascontiguousarray(array)
        step = data.shape[1] * data.itemsize * (data.shape[2] if data.ndim == 3 else 1)
        return T["sensor_msgs/msg/Image"](header=header(ns), height=height, width=width, encoding=encoding,
                                          is_bigendian=0, step=step, data=data.view(np.uint8).reshape(-1))

    def vector(v):
        return T["geometry_msgs/msg/Vector3"](x=float(v[0]), y=float(v[1]), z=float(v[2]))

    def quaternion(R):
        x, y, z, w = matrix_quaternion(R)
        return T["geometry_msgs/msg/Quaternion"](x=x, y=y, z=z, w=w)

    def odometry(ns: int, pose: np.ndarray):
        p = pose[:3, 3]
        point = T["geometry_msgs/msg/Point"](x=float(p[0]), y=float(p[1]), z=float(p[2]))
        zero = T["geometry_msgs/msg/Twist"](linear=vector(np.zeros(3)), angular=vector(np.zeros(3)))
        return T["nav_msgs/msg/Odometry"](
            header=header(ns, ODOM_FRAME), child_frame_id=BODY_FRAME,
            pose=T["geometry_msgs/msg/PoseWithCovariance"](
                pose=T["geometry_msgs/msg/Pose"](position=point, orientation=quaternion(pose[:3, :3])),
                covariance=np.zeros(36)),
            twist=T["geometry_msgs/msg/TwistWithCovariance"](twist=zero, covariance=np.zeros(36)))

    mounting = base_from_camera(sequence.info.get("camera_height_m") or 0.8,
                                sequence.info.get("camera_pitch_rad") or ROBOT_PITCH)
    odom_from_world = homogeneous(BODY_FROM_OPTICAL, np.zeros(3))
    odom_from_base = odom_from_world @ world_from_camera(sequence) @ np.linalg.inv(mounting)
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    path = Path(path)
    with Writer(path, version=9, storage_plugin=plugin) as writer:
        connections = {key: writer.add_connection(topic, "sensor_msgs/msg/CameraInfo" if key == "camera_info"
                                                  else "sensor_msgs/msg/Image", typestore=store)
                       for key, topic in names.items() if key in TOPICS}
        odom = writer.add_connection(names["odometry"], "nav_msgs/msg/Odometry", typestore=store)
        tf_static = writer.add_connection(TF_STATIC_TOPIC, "tf2_msgs/msg/TFMessage", typestore=store)
        mount = T["geometry_msgs/msg/TransformStamped"](
            header=header(int(sequence.stamps_ns[0]), BODY_FRAME), child_frame_id=FRAME_ID,
            transform=T["geometry_msgs/msg/Transform"](translation=vector(mounting[:3, 3]),
                                                      rotation=quaternion(mounting[:3, :3])))
        writer.write(tf_static, int(sequence.stamps_ns[0]),
                     store.serialize_cdr(T["tf2_msgs/msg/TFMessage"](transforms=[mount]), tf_static.msgtype))
        for i, ns in enumerate(int(s) for s in sequence.stamps_ns):
            writer.write(odom, ns, store.serialize_cdr(odometry(ns, odom_from_base[i]), odom.msgtype))
            if depth_encoding == "32FC1":
                depth = image(ns, sequence.depth[i].astype("<f4"), "32FC1")
            else:
                depth = image(ns, np.clip(np.round(sequence.depth[i] * 1000), 0, 65535).astype("<u2"), "16UC1")
            info = T["sensor_msgs/msg/CameraInfo"](
                header=header(ns), height=height, width=width, distortion_model="plumb_bob", d=np.zeros(5),
                k=K.reshape(-1).astype(np.float64), r=np.eye(3).reshape(-1),
                p=np.hstack([K, np.zeros((3, 1))]).reshape(-1).astype(np.float64), binning_x=0, binning_y=0,
                roi=T["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False))
            messages = {"image": image(ns, sequence.images[i], "rgb8"), "camera_info": info, "depth": depth,
                        "labels": image(ns, labels[i], "mono8")}
            for key, msg in messages.items():
                connection = connections[key]
                writer.write(connection, ns, store.serialize_cdr(msg, connection.msgtype))
    return path


@contextmanager
def _removed_if_unfinished(path: Path) -> Iterator[None]:
    """Remove the folder ``path`` if the block raises: no half-written sequence for a loader to read
    (a file in the way is not the generator's, so it is left)."""
    try:
        yield
    except BaseException:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        raise


def write_sequence(args: argparse.Namespace, index: int) -> str:
    """Render sequence ``index`` with :func:`main`'s options and write it; return its log line (one
    worker's job: a sequence depends only on ``(seed, index)``, so any number of workers writes the same)."""
    motion = args.motion if args.motion != "mixed" else ("robot" if index % 2 == 0 else "handheld")
    camera_height = args.camera_height if args.camera_height is not None or args.style != "plain" else 0.8
    sequence = render_sequence(args.seed, index, args.frames, args.height, args.width, motion,
                               camera_height, args.hfov, args.label_noise, args.style, args.supersample,
                               args.fps, args.waypoint_margin, args.robot_start_turn)
    name = f"seq_{index:04d}"
    if args.format in ("folder", "both"):
        with _removed_if_unfinished(args.output / name):
            write_folder(sequence, args.output / name)
    if args.format in ("bag", "both"):
        with _removed_if_unfinished(args.output / f"{name}_bag"):
            write_bag(sequence, args.output / f"{name}_bag", args.depth_encoding)
    redrawn = sequence.info["room_redraws"]
    note = f" (room drawn {redrawn + 1} times: the first left the camera no free floor)" if redrawn else ""
    return f"{name}: {motion}, {args.frames} frames of {args.width}x{args.height}{note}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gam-depth-synth", description=__doc__.splitlines()[0])
    parser.add_argument("--output", required=True, type=Path, help="folder for seq_NNNN/ and/or seq_NNNN_bag/")
    parser.add_argument("--sequences", type=int, default=4)
    parser.add_argument("--frames", type=int, default=150, help="frames per sequence")
    parser.add_argument("--fps", type=float, default=FPS, help="frames per second (speeds are per second)")
    parser.add_argument("--height", type=int, default=96)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--first-index", type=int, default=0, help="index of the first sequence (to extend a set)")
    parser.add_argument("--motion", choices=("handheld", "robot", "mixed"), default="mixed",
                        help="mixed: even sequences robot, odd hand-held")
    parser.add_argument("--camera-height", type=float, default=None,
                        help="robot camera height above the floor (m); default: 0.8 for --style plain, drawn "
                             "from 0.2-1.2 m per sequence (pitch 0-17 degrees down) for the rich styles")
    parser.add_argument("--style", choices=STYLES, default="plain",
                        help="plain: the first generator's low-contrast rooms; rich: textured, lit, cluttered rooms "
                             "of several shapes (training/synthetic/rich_scene.py); rich_nonperiodic: the same rooms "
                             "without repeating textures (tiles, planks, wallpaper, checks); rich_unlit: the same "
                             "rooms without their point lights (the plain style's shading)")
    parser.add_argument("--supersample", type=int, default=1,
                        help="colour rays per pixel side (3: 9 rays, a box filter; textures blur instead of "
                             "aliasing); depth and labels stay the pixel centre's")
    parser.add_argument("--waypoint-margin", type=float, default=MARGIN,
                        help="metres between the trajectory's waypoints (where the camera stops and turns) and "
                             f"walls or furniture (default {MARGIN}; the path between them keeps {MARGIN})")
    parser.add_argument("--robot-start-turn", type=float, default=180.0, metavar="DEG",
                        help="the robot starts within DEG of its first leg's heading (default 180: any heading; a "
                             "robot may then spend a whole short sequence turning on the spot, teaching no depth)")
    parser.add_argument("--hfov", type=float, default=65.0, help="horizontal field of view (degrees)")
    parser.add_argument("--format", choices=("folder", "bag", "both"), default="folder")
    parser.add_argument("--label-noise", choices=sorted(LEVELS), default="none")
    parser.add_argument("--depth-encoding", choices=("32FC1", "16UC1"), default="32FC1")
    parser.add_argument("--workers", type=int, default=1,
                        help="processes rendering sequences side by side (one per core; the output is the same "
                             "for any number)")
    args = parser.parse_args(argv)
    if (args.sequences < 1 or args.frames < 1 or not 0 < args.fps <= 1000 or min(args.height, args.width) < 8
            or args.supersample < 1 or args.waypoint_margin < MARGIN or not 0 <= args.robot_start_turn <= 180
            or args.workers < 1):
        parser.error(f"--sequences, --frames, --supersample, --workers, --fps must be positive, the image at "
                     f"least 8x8, --waypoint-margin at least {MARGIN} and --robot-start-turn within 0-180 degrees")
    failed = write_sequences(args, range(args.first_index, args.first_index + args.sequences))
    if failed:
        print(f"gam-depth-synth: {len(failed)} of {args.sequences} sequences not written ({', '.join(failed)}); "
              f"the other {args.sequences - len(failed)} are in {args.output}", file=sys.stderr, flush=True)
        return 1
    return 0


def write_sequences(args: argparse.Namespace, indices: range) -> list[str]:
    """Write every sequence of ``indices`` (in ``args.workers`` processes), logging each in index order;
    one that raises is logged with its error and the rest are still written. Returns the failed names."""
    failed = []
    # spawn, not fork: a worker must not inherit a parent's threads (a test's ROS executor, torch's pool)
    with (ProcessPoolExecutor(args.workers, mp_context=multiprocessing.get_context("spawn"))
          if args.workers > 1 else nullcontext()) as pool:
        jobs = [pool.submit(write_sequence, args, index) for index in indices] if pool else None
        for position, index in enumerate(indices):
            try:
                line = jobs[position].result() if jobs is not None else write_sequence(args, index)
            except Exception as error:  # noqa: BLE001 - one room's failure must not lose the others
                failed.append(f"seq_{index:04d}")
                print(f"seq_{index:04d}: not written: {type(error).__name__}: {error}", file=sys.stderr, flush=True)
                continue
            print(line, flush=True)
    return failed


if __name__ == "__main__":
    sys.exit(main())

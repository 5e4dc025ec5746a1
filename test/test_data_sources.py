"""Training data sources on real files: NYUv2 raw split files, image folders, rosbag2 (sqlite3, mcap)."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from gam_depth_ros.inference.preprocessing import resize_rgb
from training.config import AugmentConfig, DataConfig
from training.data import make_dataset
from training.data.common import DataError
from training.data.sample import SAMPLE_KEYS
from training.data.undistort import NYU_RGB_DISTORTION, NYU_RGB_INTRINSICS, Undistorter, distort_normalised

H, W = 64, 96  # network size
NO_AUG = AugmentConfig(color_jitter_p=0.0, flip_p=0.0)
FLIP = AugmentConfig(color_jitter_p=0.0, flip_p=1.0)
JITTER = AugmentConfig(color_jitter_p=1.0, flip_p=0.0)


def texture(height: int, width: int, seed: int, shift: int = 0) -> np.ndarray:
    """Smooth random texture, shifted right by ``shift`` pixels (a moving camera)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (height // 8 + 2, (width + shift) // 8 + 2, 3), dtype=np.uint8)
    big = np.asarray(Image.fromarray(coarse).resize(((width + shift) // 8 * 8 + 16, height // 8 * 8 + 16)))
    return np.ascontiguousarray(big[:height, shift: shift + width])


def check_schema(sample: dict, frames: int, height: int = H, width: int = W) -> None:
    assert set(sample) == set(SAMPLE_KEYS)
    assert sample["images"].shape == (frames, 3, height, width) and sample["images"].dtype == torch.float32
    assert sample["images_aug"].shape == sample["images"].shape
    assert sample["K"].shape == (4, 4, 4) and sample["inv_K"].shape == (4, 4, 4)
    assert torch.allclose(sample["K"] @ sample["inv_K"], torch.eye(4).expand(4, 4, 4), atol=1e-4)
    assert sample["gradient"].shape == (1, height, width)
    assert sample["labels"].shape == (height, width) and sample["labels"].dtype == torch.int64
    assert sample["depth_gt"].shape == (1, height, width)
    assert sample["segments"].shape == (height, width) and sample["vanishing_directions"].shape == (3, 3)
    assert float(sample["images"].min()) >= 0 and float(sample["images"].max()) <= 1


def check_scales(K: torch.Tensor, fx: float, fy: float, cx: float, cy: float) -> None:
    for s in range(4):
        f = 2.0**s
        assert K[s, 0, 0].item() == pytest.approx(fx / f, rel=1e-5)
        assert K[s, 1, 1].item() == pytest.approx(fy / f, rel=1e-5)
        assert K[s, 0, 2].item() == pytest.approx(cx / f, rel=1e-5)
        assert K[s, 1, 2].item() == pytest.approx(cy / f, rel=1e-5)


# ---------------------------------------------------------------------------------------------- undistortion


def test_undistorter_without_distortion_is_a_crop():
    image = texture(48, 64, 0)
    out = Undistorter((50.0, 50.0, 32.0, 24.0), (0, 0, 0, 0, 0), 64, 48, crop=4)(image)
    np.testing.assert_array_equal(out, image[4:44, 4:60])


def test_undistorter_moves_a_point_to_its_undistorted_place():
    fx, fy, cx, cy = NYU_RGB_INTRINSICS
    u, v = 100.0, 80.0  # undistorted pixel near a corner, where distortion is strong
    xd, yd = distort_normalised(np.array((u - cx) / fx), np.array((v - cy) / fy), NYU_RGB_DISTORTION)
    src_u, src_v = int(round(float(fx * xd + cx))), int(round(float(fy * yd + cy)))
    assert abs(src_u - u) + abs(src_v - v) > 3  # the model really moves this point
    image = np.zeros((480, 640), np.uint8)
    image[src_v - 1: src_v + 2, src_u - 1: src_u + 2] = 255
    out = Undistorter(NYU_RGB_INTRINSICS, NYU_RGB_DISTORTION, 640, 480)(image)
    peak_v, peak_u = np.unravel_index(np.argmax(out), out.shape)
    assert abs(peak_u - u) <= 1.5 and abs(peak_v - v) <= 1.5


# ---------------------------------------------------------------------------------------------- NYUv2 raw


@pytest.fixture(scope="module")
def nyu_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("nyu_raw")
    scene = root / "bedroom_0001"
    scene.mkdir()
    names = []
    for i in range(10):
        name = f"bedroom_0001/r-{1000 + i}.5-{i}.ppm"
        Image.fromarray(texture(480, 640, 1, shift=3 * i)).save(root / name)
        names.append(name)
    lines = [" ".join(names[0 + k: 9 + k][4:5] + names[k: k + 4] + names[k + 5: k + 9]) for k in (0, 1)]
    (root / "train.txt").write_text("# target, -4..-1, 1..4\n" + "\n".join(lines) + "\n\n")
    labels = np.full((448, 608), 255, np.uint8)
    labels[:, :304] = 3  # left half: class 3, right half: void
    (root / "proxy_labels" / "bedroom_0001").mkdir(parents=True)
    target = lines[0].split()[0]
    Image.fromarray(labels).save(root / "proxy_labels" / (target[: -len(".ppm")] + ".png"))
    return root


def nyu_config(root, augment=NO_AUG, **options):
    return DataConfig(source="nyu_raw", path=str(root), split_file=str(root / "train.txt"), options=options,
                      augment=augment)


def test_nyu_raw_sample_intrinsics_and_labels(nyu_root):
    dataset = make_dataset(nyu_config(nyu_root), frame_ids=(0, -2, -1, 1, 2), height=H, width=W, train=True)
    assert len(dataset) == 2
    sample = dataset[0]
    check_schema(sample, 5)
    fx, fy, cx, cy = NYU_RGB_INTRINSICS
    check_scales(sample["K"], fx * W / 608, fy * H / 448, (cx - 16) * W / 608, (cy - 16) * H / 448)
    assert bool(sample["has_labels"]) and not bool(sample["has_depth"]) and not bool(sample["has_structure"])
    assert (sample["labels"][:, : W // 2] == 3).all() and (sample["labels"][:, W // 2:] == 255).all()
    assert not bool(dataset[1]["has_labels"])  # no label file for the second target
    assert torch.equal(sample["images"], sample["images_aug"])
    # Columns follow the line order [0,-4,-3,-2,-1,1,2,3,4]: frame -2 of line 0 is image 2, frame 1 is image 5.
    assert dataset.sample_key(0) == "bedroom_0001/r-1004.5-4"
    direct = Undistorter(NYU_RGB_INTRINSICS, NYU_RGB_DISTORTION, 640, 480, 16)(
        np.asarray(Image.open(nyu_root / "bedroom_0001/r-1002.5-2.ppm")))
    from gam_depth_ros.inference.preprocessing import resize_rgb

    expected = torch.from_numpy(resize_rgb(direct, H, W).copy()).permute(2, 0, 1).float() / 255
    assert torch.allclose(sample["images"][1], expected)


def test_nyu_raw_flip_moves_cx_and_flips_labels(nyu_root):
    plain = make_dataset(nyu_config(nyu_root), (0, -1, 1), H, W, train=True)[0]
    flipped = make_dataset(nyu_config(nyu_root, FLIP), (0, -1, 1), H, W, train=True)[0]
    assert torch.equal(flipped["images"], plain["images"].flip(-1))
    assert torch.equal(flipped["labels"], plain["labels"].flip(-1))
    assert (flipped["labels"][:, W // 2:] == 3).all()
    for s in range(4):
        w_s = W / 2**s
        assert flipped["K"][s, 0, 2].item() == pytest.approx(w_s - 1 - plain["K"][s, 0, 2].item(), rel=1e-6)
        assert flipped["K"][s, 0, 0].item() == pytest.approx(plain["K"][s, 0, 0].item())
    assert torch.allclose(flipped["gradient"], plain["gradient"].flip(-1), atol=1e-2)
    # Validation never augments.
    val = make_dataset(nyu_config(nyu_root, FLIP), (0, -1, 1), H, W, train=False)[0]
    assert torch.equal(val["images"], plain["images"])


def test_jitter_changes_network_inputs_only_and_equally_for_all_frames(tmp_path):
    folder = tmp_path / "seq"
    write_folder(folder, frames=[texture(60, 80, 5)] * 3)  # identical frames
    torch.manual_seed(3)
    sample = make_dataset(folder_config(folder, JITTER), (0, -1, 1), H, W, train=True)[0]
    plain = make_dataset(folder_config(folder, NO_AUG), (0, -1, 1), H, W, train=True)[0]
    assert torch.equal(sample["images"], plain["images"])
    assert torch.equal(sample["gradient"], plain["gradient"])
    assert not torch.allclose(sample["images_aug"], sample["images"], atol=1e-3)
    assert torch.equal(sample["images_aug"][0], sample["images_aug"][1])
    assert torch.equal(sample["images_aug"][0], sample["images_aug"][2])


def test_nyu_raw_errors_name_the_file(nyu_root, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("a.ppm b.ppm\n")
    with pytest.raises(DataError, match=r"bad.txt:1: expected 9 image paths, found 2"):
        make_dataset(DataConfig(source="nyu_raw", path=str(nyu_root), split_file=str(bad)), (0, -1, 1), H, W)
    with pytest.raises(DataError, match="unknown option"):
        make_dataset(nyu_config(nyu_root, colour=True), (0, -1, 1), H, W)
    with pytest.raises(DataError, match="not among the split's columns"):
        make_dataset(nyu_config(nyu_root), (0, -5, 1), H, W)


def test_truncated_image_gives_clear_error(tmp_path):
    folder = tmp_path / "seq"
    write_folder(folder, frames=[texture(60, 80, i) for i in range(3)])
    path = folder / "images" / "000001.png"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    dataset = make_dataset(folder_config(folder), (0, -1, 1), H, W)
    with pytest.raises(DataError, match=r"000001\.png: cannot read image"):
        dataset[0]


# ---------------------------------------------------------------------------------------------- folder


def write_folder(folder, frames, camera=None, depth=None, labels=None):
    (folder / "images").mkdir(parents=True)
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / "images" / f"{i:06d}.png")
    camera = camera or {"fx": 70.0, "fy": 72.0, "cx": 40.0, "cy": 30.0, "width": 80, "height": 60}
    (folder / "intrinsics.yaml").write_text(yaml.safe_dump(camera))
    for name, array in (depth or {}).items():
        (folder / "depth").mkdir(exist_ok=True)
        if name.endswith(".npy"):
            np.save(folder / "depth" / name, array)
        else:
            Image.fromarray(array).save(folder / "depth" / name)
    for name, array in (labels or {}).items():
        (folder / "labels").mkdir(exist_ok=True)
        Image.fromarray(array).save(folder / "labels" / name)


def folder_config(folder, augment=NO_AUG, **options):
    return DataConfig(source="folder", path=str(folder), options=options, augment=augment)


def test_folder_stride_intrinsics_depth_and_labels(tmp_path):
    folder = tmp_path / "seq"
    depth_mm = np.full((60, 80), 2500, np.uint16)
    depth_mm[:10] = 0
    labels = np.full((60, 80), 7, np.uint8)
    write_folder(folder, [texture(60, 80, 2, shift=i) for i in range(7)],
                 depth={"000002.png": depth_mm, "000003.npy": np.full((60, 80), 1.5, np.float32)},
                 labels={"000002.png": labels})
    dataset = make_dataset(folder_config(folder, stride=2), (0, -1, 1), H, W)
    assert len(dataset) == 3  # targets 2, 3, 4 (need t - 2 and t + 2)
    assert [dataset.sample_key(i) for i in range(3)] == ["000002", "000003", "000004"]
    first = dataset[0]
    check_schema(first, 3)
    check_scales(first["K"], 70.0 * W / 80, 72.0 * H / 60, 40.0 * W / 80, 30.0 * H / 60)
    assert bool(first["has_depth"]) and bool(first["has_labels"])
    assert first["depth_gt"].max().item() == pytest.approx(2.5) and first["depth_gt"][0, 0, 0] == 0
    assert (first["labels"] == 7).all()
    second = dataset[1]
    assert bool(second["has_depth"]) and second["depth_gt"].min().item() == pytest.approx(1.5)
    assert not bool(second["has_labels"]) and (second["labels"] == 255).all()
    assert not bool(dataset[2]["has_depth"])
    frames = np.stack([np.asarray(Image.open(folder / "images" / f"{i:06d}.png")) for i in (2, 0, 4)])
    from gam_depth_ros.inference.preprocessing import resize_rgb

    expected = torch.from_numpy(np.stack([resize_rgb(f, H, W) for f in frames])).permute(0, 3, 1, 2).float() / 255
    assert torch.allclose(first["images"], expected)


def test_folder_structure_side_file_is_read_and_flipped(tmp_path):
    folder = tmp_path / "seq"
    write_folder(folder, [texture(60, 80, 4, shift=i) for i in range(3)])
    segments = np.tile(np.arange(W, dtype=np.int32) // 8, (H, 1))
    directions = np.array([[0.6, 0.0, 0.8], [0.0, 1.0, 0.0], [-0.8, 0.0, 0.6]], np.float32)
    (folder / "structure").mkdir()
    np.savez(folder / "structure" / "000001.npz", segments=segments, vanishing_directions=directions)
    plain = make_dataset(folder_config(folder), (0, -1, 1), H, W)[0]
    assert bool(plain["has_structure"])
    assert torch.equal(plain["segments"], torch.from_numpy(segments.astype(np.int64)))
    assert torch.allclose(plain["vanishing_directions"], torch.from_numpy(directions))
    flipped = make_dataset(folder_config(folder, FLIP), (0, -1, 1), H, W, train=True)[0]
    assert torch.equal(flipped["segments"], plain["segments"].flip(-1))
    expected = directions.copy()
    expected[:, 0] *= -1
    assert torch.allclose(flipped["vanishing_directions"], torch.from_numpy(expected))


def test_folder_layout_errors(tmp_path):
    folder = tmp_path / "seq"
    write_folder(folder, [texture(60, 80, 0)] * 2)
    with pytest.raises(DataError, match="too few"):
        make_dataset(folder_config(folder), (0, -1, 1), H, W)
    (folder / "intrinsics.yaml").write_text("fx: 1\nfy: 1\ncx: 0\ncy: 0\nwidth: 80\n")
    with pytest.raises(DataError, match=r"missing keys \['height'\]"):
        make_dataset(folder_config(folder), (0, 1), H, W)
    with pytest.raises(DataError, match="unknown data source"):
        make_dataset(DataConfig(source="kitti"), (0, 1), H, W)


# ---------------------------------------------------------------------------------------------- rosbag2


def write_bag(path, storage: str, frames, compressed: bool = False, depth_m=None):
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores.ROS2_HUMBLE)
    T = store.types
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    height, width = frames[0].shape[:2]

    def header(ns):
        return T["std_msgs/msg/Header"](stamp=T["builtin_interfaces/msg/Time"](sec=ns // 10**9, nanosec=ns % 10**9),
                                        frame_id="camera")

    with Writer(path, version=9, storage_plugin=plugin) as writer:
        image_type = "sensor_msgs/msg/CompressedImage" if compressed else "sensor_msgs/msg/Image"
        image_conn = writer.add_connection("/camera/image", image_type, typestore=store)
        info_conn = writer.add_connection("/camera/camera_info", "sensor_msgs/msg/CameraInfo", typestore=store)
        depth_conn = writer.add_connection("/camera/depth", "sensor_msgs/msg/Image", typestore=store)
        info = T["sensor_msgs/msg/CameraInfo"](
            header=header(10**9), height=height, width=width, distortion_model="plumb_bob",
            d=np.zeros(5), k=np.array([70.0, 0, 40.0, 0, 72.0, 30.0, 0, 0, 1]), r=np.eye(3).reshape(-1),
            p=np.zeros(12), binning_x=0, binning_y=0,
            roi=T["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False))
        writer.write(info_conn, 10**9, store.serialize_cdr(info, info_conn.msgtype))
        for i, frame in enumerate(frames):
            ns = 10**9 + (i + 1) * 10**8
            if compressed:
                buffer = io.BytesIO()
                Image.fromarray(frame).save(buffer, format="PNG")
                msg = T[image_type](header=header(ns), format="png",
                                    data=np.frombuffer(buffer.getvalue(), np.uint8))
            else:
                bgr = np.ascontiguousarray(frame[:, :, ::-1])
                msg = T[image_type](header=header(ns), height=height, width=width, encoding="bgr8", is_bigendian=0,
                                    step=width * 3, data=bgr.reshape(-1))
            writer.write(image_conn, ns, store.serialize_cdr(msg, image_type))
            if depth_m is not None:
                mm = np.full((height // 2, width // 2), int(depth_m * 1000 + i), np.uint16)  # half resolution
                dmsg = T["sensor_msgs/msg/Image"](header=header(ns + 5 * 10**6), height=height // 2, width=width // 2,
                                                  encoding="16UC1", is_bigendian=0, step=width,
                                                  data=mm.view(np.uint8).reshape(-1))
                writer.write(depth_conn, ns + 5 * 10**6, store.serialize_cdr(dmsg, "sensor_msgs/msg/Image"))


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_rosbag_skips_stationary_frames_and_matches_depth(tmp_path, storage):
    moving = [texture(60, 80, 6, shift=4 * i) for i in range(4)]
    frames = [moving[0], moving[0], moving[1], moving[2], moving[2], moving[2], moving[3]]  # 3 repeats
    bag = tmp_path / "bag"
    write_bag(bag, storage, frames, depth_m=2.0)
    options = {"topic": "/camera/image", "camera_info_topic": "/camera/camera_info", "depth_topic": "/camera/depth",
               "min_motion": 1.0, "stride": 1}  # the frame-count rule: this test is about extraction
    data = DataConfig(source="rosbag", path=str(bag), options=options, augment=None)
    dataset = make_dataset(data, (0, -1, 1), H, W)
    cache = tmp_path / "bag_frames"
    kept = sorted(p.stem for p in (cache / "images").iterdir())
    stamps = [10**9 + (i + 1) * 10**8 for i in (0, 2, 3, 6)]
    assert kept == [f"{s:019d}" for s in stamps]
    assert len(dataset) == 2
    sample = dataset[0]
    check_schema(sample, 3)
    check_scales(sample["K"], 70.0 * W / 80, 72.0 * H / 60, 40.0 * W / 80, 30.0 * H / 60)
    assert bool(sample["has_depth"])
    assert sample["depth_gt"].unique().tolist() == [pytest.approx(2.002)]  # frame index 2's depth, 2002 mm
    expected = torch.from_numpy(resize_rgb(moving[1], H, W))  # the runtime's own resize
    assert torch.allclose(sample["images"][0], expected.permute(2, 0, 1).float() / 255)  # bgr8 decoded to RGB
    # A second dataset reuses the extraction (same settings, same bag).
    marker = (cache / "manifest.yaml").stat().st_mtime_ns
    make_dataset(data, (0, -1, 1), H, W)
    assert (cache / "manifest.yaml").stat().st_mtime_ns == marker


def test_rosbag_compressed_images_with_config_intrinsics_keep_all(tmp_path):
    frames = [texture(60, 80, 7)] * 3 + [texture(60, 80, 8)]
    bag = tmp_path / "bag"
    write_bag(bag, "mcap", frames, compressed=True)
    camera = {"fx": 60.0, "fy": 60.0, "cx": 39.5, "cy": 29.5, "width": 80, "height": 60}
    options = {"topic": "/camera/image", "intrinsics": camera, "min_motion": 0.0, "cache_dir": str(tmp_path / "c"),
               "stride": 1}
    dataset = make_dataset(DataConfig(source="rosbag", path=str(bag), options=options, augment=None), (0, -1, 1), H, W)
    assert len(dataset) == 2  # four frames kept
    sample = dataset[0]
    check_scales(sample["K"], 60.0 * W / 80, 60.0 * H / 60, 39.5 * W / 80, 29.5 * H / 60)
    assert not bool(sample["has_depth"])
    with pytest.raises(DataError, match="not in the bag"):
        make_dataset(DataConfig(source="rosbag", path=str(bag), options={**options, "topic": "/nope",
                                                                         "cache_dir": str(tmp_path / "d")}),
                     (0, 1), H, W)

"""gam-depth-eval on a fabricated NYUv2 .mat in the official layout, .h5 folders and pair lists."""

from __future__ import annotations

import json
import math

import h5py
import numpy as np
import pytest
from PIL import Image
from scipy.io import savemat

from training.config import DataConfig
from training.data import make_dataset
from training.data.eval_sets import NyuH5Set, NyuMatSet, PairListSet, load_class_mapping
from training.evaluate import evaluate_items, main

N = 3
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the TorchScript ONNX exporter's notices
TOP, BOTTOM, LEFT, RIGHT = 44, 471, 40, 601  # the standard crop
CROP_H, CROP_W = BOTTOM - TOP, RIGHT - LEFT
NEAR_ROWS = 100  # first 100 crop rows at 2 m, the other 327 at 4 m
LABEL_COLS = 200  # first 200 crop columns: raw class 5 (-> NYU-40 id 2, floor), the rest unlabeled


def nyu_arrays():
    """Images [N,480,640,3], depths [N,480,640], raw labels [N,480,640] in MATLAB's logical layout."""
    rows = np.arange(480)[:, None]
    cols = np.arange(640)[None, :]
    images = np.zeros((N, 480, 640, 3), np.uint8)
    depths = np.full((N, 480, 640), 1.0, np.float32)  # outside the crop: valid but not evaluated
    labels = np.zeros((N, 480, 640), np.uint16)
    for n in range(N):
        images[n, ..., 0] = rows % 256
        images[n, ..., 1] = cols % 256
        images[n, ..., 2] = 40 * n
        depths[n, TOP:BOTTOM, LEFT:RIGHT] = 4.0
        depths[n, TOP: TOP + NEAR_ROWS, LEFT:RIGHT] = 2.0
        labels[n, TOP:BOTTOM, LEFT: LEFT + LABEL_COLS] = 5
    return images, depths, labels


@pytest.fixture(scope="module")
def nyu_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("nyu")
    images, depths, labels = nyu_arrays()
    mat = folder / "nyu_depth_v2_labeled.mat"
    # MATLAB v7.3: HDF5 with a 512-byte user block; column-major arrays appear transposed to h5py.
    with h5py.File(mat, "w", userblock_size=512) as h5:
        h5.create_dataset("images", data=images.transpose(0, 3, 2, 1))  # [N,3,640,480]
        h5.create_dataset("depths", data=depths.transpose(0, 2, 1))  # [N,640,480]
        h5.create_dataset("labels", data=labels.transpose(0, 2, 1))
    with open(mat, "r+b") as stream:
        stream.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: test HDF5 schema 1.00 .".ljust(116))
    splits = folder / "splits.mat"
    savemat(splits, {"testNdxs": np.array([[1], [3]]), "trainNdxs": np.array([[2]])})
    mapping = folder / "mapping40.txt"
    values = np.zeros(894, np.int64)
    values[4] = 2  # raw class 5 -> NYU-40 id 2 (floor, project id 1)
    mapping.write_text("\n".join(map(str, values)) + "\n")
    return mat, splits, mapping


def test_mat_layout_split_and_class_mapping(nyu_files):
    mat, splits, mapping = nyu_files
    images, depths, _ = nyu_arrays()
    test_set = NyuMatSet(mat, splits, "test", class_mapping=mapping)
    assert len(test_set) == 2
    item = test_set[1]
    assert item.name == "0003"  # 1-based MATLAB index 3
    np.testing.assert_array_equal(item.rgb, images[2, TOP:BOTTOM, LEFT:RIGHT])
    np.testing.assert_array_equal(item.depth_m, depths[2, TOP:BOTTOM, LEFT:RIGHT])
    assert (item.labels[:, :LABEL_COLS] == 1).all() and (item.labels[:, LABEL_COLS:] == 255).all()
    assert len(NyuMatSet(mat, splits, "train")) == 1 and len(NyuMatSet(mat, None, "all")) == N
    assert NyuMatSet(mat, splits, "test")[0].labels is None  # no mapping: no labels
    lut = load_class_mapping(mapping)
    assert lut[0] == 255 and lut[5] == 1 and lut[6] == 255


def test_evaluation_core_hand_computed(nyu_files):
    mat, splits, mapping = nyu_files
    images, _, _ = nyu_arrays()
    seen = []

    def predict(rgb):
        seen.append(rgb)
        labels = np.full(rgb.shape[:2], 7, np.uint8)
        labels[:, :100] = 1
        return np.ones(rgb.shape[:2]), labels  # constant depth: the median scaling makes it 4 m

    result = evaluate_items(predict, NyuMatSet(mat, splits, "test", class_mapping=mapping))
    np.testing.assert_array_equal(seen[0], images[0, TOP:BOTTOM, LEFT:RIGHT])
    f = NEAR_ROWS / CROP_H  # fraction of pixels at 2 m, predicted 4 m
    expected = {"abs_rel": f, "sq_rel": 2 * f, "rmse": 2 * math.sqrt(f), "rmse_log": math.sqrt(f) * math.log(2),
                "log10": f * math.log10(2), "delta1": 1 - f, "delta2": 1 - f, "delta3": 1 - f}
    assert result["images"] == 2 and result["skipped"] == 0
    for key, value in expected.items():
        assert result["depth"][key] == pytest.approx(value, rel=1e-9), key
    assert result["scale"] == {"median": pytest.approx(4.0), "std": pytest.approx(0.0)}
    # Semantics: 200 labelled columns, 100 predicted right (class 1), 100 wrong (class 7).
    assert result["semantic"]["pixel_acc"] == pytest.approx(0.5)
    assert result["semantic"]["miou"] == pytest.approx((0.5 + 0.0) / 2)
    # Obstacles: the labelled pixels are floor (structural), the rest void: objects scored, none found;
    # the 2 m / 4 m step is a depth edge the constant prediction does not have.
    obstacles = result["obstacles"]
    assert obstacles["objects_scored"] is True and obstacles["object_images"] == 0
    assert "object_abs_rel" not in obstacles
    assert obstacles["boundary_recall"] == 0.0 and obstacles["boundary_precision"] == 0.0


def test_regions_are_scored_with_the_whole_image_scale(nyu_files):
    mat, splits, mapping = nyu_files

    def regions(item):
        near = np.zeros(item.depth_m.shape, bool)
        near[:NEAR_ROWS] = True
        return {"near": near, "far": ~near, "none": np.zeros_like(near)}

    result = evaluate_items(lambda rgb: (np.ones(rgb.shape[:2]), None),
                            NyuMatSet(mat, splits, "test", class_mapping=mapping), regions=regions)
    # The constant is scaled to the image's median, 4 m: |4 - 2| / 2 on the near rows, exact on the far ones
    # (a region scaled to its own median would give 0 on both).
    assert result["regions"]["near"] == {"abs_rel": pytest.approx(1.0), "images": 2}
    assert result["regions"]["far"] == {"abs_rel": pytest.approx(0.0), "images": 2}
    assert result["regions"]["none"]["images"] == 0 and math.isnan(result["regions"]["none"]["abs_rel"])
    assert "regions" not in evaluate_items(lambda rgb: (np.ones(rgb.shape[:2]), None),
                                           NyuMatSet(mat, splits, "test", class_mapping=mapping))


def test_cli_with_exported_model_and_checkpoint(nyu_files, small_model, tmp_path):
    mat, splits, mapping = nyu_files
    out = tmp_path / "nyu.json"
    argv = ["--dataset", "nyu_mat", "--path", str(mat), "--split-file", str(splits), "--threads", "1"]
    assert main(["--model", str(small_model.onnx), *argv, "--class-mapping", str(mapping), "--output", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["images"] == 2 and result["backend"] == "onnxruntime"
    assert result["options"]["median_scaling"] is True and result["options"]["crop"] == "rows 44:471, cols 40:601"
    assert result["options"]["depth_scale"] == 2.0  # from the model's metadata
    depth = result["depth"]
    assert all(math.isfinite(v) for v in depth.values())
    assert 0 <= depth["delta1"] <= depth["delta2"] <= depth["delta3"] <= 1
    assert 0 <= result["semantic"]["miou"] <= 1
    from gam_depth_ros.inference import create_backend
    from training.evaluate import backend_predictor

    direct = evaluate_items(backend_predictor(create_backend("onnxruntime", small_model.onnx, threads=1), 2.0),
                            NyuMatSet(mat, splits, "test", class_mapping=mapping))
    assert direct["depth"] == pytest.approx(depth)
    torch_out = tmp_path / "torch.json"
    assert main(["--model", str(small_model.checkpoint), *argv, "--output", str(torch_out)]) == 0
    torch_result = json.loads(torch_out.read_text())
    assert torch_result["backend"] == "torch" and "semantic" not in torch_result
    assert torch_result["depth"]["abs_rel"] == pytest.approx(depth["abs_rel"], abs=2e-3)


def test_cli_errors(tmp_path, small_model):
    assert main(["--model", str(small_model.onnx), "--dataset", "nyu_mat", "--path", str(tmp_path / "no.mat")]) == 2
    assert main(["--model", str(tmp_path / "none.onnx"), "--dataset", "scannet", "--split-file", "x"]) == 2


def scaled_predictor(factor):
    def predict(rgb, _cache={}):  # noqa: B006 - the test sets' ground truth, looked up by image content
        return _cache["gt"][rgb[0, 0, 0]] * factor, None

    return predict


def test_h5_folder_and_pair_list_sets(tmp_path):
    rng = np.random.default_rng(0)
    depths = [rng.uniform(0.5, 8.0, (48, 64)).astype(np.float32) for _ in range(2)]
    (tmp_path / "h5" / "a").mkdir(parents=True)
    for i, depth in enumerate(depths):
        rgb = np.full((3, 48, 64), i, np.uint8)
        with h5py.File(tmp_path / "h5" / "a" / f"{i:05d}.h5", "w") as h5:
            h5["rgb"], h5["depth"] = rgb, depth
    h5_set = NyuH5Set(tmp_path / "h5")
    assert len(h5_set) == 2 and h5_set[1].name == "a/00001.h5" and h5_set[1].rgb.shape == (48, 64, 3)
    predict = scaled_predictor(0.5)
    predict.__defaults__[0]["gt"] = dict(enumerate(depths))
    result = evaluate_items(predict, h5_set)
    assert result["depth"]["abs_rel"] == pytest.approx(0.0, abs=1e-12)
    assert result["scale"]["median"] == pytest.approx(2.0)
    assert result["obstacles"]["objects_scored"] is False and "no ground-truth labels" in result["obstacles"]["note"]
    assert result["obstacles"]["boundary_f1"] == pytest.approx(1.0)  # exact depth after scaling: every edge found
    no_scaling = evaluate_items(predict, h5_set, median_scaling=False, min_depth=0.1, max_depth=10.0)
    assert no_scaling["depth"]["abs_rel"] == pytest.approx(0.5)  # |d/2 - d| / d
    # ScanNet / InteriorNet: '<rgb> <depth png>' pairs, millimetres, no crop.
    (tmp_path / "scan").mkdir()
    lines = []
    for i, depth in enumerate(depths):
        Image.fromarray(np.full((48, 64, 3), i, np.uint8)).save(tmp_path / "scan" / f"{i}.jpg", quality=100)
        Image.fromarray((depth * 1000).astype(np.uint16)).save(tmp_path / "scan" / f"{i}.png")
        lines.append(f"{i}.jpg {i}.png")
    (tmp_path / "scan" / "test.txt").write_text("\n".join(lines) + "\n")
    pairs = PairListSet(tmp_path / "scan" / "test.txt")
    item = pairs[1]
    assert item.rgb.shape == (48, 64, 3)
    np.testing.assert_allclose(item.depth_m, np.floor(depths[1] * 1000) / 1000, atol=1e-6)
    # The validation adapter turns an evaluation set into single-frame schema samples.
    data = DataConfig(source="scannet", split_file=str(tmp_path / "scan" / "test.txt"), augment=None)
    sample = make_dataset(data, (0, -1, 1), 64, 96, train=False)[0]
    assert sample["images"].shape == (1, 3, 64, 96) and bool(sample["has_depth"])
    assert sample["depth_gt"].max().item() == pytest.approx(float(pairs[0].depth_m.max()), abs=1e-6)

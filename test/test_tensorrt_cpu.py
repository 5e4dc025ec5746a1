"""The CPU-testable parts of the TensorRT path: engine cache key, metadata JSON and staleness,
FP32 layer selection on a real exported graph, calibration batches from image folders and
rosbags, GPU pre/post-processing numerics (on CPU tensors) against the numpy/OpenCV path,
backend choice and ONNX Runtime GPU provider options. Nothing here needs TensorRT or a GPU.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from model_fixtures import SMALL_HEIGHT, SMALL_WIDTH
from PIL import Image

from gam_depth_ros.inference import BACKENDS, ModelLoadError, create_backend, resolve_backend
from gam_depth_ros.inference.calibration import (
    CalibrationBatches,
    CalibrationError,
    CalibrationSource,
    calibration_cache_path,
    evenly_spread,
    folder_image_paths,
    iter_folder_images,
)
from gam_depth_ros.inference.engine_cache import (
    BuildEnvironment,
    EngineCacheError,
    EngineRecord,
    EngineSpec,
    default_folders,
    engine_path,
    find_cached_engine,
    read_record,
    record_path,
    stale_reasons,
    writable_dir,
    write_record,
)
from gam_depth_ros.inference.gpu_processing import (
    GpuProcessor,
    resize_disparity_torch,
    resize_labels_torch,
    to_network_input_torch,
)
from gam_depth_ros.inference.layer_precision import LayerInfo, normalise_selectors, select_fp32_layers
from gam_depth_ros.inference.onnx_backend import select_providers
from gam_depth_ros.inference.postprocessing import disparity_to_depth, resize_disparity, resize_labels
from gam_depth_ros.inference.preprocessing import to_network_input
from gam_depth_ros.metadata import ModelMetadata

ORIN = BuildEnvironment("10.3.0.30", "Orin", (8, 7))
SPEC = EngineSpec("fp16", 288, 384)
SHA = "ab" * 32

# ---------------------------------------------------------------------------------------------- engine cache


def test_engine_file_name_holds_the_cache_key(tmp_path):
    path = engine_path(tmp_path / "model.onnx", SPEC, ORIN)
    assert path == tmp_path / "model.fp16.288x384.trt10.3.0.30.orin.sm87.engine"
    desktop = BuildEnvironment("10.13.0.35", "NVIDIA GeForce RTX 4090", (8, 9))
    name = engine_path("m.onnx", EngineSpec("int8", 192, 256), desktop, tmp_path / "cache").name
    assert name == "m.int8.192x256.trt10.13.0.35.nvidia-geforce-rtx-4090.sm89.engine"
    assert record_path(path).name == path.name + ".json"
    with pytest.raises(ValueError, match="precision"):
        EngineSpec("fp8", 288, 384)


def _record(engine: Path, env: BuildEnvironment = ORIN, spec: EngineSpec = SPEC, sha: str = SHA) -> EngineRecord:
    metadata = ModelMetadata(input_height=spec.input_height, input_width=spec.input_width, depth_scale=2.0)
    return EngineRecord(
        tensorrt_version=env.tensorrt_version, gpu_name=env.gpu_name, compute_capability=env.compute_capability,
        precision=spec.precision, input_shape=spec.input_shape, fp32_layers=spec.fp32_layers,
        obey_precision=spec.obey_precision, onnx_file="model.onnx", onnx_sha256=sha,
        engine_bytes=engine.stat().st_size, model=json.loads(metadata.to_json()), build_seconds=312.5,
    )


@pytest.fixture
def cached(tmp_path) -> Path:
    """A fake engine (bytes TensorRT never sees) with a valid record, built 'on an Orin'."""
    engine = engine_path(tmp_path / "model.onnx", SPEC, ORIN)
    engine.write_bytes(b"serialized engine" * 100)
    write_record(engine, _record(engine))
    return engine


def test_record_round_trip_and_embedded_model_metadata(cached):
    record = read_record(cached)
    assert record == _record(cached)
    data = json.loads(record_path(cached).read_text())
    assert data["format"] == "gam_depth_ros.trt_engine/1" and data["compute_capability"] == [8, 7]
    assert data["input_shape"] == [1, 3, 288, 384]
    metadata = record.model_metadata()
    assert metadata == ModelMetadata(input_height=288, input_width=384, depth_scale=2.0)


def test_up_to_date_engine_is_used(cached):
    assert stale_reasons(cached, ORIN, SPEC, SHA) == []
    found, reasons = find_cached_engine(cached.parent / "model.onnx", SPEC, ORIN, SHA, [cached.parent])
    assert found == cached and reasons == []


@pytest.mark.parametrize(
    ("env", "spec", "sha", "reason"),
    [
        (replace(ORIN, tensorrt_version="10.7.0.23"), SPEC, SHA, "TensorRT 10.3.0.30, this is TensorRT 10.7.0.23"),
        (BuildEnvironment("10.3.0.30", "Xavier", (7, 2)), SPEC, SHA, "on 'Orin' (sm87), this GPU is 'Xavier' (sm72)"),
        (ORIN, SPEC, "cd" * 32, "the ONNX model changed"),
        (ORIN, replace(SPEC, fp32_layers=("heads",)), SHA, "FP32 layers [], wanted ['heads']"),
        (ORIN, replace(SPEC, obey_precision=True), SHA, "FP32 layers"),
    ],
)
def test_mismatched_engine_is_stale(cached, env, spec, sha, reason):
    """The engine's own record against a different 'current environment' or wanted build."""
    reasons = stale_reasons(cached, env, spec, sha)
    assert any(reason in r for r in reasons), reasons


def test_record_of_another_build_is_stale(tmp_path):
    """A file at the wanted name whose record says another precision and shape (e.g. copied)."""
    engine = engine_path(tmp_path / "model.onnx", SPEC, ORIN)
    engine.write_bytes(b"x" * 10)
    write_record(engine, _record(engine, spec=EngineSpec("int8", 192, 256)))
    reasons = stale_reasons(engine, ORIN, SPEC, SHA)
    assert "precision int8, wanted fp16" in reasons
    assert "input shape [1, 3, 192, 256], wanted [1, 3, 288, 384]" in reasons


def test_missing_truncated_or_unreadable_engines_are_stale(cached, tmp_path):
    assert stale_reasons(tmp_path / "absent.engine", ORIN, SPEC, SHA)[0].startswith("no engine at")
    with cached.open("ab") as file:
        file.write(b"partial")
    assert any("incomplete write" in r for r in stale_reasons(cached, ORIN, SPEC, SHA))
    record_path(cached).write_text("{not json")
    assert "cannot read engine metadata" in stale_reasons(cached, ORIN, SPEC, SHA)[0]
    with pytest.raises(EngineCacheError, match="cannot read"):
        read_record(cached)
    record_path(cached).write_text(json.dumps({"format": "something/else"}))
    assert "not gam_depth_ros engine metadata" in stale_reasons(cached, ORIN, SPEC, SHA)[0]
    record_path(cached).unlink()
    assert "no metadata" in stale_reasons(cached, ORIN, SPEC, SHA)[0]


def test_cache_lookup_order_and_read_only_fallback(cached, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    onnx = tmp_path / "model.onnx"
    assert default_folders(onnx) == [tmp_path, tmp_path / "xdg" / "gam_depth_ros" / "engines"]
    assert default_folders(onnx, tmp_path / "c") == [tmp_path / "c"]
    # Stale beside the model, fresh in the user cache: the user cache's engine is used.
    user = tmp_path / "xdg" / "gam_depth_ros" / "engines"
    user.mkdir(parents=True)
    fresh = engine_path(onnx, SPEC, ORIN, user)
    fresh.write_bytes(b"y" * 7)
    write_record(fresh, _record(fresh))
    cached.write_bytes(b"changed")
    found, _ = find_cached_engine(onnx, SPEC, ORIN, SHA, default_folders(onnx))
    assert found == fresh
    fresh.unlink()
    found, reasons = find_cached_engine(onnx, SPEC, ORIN, SHA, default_folders(onnx))
    assert found is None and any("incomplete write" in r for r in reasons)
    # A folder that cannot be created (under a regular file) falls back to the user cache.
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    assert writable_dir(blocker / "models") == user
    assert writable_dir(tmp_path) == tmp_path


# ---------------------------------------------------------------------------------------------- FP32 layers


def _onnx_layers(onnx_path: Path) -> tuple[list[LayerInfo], list[str], list[str]]:
    import onnx

    graph = onnx.load(str(onnx_path)).graph
    layers = [
        LayerInfo(i, node.name, node.op_type, tuple(x for x in node.input if x), tuple(node.output))
        for i, node in enumerate(graph.node)
    ]
    return layers, [i.name for i in graph.input], [o.name for o in graph.output]


def test_fp32_selection_on_the_exported_graph(small_model):
    layers, inputs, outputs = _onnx_layers(small_model.onnx)
    kinds = {layer.index: layer.kind for layer in layers}
    norm = select_fp32_layers(layers, inputs, outputs, ["input-norm"])
    assert sorted(kinds[i] for i in norm.full) == ["Div", "Sub"] and not norm.output_only
    heads = select_fp32_layers(layers, inputs, outputs, ["heads"])
    assert sorted(kinds[i] for i in heads.full) == ["ArgMax", "Cast", "Sigmoid"]
    assert [kinds[i] for i in heads.output_only] == ["Conv", "Conv"]
    assert {layers[i].name.split("/")[2] for i in heads.output_only} == {"depth_decoder", "semantic_decoder"}
    both = select_fp32_layers(layers, inputs, outputs, ["input-norm", "heads"])
    assert set(both.full) == set(norm.full) | set(heads.full)
    named = select_fp32_layers(layers, inputs, outputs, ["*semantic_decoder/heads.0/*"])
    assert sorted(kinds[i] for i in named.full) == ["Conv", "Pad"]  # its Constant computes nothing: left out
    assert not select_fp32_layers(layers, inputs, outputs, [])
    with pytest.raises(ValueError, match="matches no layer"):
        select_fp32_layers(layers, inputs, outputs, ["*no_such_layer*"])


def test_fp32_selectors_defaults_and_parsing():
    assert normalise_selectors(None, "fp16") == ()
    assert normalise_selectors(None, "int8") == ("input-norm", "heads")
    assert normalise_selectors(["input-norm,heads", "heads"], "fp16") == ("input-norm", "heads")
    assert normalise_selectors(["none"], "int8") == ()
    with pytest.raises(ValueError, match="none"):
        normalise_selectors(["none", "heads"], "int8")


# ---------------------------------------------------------------------------------------------- calibration


def _write_images(folder: Path, sizes: list[tuple[int, int]], seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    images = []
    for i, (h, w) in enumerate(sizes):
        image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        Image.fromarray(image).save(folder / f"frame_{i:03d}.png")
        images.append(image)
    return images


def test_calibration_batches_from_an_image_folder(tmp_path):
    images = _write_images(tmp_path / "calib", [(48, 64), (120, 160), (64, 96), (30, 40), (97, 131)])
    Image.fromarray(images[0][:, :, 0]).save(tmp_path / "calib" / "grey.jpg", quality=95)
    (tmp_path / "calib" / "notes.txt").write_text("not an image")
    assert len(folder_image_paths(tmp_path / "calib")) == 6
    chosen = folder_image_paths(tmp_path / "calib", limit=3)
    assert [p.name for p in chosen] == ["frame_000.png", "frame_002.png", "frame_004.png"]
    source = CalibrationSource(tmp_path / "calib", limit=5)
    batches = CalibrationBatches(source.images(), SMALL_HEIGHT, SMALL_WIDTH, batch_size=2)
    got = list(batches)
    assert len(got) == 2 and batches.images_used == 4  # the fifth image is an incomplete batch
    for batch in got:
        assert batch.shape == (2, 3, SMALL_HEIGHT, SMALL_WIDTH) and batch.dtype == np.float32
    np.testing.assert_array_equal(got[0][0], to_network_input(images[0], SMALL_HEIGHT, SMALL_WIDTH)[0])
    np.testing.assert_array_equal(got[1][1], to_network_input(images[3], SMALL_HEIGHT, SMALL_WIDTH)[0])
    assert source.describe() == {"kind": "images", "path": str(tmp_path / "calib"), "topic": None, "limit": 5}


def test_calibration_errors_name_the_source(tmp_path):
    with pytest.raises(CalibrationError, match="does not exist"):
        folder_image_paths(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CalibrationError, match="empty: no images"):
        folder_image_paths(tmp_path / "empty")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(CalibrationError, match="broken.png: cannot read calibration image"):
        list(iter_folder_images([tmp_path / "broken.png"]))
    assert evenly_spread(10, 4) == [0, 2, 5, 7] and evenly_spread(3, 5) == [0, 1, 2] and evenly_spread(0, 5) == []


def _write_bag(path: Path, frames: list[np.ndarray]) -> None:
    from rosbags.rosbag2 import Writer
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores.ROS2_HUMBLE)
    types = store.types
    with Writer(path, version=9) as writer:
        connection = writer.add_connection("/camera/image", "sensor_msgs/msg/Image", typestore=store)
        for i, frame in enumerate(frames):
            ns = (i + 1) * 10**8
            header = types["std_msgs/msg/Header"](
                stamp=types["builtin_interfaces/msg/Time"](sec=0, nanosec=ns), frame_id="camera"
            )
            height, width = frame.shape[:2]
            msg = types["sensor_msgs/msg/Image"](
                header=header, height=height, width=width, encoding="bgr8", is_bigendian=0, step=width * 3,
                data=np.ascontiguousarray(frame[:, :, ::-1]).reshape(-1),
            )
            writer.write(connection, ns, store.serialize_cdr(msg, "sensor_msgs/msg/Image"))


def test_calibration_batches_from_a_rosbag(tmp_path):
    rng = np.random.default_rng(5)
    frames = [rng.integers(0, 256, (60, 80, 3), dtype=np.uint8) for _ in range(6)]
    _write_bag(tmp_path / "bag", frames)
    source = CalibrationSource(tmp_path / "bag", topic="/camera/image", limit=3)
    batches = list(CalibrationBatches(source.images(), SMALL_HEIGHT, SMALL_WIDTH))
    assert len(batches) == 3
    for got, index in zip(batches, [0, 2, 4], strict=True):  # spread evenly, bgr8 decoded to RGB
        np.testing.assert_array_equal(got[0], to_network_input(frames[index], SMALL_HEIGHT, SMALL_WIDTH)[0])
    with pytest.raises(CalibrationError, match="'/nope' not in the bag"):
        list(CalibrationSource(tmp_path / "bag", topic="/nope").images())


def test_calibration_table_name_follows_the_model(tmp_path):
    path = calibration_cache_path(tmp_path / "model.onnx", SHA, 288, 384)
    assert path == tmp_path / "model.abababababab.288x384.int8-calibration.cache"


# ---------------------------------------------------------------------------------------------- GPU processing


def _noise(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.mark.parametrize(
    ("size", "network"),
    [((480, 640), (288, 384)), ((120, 160), (288, 384)), ((97, 131), (64, 96)), ((300, 200), (288, 384)),
     ((64, 96), (64, 96)), ((481, 641), (96, 128))],
)
def test_torch_preprocessing_matches_opencv(size, network):
    """Within one grey level everywhere. Shrinking (area filter) differs only on rounding ties (mean
    3e-5 grey levels measured at 481x641 -> 96x128, 0 for whole-number ratios); enlarging (bilinear) 0.125
    on average on pure noise (OpenCV's 8-bit bilinear uses 11-bit fixed-point weights)."""
    image = _noise(*size)
    reference = to_network_input(image, *network)
    got = to_network_input_torch(torch.from_numpy(image), *network).numpy()
    assert got.shape == reference.shape and got.dtype == np.float32
    difference = np.abs(got - reference) * 255
    assert difference.max() <= 1.0 + 1e-4 and difference.mean() <= 0.13
    if network[0] <= size[0] and network[1] <= size[1]:
        assert difference.mean() <= 1e-4


@pytest.mark.parametrize(("network", "output"), [((288, 384), (480, 640)), ((64, 96), (97, 131)),
                                                  ((288, 384), (120, 160)), ((64, 96), (64, 96))])
def test_torch_postprocessing_matches_opencv(network, output):
    rng = np.random.default_rng(1)
    disparity = rng.random(network, dtype=np.float32)
    labels = rng.integers(0, 40, network, dtype=np.uint8)
    np.testing.assert_allclose(
        resize_disparity_torch(torch.from_numpy(disparity), *output).numpy(), resize_disparity(disparity, *output),
        atol=1e-6,
    )
    np.testing.assert_array_equal(resize_labels_torch(torch.from_numpy(labels), *output).numpy(),
                                  resize_labels(labels, *output))
    # int64 ids (an engine without the uint8 cast) resize the same way
    wide = resize_labels_torch(torch.from_numpy(labels.astype(np.int64)), *output).numpy()
    np.testing.assert_array_equal(wide, resize_labels(labels, *output))


def test_gpu_processor_on_cpu_tensors_matches_the_numpy_pipeline():
    processor = GpuProcessor(torch.device("cpu"))
    image = _noise(120, 160, seed=3)[::-1]  # a negative-stride view
    batch = processor.preprocess(image, SMALL_HEIGHT, SMALL_WIDTH)
    assert batch.shape == (1, 3, SMALL_HEIGHT, SMALL_WIDTH)
    disparity = torch.rand(SMALL_HEIGHT, SMALL_WIDTH, generator=torch.Generator().manual_seed(0))
    labels = torch.randint(0, 40, (SMALL_HEIGHT, SMALL_WIDTH), dtype=torch.uint8)
    depth, ids = processor.postprocess(disparity, labels, (120, 160), 0.1, 10.0)
    expected = disparity_to_depth(resize_disparity(disparity.numpy(), 120, 160), 0.1, 10.0)
    assert depth.dtype == np.float32 and ids.dtype == np.uint8 and depth.shape == ids.shape == (120, 160)
    np.testing.assert_allclose(depth, expected, rtol=5e-4)  # disparity within 1e-4, depth ~ 1/disparity
    np.testing.assert_array_equal(ids, resize_labels(labels.numpy(), 120, 160))
    again, _ = processor.postprocess(disparity, labels, (120, 160), 0.1, 10.0)
    assert again is not depth  # results are copies, not views of the reused staging buffer
    with pytest.raises(ValueError, match="uint8"):
        to_network_input_torch(torch.zeros(4, 4, 3), 2, 2)


# ---------------------------------------------------------------------------------------------- backend choice


def test_tensorrt_backend_registration_without_tensorrt(small_model, tmp_path):
    assert "tensorrt" in BACKENDS
    assert resolve_backend("auto", small_model.onnx) == "onnxruntime"  # no TensorRT runtime here
    assert resolve_backend("tensorrt", small_model.onnx) == "tensorrt"
    for suffix in (".engine", ".plan"):
        with pytest.raises(ModelLoadError, match=f"cannot pick a backend for '\\{suffix}'.*needs the tensorrt"):
            resolve_backend("auto", tmp_path / f"model{suffix}")
    with pytest.raises(ModelLoadError, match="small.onnx: the tensorrt backend needs the tensorrt package"):
        create_backend("tensorrt", small_model.onnx)


def test_onnxruntime_gpu_provider_options(tmp_path):
    providers = select_providers(
        ["CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider"], tmp_path / "m.onnx",
        fp16=False, device_id=1, workspace_mib=512,
    )
    (trt_name, trt_options), (cuda_name, cuda_options), cpu = providers
    assert (trt_name, cuda_name, cpu) == ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
    cache = str(tmp_path / "m_ort_trt_cache")
    assert trt_options == {
        "device_id": 1, "trt_engine_cache_enable": True, "trt_engine_cache_path": cache,
        "trt_timing_cache_enable": True, "trt_timing_cache_path": cache, "trt_fp16_enable": False,
        "trt_max_workspace_size": 512 << 20,
    }
    assert Path(cache).is_dir()
    assert cuda_options == {"device_id": 1, "arena_extend_strategy": "kSameAsRequested"}
    only_cuda = select_providers(["CUDAExecutionProvider", "CPUExecutionProvider"], tmp_path / "m.onnx")
    assert [p if isinstance(p, str) else p[0] for p in only_cuda] == ["CUDAExecutionProvider", "CPUExecutionProvider"]

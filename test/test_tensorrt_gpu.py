"""TensorRT on a real GPU: engine builds (FP32, FP16, INT8), parity with ONNX Runtime on CPU, the
GPU pre/post-processing, and the engine cache (reuse, rebuild, refusal of a foreign engine).

These tests need the ``tensorrt`` package and a CUDA GPU visible to torch and skip otherwise
(the development and CI machines have neither; there the TensorRT code is checked by mypy in
``test_tensorrt_static.py`` and its GPU-free parts in ``test_tensorrt_cpu.py``). On a Jetson or a
desktop GPU: ``python -m pytest -q test/test_tensorrt_gpu.py`` (a few minutes: each test builds
small engines for the 64x96 test network).
"""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
from model_fixtures import SMALL_HEIGHT, SMALL_WIDTH
from PIL import Image

from gam_depth_ros.inference.accelerators import tensorrt_usable

pytestmark = pytest.mark.skipif(
    not tensorrt_usable(),
    reason="needs TensorRT (the tensorrt Python package) and a CUDA GPU; none here, so the TensorRT path "
    "is only type-checked (test_tensorrt_static.py)",
)

FP16_DISPARITY_ATOL = 5e-3  # sigmoid disparity in (0, 1); FP16 keeps ~3 significant digits
FP32_DISPARITY_ATOL = 1e-4  # TF32 is disabled for fp32 engines


def ort_cpu(onnx_path, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    disparity, labels = session.run(["disparity", "semantic"], {"image": batch})
    return disparity[0, 0], labels[0]


def inputs() -> list[np.ndarray]:
    from gam_depth_ros.export import verification_images

    return list(verification_images(SMALL_HEIGHT, SMALL_WIDTH, seed=7))


@pytest.fixture(scope="module")
def engines(tmp_path_factory):
    return tmp_path_factory.mktemp("engines")


def backend(onnx_path, cache_dir, **options):
    from gam_depth_ros.inference.tensorrt_backend import TensorRTBackend

    return TensorRTBackend(onnx_path, cache_dir=cache_dir, **options)


@pytest.mark.parametrize(("precision", "atol", "agreement"), [("fp16", FP16_DISPARITY_ATOL, 0.97),
                                                               ("fp32", FP32_DISPARITY_ATOL, 0.999)])
def test_engine_matches_onnxruntime_cpu(small_model, engines, precision, atol, agreement):
    trt_backend = backend(small_model.onnx, engines, precision=precision)
    assert trt_backend.name == "tensorrt" and "TensorRT" in trt_backend.device
    assert f".{precision}.{SMALL_HEIGHT}x{SMALL_WIDTH}." in trt_backend.engine_path.name
    for batch in inputs():
        disparity, labels = trt_backend.run_network(batch)
        ref_disparity, ref_labels = ort_cpu(small_model.onnx, batch)
        assert disparity.shape == (SMALL_HEIGHT, SMALL_WIDTH) and disparity.dtype == np.float32
        assert labels.shape == (SMALL_HEIGHT, SMALL_WIDTH) and labels.dtype == np.uint8
        np.testing.assert_allclose(disparity, ref_disparity, atol=atol)
        assert (labels == ref_labels).mean() >= agreement


def test_gpu_processing_matches_the_cpu_pipeline(small_model, engines):
    from gam_depth_ros.inference.base import InferenceBackend

    trt_backend = backend(small_model.onnx, engines, precision="fp32")
    image = np.random.default_rng(3).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    image = np.kron(image[::8, ::8], np.ones((8, 8, 1), np.uint8))  # blocks: a scene, not noise
    gpu = trt_backend.infer(image)
    cpu = InferenceBackend.infer(trt_backend, image)  # numpy/Pillow pre/post-processing, same engine
    assert gpu.depth.shape == gpu.labels.shape == (120, 160)
    assert gpu.depth.dtype == np.float32 and gpu.labels.dtype == np.uint8 and gpu.inference_s > 0
    relative = np.abs(gpu.depth - cpu.depth) / cpu.depth
    assert np.median(relative) < 1e-3 and relative.max() < 5e-2  # inputs differ by <= 1 grey level
    assert (gpu.labels == cpu.labels).mean() >= 0.98
    small = trt_backend.infer(image, output_size=(SMALL_HEIGHT, SMALL_WIDTH))
    assert small.depth.shape == (SMALL_HEIGHT, SMALL_WIDTH)
    metadata = trt_backend.metadata
    assert metadata.min_depth - 1e-6 <= small.depth.min() and small.depth.max() <= metadata.max_depth + 1e-3


def test_engine_cache_is_reused_and_rebuilt_when_stale(small_model, tmp_path):
    from gam_depth_ros.inference.engine_cache import EngineSpec, read_record, record_path
    from gam_depth_ros.inference.tensorrt_engine import current_environment, ensure_engine

    env = current_environment()
    spec = EngineSpec("fp16", SMALL_HEIGHT, SMALL_WIDTH)
    first = ensure_engine(small_model.onnx, spec, cache_dir=tmp_path)
    assert f".trt{env.tensorrt_version}.{env.gpu_slug}.{env.sm}.engine" in first.name
    record = read_record(first)
    assert record.environment == env and record.build_seconds is not None and record.onnx_file == "small.onnx"
    stamp = first.stat().st_mtime_ns
    assert ensure_engine(small_model.onnx, spec, cache_dir=tmp_path) == first
    assert first.stat().st_mtime_ns == stamp  # reused, not rebuilt
    data = json.loads(record_path(first).read_text())
    data["tensorrt_version"] = "9.0.0.0"  # as if built by another TensorRT
    record_path(first).write_text(json.dumps(data))
    assert ensure_engine(small_model.onnx, spec, cache_dir=tmp_path) == first
    assert first.stat().st_mtime_ns != stamp and read_record(first).tensorrt_version == env.tensorrt_version
    heads = EngineSpec("fp16", SMALL_HEIGHT, SMALL_WIDTH, ("input-norm", "heads"), obey_precision=True)
    assert ensure_engine(small_model.onnx, heads, cache_dir=tmp_path) == first  # same key, other FP32 layers
    assert read_record(first).fp32_layers == ("input-norm", "heads")


def test_engine_file_loads_directly_and_foreign_engines_are_refused(small_model, engines, tmp_path):
    from gam_depth_ros.inference import ModelLoadError, create_backend
    from gam_depth_ros.inference.engine_cache import record_path

    built = backend(small_model.onnx, engines, precision="fp16")
    direct = create_backend("auto", built.engine_path)
    assert direct.name == "tensorrt" and direct.metadata == built.metadata
    batch = inputs()[0]
    np.testing.assert_allclose(direct.run_network(batch)[0], built.run_network(batch)[0], atol=1e-6)
    foreign = tmp_path / built.engine_path.name
    shutil.copy(built.engine_path, foreign)
    data = json.loads(record_path(built.engine_path).read_text())
    data["gpu_name"], data["compute_capability"] = "Some Other GPU", [1, 0]
    record_path(foreign).write_text(json.dumps(data))
    with pytest.raises(ModelLoadError, match="cannot run here.*this GPU is"):
        create_backend("tensorrt", foreign)


def test_int8_engine_from_folder_calibration(small_model, tmp_path):
    from gam_depth_ros.inference.calibration import CalibrationSource
    from gam_depth_ros.inference.engine_cache import EngineSpec, read_record
    from gam_depth_ros.inference.layer_precision import normalise_selectors
    from gam_depth_ros.inference.tensorrt_backend import TensorRTBackend
    from gam_depth_ros.inference.tensorrt_engine import ensure_engine

    folder = tmp_path / "calibration"
    folder.mkdir()
    rng = np.random.default_rng(11)
    for i in range(8):
        blocks = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
        Image.fromarray(np.kron(blocks, np.ones((10, 10, 1), np.uint8))).save(folder / f"{i}.png")
    spec = EngineSpec("int8", SMALL_HEIGHT, SMALL_WIDTH, normalise_selectors(None, "int8"))
    source = CalibrationSource(folder)
    path = ensure_engine(small_model.onnx, spec, calibration=source, cache_dir=tmp_path)
    assert read_record(path).calibration == source.describe()
    tables = list(tmp_path.glob("small.*.int8-calibration.cache"))
    assert len(tables) == 1 and tables[0].stat().st_size > 0
    os.utime(path, ns=(0, 0))
    again = ensure_engine(small_model.onnx, spec, calibration=None, cache_dir=tmp_path, force=True)
    assert again == path and path.stat().st_mtime_ns != 0  # rebuilt from the saved table, no images
    assert read_record(path).calibration == {"kind": "table", "path": str(tables[0])}
    int8 = TensorRTBackend(path)
    for batch in inputs():
        disparity, _ = int8.run_network(batch)
        reference, _ = ort_cpu(small_model.onnx, batch)
        assert np.isfinite(disparity).all() and np.abs(disparity - reference).mean() < 0.05

"""Inference backends: parity between ONNX Runtime and torch, output sizes, backend choice, errors."""

from __future__ import annotations

import importlib.util
import shutil

import numpy as np
import pytest
from model_fixtures import SMALL_HEIGHT, SMALL_WIDTH, blocky_scene, needs_checkpoints

from gam_depth_ros.inference import ModelLoadError, create_backend, resolve_backend
from gam_depth_ros.inference.onnx_backend import select_providers


@pytest.fixture(scope="module")
def onnx_backend(small_model):
    return create_backend("onnxruntime", small_model.onnx, threads=1)


@pytest.fixture(scope="module")
def torch_backend(small_model):
    needs_checkpoints(small_model)
    return create_backend("torch", small_model.checkpoint)


@pytest.mark.parametrize(("height", "width"), [(64, 96), (120, 160), (97, 131)])
def test_onnxruntime_and_torch_agree(onnx_backend, torch_backend, height, width):
    image = blocky_scene(height, width)
    a, b = onnx_backend.infer(image), torch_backend.infer(image)
    assert a.depth.shape == b.depth.shape == (height, width)
    assert a.depth.dtype == np.float32 and a.labels.dtype == np.uint8
    np.testing.assert_allclose(a.depth, b.depth, rtol=1e-4, atol=1e-5)
    assert (a.labels == b.labels).mean() >= 0.999
    assert len(np.unique(a.labels)) > 1  # a real label map, not a constant


def test_output_size_and_depth_range(onnx_backend):
    prediction = onnx_backend.infer(blocky_scene(120, 160), output_size=(SMALL_HEIGHT, SMALL_WIDTH))
    assert prediction.depth.shape == prediction.labels.shape == (SMALL_HEIGHT, SMALL_WIDTH)
    assert np.isfinite(prediction.depth).all()
    assert prediction.depth.min() >= 0.1 - 1e-6 and prediction.depth.max() <= 10.0 + 1e-4
    assert prediction.labels.max() < 40
    assert prediction.inference_s > 0
    assert onnx_backend.metadata.depth_scale == 2.0 and onnx_backend.device == "CPUExecutionProvider"


def test_grey_and_rgba_and_strided_inputs(onnx_backend):
    rgb = blocky_scene(80, 100, seed=3)
    grey = rgb[:, :, 1]
    reference = onnx_backend.infer(np.repeat(grey[:, :, None], 3, axis=2))
    np.testing.assert_array_equal(onnx_backend.infer(grey).depth, reference.depth)
    np.testing.assert_array_equal(onnx_backend.infer(grey[:, :, None]).depth, reference.depth)
    rgba = np.concatenate([rgb, np.full((80, 100, 1), 7, np.uint8)], axis=2)
    np.testing.assert_array_equal(onnx_backend.infer(rgba).depth, onnx_backend.infer(rgb).depth)
    big = blocky_scene(160, 200, seed=4)
    view = big[::2, ::2]  # non-contiguous
    assert not view.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(onnx_backend.infer(view).depth, onnx_backend.infer(view.copy()).depth)


def test_auto_picks_by_file_type(small_model, tmp_path):
    needs_checkpoints(small_model)
    assert resolve_backend("auto", small_model.onnx) == "onnxruntime"
    assert resolve_backend("auto", small_model.checkpoint) == "torch"
    assert resolve_backend("auto", small_model.safetensors) == "torch"
    assert create_backend("auto", small_model.safetensors).name == "torch"
    with pytest.raises(ModelLoadError, match="model.engine.*cannot pick a backend"):
        resolve_backend("auto", tmp_path / "model.engine")
    with pytest.raises(ValueError, match="unknown backend"):
        resolve_backend("tensorflow", small_model.onnx)


def test_missing_and_corrupt_models_name_the_file(small_model, tmp_path):
    with pytest.raises(ModelLoadError, match="absent.onnx.*does not exist"):
        create_backend("onnxruntime", tmp_path / "absent.onnx")
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x08\x07garbage" * 10)
    shutil.copy(small_model.onnx.with_suffix(".json"), corrupt.with_suffix(".json"))
    with pytest.raises(ModelLoadError, match="corrupt.onnx.*cannot load"):
        create_backend("onnxruntime", corrupt)
    no_metadata = tmp_path / "bare.onnx"
    shutil.copy(small_model.onnx, no_metadata)
    with pytest.raises(ModelLoadError, match="bare.json.*metadata not found"):
        create_backend("onnxruntime", no_metadata)
    # Where torch is not installed (the oldest-versions stage) the torch backend says that instead.
    torch_missing = importlib.util.find_spec("torch") is None
    with pytest.raises(ModelLoadError, match="absent.pt.*needs the torch package" if torch_missing else
                       "absent.pt.*does not exist"):
        create_backend("torch", tmp_path / "absent.pt")


def test_model_that_disagrees_with_its_metadata_is_refused(small_model, tmp_path):
    import json

    wrong = tmp_path / "wrong.onnx"
    shutil.copy(small_model.onnx, wrong)
    metadata = json.loads(small_model.onnx.with_suffix(".json").read_text())
    metadata["input_height"] = 128
    wrong.with_suffix(".json").write_text(json.dumps(metadata))
    with pytest.raises(ModelLoadError, match=r"wrong.onnx.*input 'image' should be \[1, 3, 128, 96\]"):
        create_backend("onnxruntime", wrong)


def test_provider_order_prefers_gpu(tmp_path):
    providers = select_providers(
        ["CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider"], tmp_path / "m.onnx"
    )
    assert [p if isinstance(p, str) else p[0] for p in providers] == [
        "TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider",
    ]
    assert providers[0][1]["trt_engine_cache_path"] == str(tmp_path / "m_ort_trt_cache")
    assert select_providers(["CPUExecutionProvider"], tmp_path / "m.onnx") == ["CPUExecutionProvider"]

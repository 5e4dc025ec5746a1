"""Export: one self-contained ONNX file, metadata beside it, parity with torch, safe loading."""

from __future__ import annotations

import json
import pickle

import numpy as np
import onnx
import pytest
import torch
from model_fixtures import SMALL_HEIGHT, SMALL_WIDTH

from gam_depth_ros.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from gam_depth_ros.classes import NYU40_CLASS_NAMES, NYU40_PALETTE
from gam_depth_ros.export import ExportError, export_checkpoint, main, verify_onnx
from gam_depth_ros.metadata import read_metadata


def test_exported_graph_signature(small_model):
    model = onnx.load(str(small_model.onnx))
    assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer)
    assert len(list(small_model.onnx.parent.glob("small.onnx*"))) == 1  # no external weight files
    assert model.opset_import[0].version >= 17
    (image,) = model.graph.input
    dims = [d.dim_value for d in image.type.tensor_type.shape.dim]
    assert image.name == "image" and dims == [1, 3, SMALL_HEIGHT, SMALL_WIDTH]
    outputs = {o.name: o for o in model.graph.output}
    assert list(outputs) == ["disparity", "semantic"]
    assert [d.dim_value for d in outputs["semantic"].type.tensor_type.shape.dim] == [1, SMALL_HEIGHT, SMALL_WIDTH]
    assert outputs["semantic"].type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert any(node.op_type == "ArgMax" for node in model.graph.node)


def test_metadata_beside_model(small_model):
    raw = json.loads(small_model.onnx.with_suffix(".json").read_text())
    assert raw["input_height"] == SMALL_HEIGHT and raw["input_width"] == SMALL_WIDTH
    assert raw["min_depth"] == 0.1 and raw["max_depth"] == 10.0 and raw["depth_scale"] == 2.0
    assert raw["class_names"] == list(NYU40_CLASS_NAMES)
    assert [tuple(c) for c in raw["palette"]] == list(NYU40_PALETTE)
    assert len(raw["source_checkpoint_sha256"]) == 64
    assert raw["training_config"] == {"note": "test"}
    assert read_metadata(small_model.onnx).num_classes == 40


def test_parity_with_torch_within_tolerance(small_model):
    checkpoint = load_checkpoint(small_model.checkpoint)
    from gam_depth_ros.checkpoint import build_model

    report = verify_onnx(build_model(checkpoint), small_model.onnx, read_metadata(small_model.onnx))
    assert report.max_disparity_diff <= 1e-4
    assert report.label_agreement >= 0.999
    assert report.ok


def test_parity_failure_is_loud(small_model, tmp_path):
    from gam_depth_ros.checkpoint import build_model

    other = build_model(load_checkpoint(small_model.checkpoint))
    with torch.no_grad():
        other.depth_decoder.heads[0].conv.bias.add_(0.5)  # a different network than the exported one
    report = verify_onnx(other, small_model.onnx, read_metadata(small_model.onnx))
    assert not report.ok and report.max_disparity_diff > 1e-3


def test_cli_with_logits_and_other_size(small_model, tmp_path):
    output = tmp_path / "out" / "model.onnx"
    code = main(["--checkpoint", str(small_model.safetensors), "--output", str(output),
                 "--height", "96", "--width", "128", "--semantic-logits"])
    assert code == 0
    metadata = read_metadata(output)
    assert (metadata.input_height, metadata.input_width) == (96, 128)
    assert metadata.semantic_logits_output == "semantic_logits"
    import onnxruntime as ort

    session = ort.InferenceSession(str(output), providers=["CPUExecutionProvider"])
    image = np.random.default_rng(0).random((1, 3, 96, 128), dtype=np.float32)
    disparity, labels, logits = session.run(None, {"image": image})
    assert logits.shape == (1, 40, 96, 128)
    np.testing.assert_array_equal(labels, logits.argmax(axis=1))


def test_bad_checkpoint_paths_name_the_file(tmp_path, caplog):
    missing = tmp_path / "nope.pt"
    with pytest.raises(CheckpointError, match="nope.pt.*does not exist"):
        export_checkpoint(missing, tmp_path / "x.onnx")
    assert main(["--checkpoint", str(missing), "--output", str(tmp_path / "x.onnx")]) == 1
    assert "nope.pt" in caplog.text
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(b"PK\x03\x04 definitely not a zip")
    with pytest.raises(CheckpointError, match="truncated.pt"):
        load_checkpoint(truncated)
    other_type = tmp_path / "weights.bin"
    other_type.write_bytes(b"x")
    with pytest.raises(CheckpointError, match="weights.bin.*unknown checkpoint type"):
        load_checkpoint(other_type)


def test_export_size_must_be_valid(small_model, tmp_path):
    with pytest.raises(ExportError, match="multiples of 32"):
        export_checkpoint(small_model.checkpoint, tmp_path / "x.onnx", height=100, width=128)


class _Exploit:
    def __reduce__(self):
        import os

        return (os.system, ("touch /tmp/gam_depth_ros_pwned",))


def test_malicious_pickle_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"model": _Exploit(), "model_config": {}}, path, pickle_protocol=pickle.DEFAULT_PROTOCOL)
    with pytest.raises(CheckpointError, match="evil.pt.*weights_only"):
        load_checkpoint(path)


def test_checkpoint_round_trip_and_atomic_write(tmp_path):
    from gam_depth_ros.model_config import ModelConfig

    state = {"w": torch.arange(6.0).view(2, 3)}
    path = save_checkpoint(tmp_path / "a.pt", state, ModelConfig(height=64, width=64), None, epoch=3)
    loaded = load_checkpoint(path)
    assert torch.equal(loaded.state_dict["w"], state["w"]) and loaded.extra["epoch"] == 3
    assert loaded.model_config.height == 64
    assert [p.name for p in tmp_path.iterdir()] == ["a.pt"]  # no temporary file left behind
    bad_config = tmp_path / "bad.pt"
    torch.save({"model": state, "model_config": {"height": 64, "colour": "red"}}, bad_config)
    with pytest.raises(CheckpointError, match="bad.pt.*unknown key"):
        load_checkpoint(bad_config)


def test_fp16_weights_halve_the_file_and_stay_close_to_torch(small_model, tmp_path):
    output = tmp_path / "half.onnx"
    metadata, report = export_checkpoint(small_model.checkpoint, output, fp16_weights=True)
    assert metadata.weights_dtype == "float16" and read_metadata(output).weights_dtype == "float16"
    assert output.stat().st_size < 0.55 * small_model.onnx.stat().st_size
    assert report.ok and report.fp16_weights
    assert 0 < report.max_disparity_diff < 5e-3  # rounded weights: a small, non-zero difference
    graph = onnx.load(str(output)).graph
    stored = {init.name: init.data_type for init in graph.initializer}
    assert onnx.TensorProto.FLOAT16 in stored.values()
    assert {i.elem_type for i in (o.type.tensor_type for o in graph.output)} <= {onnx.TensorProto.FLOAT,
                                                                                   onnx.TensorProto.UINT8}

"""Hostile files (issue 18, item 4): each is refused with an error naming the file, fast, before it is read.

Every case is a real crafted file: ONNX models whose external data points outside their folder,
model metadata JSON that is huge, deeply nested or mistyped, safetensors headers that declare
absurd sizes, YAML with alias bombs (also as the node's parameter file), and bags whose topics
carry another message type than the role they are given.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from ros_helpers import REPO, ros_env

from gam_depth_ros.config_io import MAX_ALIAS_EXPANSION, ConfigError, load_yaml, parse_yaml
from gam_depth_ros.metadata import ModelMetadata, write_metadata

FAST_S = 2.0  # every refusal below takes milliseconds; this bounds it with room for a loaded machine
NODE_S = 30.0  # a node process: Python start, rclpy import and the refusal


class Elapsed:
    def __enter__(self):
        self.start = time.monotonic()
        return self

    def __exit__(self, *exc):
        self.seconds = time.monotonic() - self.start


# ---------------------------------------------------------------- ONNX external data

def _external_model(path: Path, location: str, in_subgraph: bool = False, length: int = 64,
                    repeat: str | None = None) -> Path:
    """``y = x + w`` whose 16-float ``w`` lives at ``location`` (external data), + metadata beside it.

    ``in_subgraph`` puts ``w`` in a Constant inside an If branch instead of the initializers;
    ``repeat`` adds a second ``location`` entry (the one a reader taking the last value would use).
    """
    from onnx import TensorProto, helper, numpy_helper

    tensor = numpy_helper.from_array(np.zeros(16, np.float32), "w")
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    entries = [("location", location), ("offset", "0"), ("length", str(length))]
    for key, value in entries + ([("location", repeat)] if repeat else []):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [16])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [16])
    if in_subgraph:
        branch = helper.make_graph([helper.make_node("Constant", [], ["w"], value=tensor)], "branch", [],
                                   [helper.make_tensor_value_info("w", TensorProto.FLOAT, [16])])
        cond = numpy_helper.from_array(np.array(True), "cond")
        nodes = [helper.make_node("If", ["cond"], ["w_out"], then_branch=branch, else_branch=branch),
                 helper.make_node("Add", ["x", "w_out"], ["y"])]
        graph = helper.make_graph(nodes, "g", [x], [y], [cond])
    else:
        graph = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "g", [x], [y], [tensor])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.write_bytes(model.SerializeToString())
    write_metadata(path, ModelMetadata(input_height=4, input_width=4))
    return path


@pytest.fixture
def model_folder(tmp_path):
    """``tmp_path/model/`` with a good ``w.bin``; a ``secret.bin`` outside it, linked as ``link.bin``."""
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "w.bin").write_bytes(np.ones(16, np.float32).tobytes())
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.arange(16, dtype=np.float32).tobytes())
    (folder / "link.bin").symlink_to(secret)
    os.mkfifo(folder / "fifo.bin")  # ONNX Runtime blocks on opening a FIFO unless it checks first
    return folder


HOSTILE_LOCATIONS = {
    "parent": (dict(location="../secret.bin"), "'../secret.bin' (a path that leaves the model's folder)"),
    "inner_parent": (dict(location="sub/../../secret.bin"), "a path that leaves the model's folder"),
    "absolute": (dict(location="{secret}"), "(an absolute path, outside the model's folder)"),
    "symlink_out": (dict(location="link.bin"), "'link.bin' (resolves to "),
    "fifo": (dict(location="fifo.bin"), "'fifo.bin' (not a regular file)"),
    "subgraph": (dict(location="../secret.bin", in_subgraph=True), "a path that leaves the model's folder"),
    "repeated_key": (dict(location="w.bin", repeat="../secret.bin"), "repeats external-data key(s) ['location']"),
    "past_the_end": (dict(location="w.bin", length=1 << 40), "lie outside the file's 64 bytes"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_LOCATIONS))
def test_onnx_external_data_outside_the_folder_is_refused_before_onnxruntime(case, model_folder, monkeypatch):
    import onnxruntime

    from gam_depth_ros.inference import ModelLoadError, create_backend

    options, message = HOSTILE_LOCATIONS[case]
    options = {**options, "location": options["location"].format(secret=model_folder.parent / "secret.bin")}
    path = _external_model(model_folder / f"{case}.onnx", **options)

    def never(*args, **kwargs):
        raise AssertionError("ONNX Runtime was given a hostile model")

    monkeypatch.setattr(onnxruntime, "InferenceSession", never)
    with Elapsed() as elapsed, pytest.raises(ModelLoadError) as error:
        create_backend("onnxruntime", path)
    assert str(path) in str(error.value) and message in str(error.value) and "refusing" in str(error.value)
    assert elapsed.seconds < FAST_S


def test_onnx_external_data_inside_the_folder_still_loads(model_folder):
    from gam_depth_ros.inference.onnx_backend import OnnxRuntimeBackend
    from gam_depth_ros.onnx_files import check_external_data

    path = _external_model(model_folder / "good.onnx", "w.bin")
    assert [t.entries["location"] for t in check_external_data(path)] == ["w.bin"]
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    np.testing.assert_array_equal(session.run(None, {"x": np.zeros(16, np.float32)})[0], np.ones(16))
    with pytest.raises(Exception, match="input 'image'"):  # gets past the check to the signature check
        OnnxRuntimeBackend(path)


def test_onnx_load_is_not_reached_for_a_hostile_model(model_folder, monkeypatch):
    import onnx

    from gam_depth_ros.onnx_files import UnsafeModelError
    from gam_depth_ros.onnx_weights import store_weights_as_float16

    path = _external_model(model_folder / "parent.onnx", "../secret.bin")
    monkeypatch.setattr(onnx, "load", lambda *a, **k: pytest.fail("onnx.load was given a hostile model"))
    with pytest.raises(UnsafeModelError, match="parent.onnx.*leaves the model's folder"):
        store_weights_as_float16(path)


def test_a_non_onnx_file_is_named(tmp_path):
    from gam_depth_ros.onnx_files import UnsafeModelError, check_external_data

    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x08\x07garbage" * 10)
    with pytest.raises(UnsafeModelError, match="junk.onnx: cannot load the model: not a valid ONNX protobuf"):
        check_external_data(junk)


def _run_node(tmp_path: Path, params_file: Path) -> tuple[subprocess.CompletedProcess, float]:
    env = {**os.environ, **ros_env(tmp_path / "ros_log")}
    command = [sys.executable, "-m", "gam_depth_ros.node", "--ros-args", "--params-file", str(params_file)]
    with Elapsed() as elapsed:
        result = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=2 * NODE_S)
    return result, elapsed.seconds


def test_node_refuses_a_model_reading_outside_its_folder(tmp_path, model_folder):
    import yaml

    path = _external_model(model_folder / "parent.onnx", "../secret.bin")
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"/**/depth_node": {"ros__parameters": {"model_path": str(path)}}}))
    result, seconds = _run_node(tmp_path, params)
    assert result.returncode == 1 and str(path) in result.stderr, result.stderr
    assert "leaves the model's folder" in result.stderr and seconds < NODE_S


# ---------------------------------------------------------------- model metadata JSON

HOSTILE_METADATA = {
    "huge": ('{"format": "gam_depth_ros.model/1", "pad": "' + "x" * (2 << 20) + '"}',
             "model metadata is larger than 1048576 bytes"),
    "deep_bomb": ('{"format": "gam_depth_ros.model/1", "training_config": ' + "[" * 200_000 + "]" * 200_000 + "}",
                  "model metadata is nested too deeply"),
    "deep": ('{"format": "gam_depth_ros.model/1", "training_config": {"a": ' + "[" * 40 + "]" * 40 + "}}",
             "nested deeper than 16 levels"),
    "string_height": ({"input_height": "64"}, ".json.input_height: expected int, found '64'"),
    "bool_depth": ({"min_depth": True}, ".json.min_depth: expected a number, found True"),
    "class_names_string": ({"class_names": "chair"}, ".json.class_names: expected a list, found str"),
    "palette_strings": ({"palette": [["r", "g", "b"]] * 40}, ".json.palette[0][0]: expected int, found 'r'"),
    "palette_range": ({"palette": [[0, 0, 1000]] * 40}, "palette colours must be 0..255"),
    "absurd_input": ({"input_height": 10**9}, "input size 1000000000x96 outside 1..8192 pixels"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_METADATA))
def test_hostile_metadata_json_is_named(case, tmp_path):
    from fault_models import write_fault_model

    from gam_depth_ros.inference import ModelLoadError, create_backend

    model = write_fault_model(tmp_path / "model.onnx")
    content, message = HOSTILE_METADATA[case]
    if isinstance(content, dict):
        content = json.dumps({**json.loads(model.with_suffix(".json").read_text()), **content})
    model.with_suffix(".json").write_text(content)
    with Elapsed() as elapsed, pytest.raises(ModelLoadError) as error:
        create_backend("onnxruntime", model)
    assert str(model.with_suffix(".json")) in str(error.value) and message in str(error.value), str(error.value)
    assert elapsed.seconds < FAST_S


def test_metadata_that_never_ends_is_read_no_further_than_the_limit(tmp_path):
    from gam_depth_ros.metadata import MetadataError, read_metadata

    model = tmp_path / "model.onnx"
    model.with_suffix(".json").symlink_to("/dev/zero")  # an endless file: reading it all never returns
    with Elapsed() as elapsed, pytest.raises(MetadataError, match="model.json: model metadata is larger than"):
        read_metadata(model)
    assert elapsed.seconds < FAST_S


# ---------------------------------------------------------------- safetensors headers

def _safetensors(path: Path, header: dict, data: bytes = b"", size: int | None = None,
                 header_bytes: int | None = None) -> Path:
    text = json.dumps(header).encode()
    with open(path, "wb") as stream:
        stream.write((len(text) if header_bytes is None else header_bytes).to_bytes(8, "little") + text + data)
        if size is not None:
            stream.truncate(size)  # sparse: the declared bytes exist without using disk or memory
    return path


def _tensor(shape, begin, end, dtype="F32"):
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


HOSTILE_SAFETENSORS = {
    "header_length": (dict(header={}, header_bytes=1 << 62), "safetensors header declares 4611686018427387904 bytes"),
    "overflowing_shape": (dict(header={"w": _tensor([1 << 31, 1 << 31], 0, 8)}, data=bytes(8)),
                          "tensor 'w' declares shape [2147483648, 2147483648] (18446744073709551616 bytes)"),
    "offsets_past_end": (dict(header={"w": _tensor([1 << 28], 0, 1 << 30)}, data=bytes(8)),
                         "the file has 8 bytes of data"),
    "negative_shape": (dict(header={"w": _tensor([-1, 2], 0, 8)}, data=bytes(8)), "invalid safetensors entry"),
    "unknown_dtype": (dict(header={"w": _tensor([2], 0, 8, "F128")}, data=bytes(8)), "invalid safetensors entry"),
    # Consistent with the file (8 GiB, sparse), which the safetensors library accepts and would copy.
    "eight_gib": (dict(header={"w": _tensor([1 << 31], 0, 1 << 33)}, size=None), "tensors declare more than"),
    "deep_config": (dict(header={"__metadata__": {"model_config": "[" * 100_000 + "]" * 100_000}}),
                    "invalid JSON in safetensors metadata"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_SAFETENSORS))
def test_hostile_safetensors_header_is_refused_before_allocating(case, tmp_path, monkeypatch):
    pytest.importorskip("torch")
    import safetensors

    from gam_depth_ros.checkpoint import CheckpointError, load_checkpoint

    options, message = HOSTILE_SAFETENSORS[case]
    path = tmp_path / f"{case}.safetensors"
    if case == "eight_gib":
        header_len = len(json.dumps(options["header"]).encode())
        options = {**options, "size": 8 + header_len + (1 << 33)}
    _safetensors(path, **options)
    if case != "deep_config":  # the header check comes before the library opens the file
        monkeypatch.setattr(safetensors, "safe_open", lambda *a, **k: pytest.fail("safe_open was reached"))
    with Elapsed() as elapsed, pytest.raises(CheckpointError) as error:
        load_checkpoint(path)
    assert str(path) in str(error.value) and message in str(error.value), str(error.value)
    assert elapsed.seconds < FAST_S


# ---------------------------------------------------------------- YAML alias bombs

def _alias_bomb(levels: int = 9, width: int = 9, indent: str = "") -> str:
    """The "billion laughs" document: ``width ** levels`` strings from a few hundred bytes."""
    lines = [f"{indent}l0: &l0 [" + ", ".join(['"lol"'] * width) + "]"]
    lines += [f"{indent}l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_yaml_alias_bomb_in_a_training_config_is_refused(tmp_path):
    from training.config import load_training_config

    config = tmp_path / "train.yaml"
    config.write_text("data:\n  source: folder\n  options:\n" + _alias_bomb(indent="    "))
    with Elapsed() as elapsed, pytest.raises(ConfigError) as error:
        load_training_config(config)
    assert str(error.value).startswith(f"{config}: YAML aliases expand to more than {MAX_ALIAS_EXPANSION}")
    assert elapsed.seconds < FAST_S


@pytest.mark.parametrize("loader", ["class_map", "intrinsics"])
def test_yaml_alias_bomb_in_data_files_is_refused(loader, tmp_path):
    pytest.importorskip("torch")  # training.data
    from training.data.common import DataError

    path = tmp_path / f"{loader}.yaml"
    path.write_text(_alias_bomb())
    if loader == "class_map":
        from training.proxy_labels import ClassMap as reader
        read = reader.from_yaml
    else:
        from training.data.folder import read_intrinsics as read
    with Elapsed() as elapsed, pytest.raises(DataError, match=f"{path}: YAML aliases expand"):
        read(path)
    assert elapsed.seconds < FAST_S


def test_recursive_and_modest_aliases(tmp_path):
    with pytest.raises(ConfigError, match="f.yaml: recursive YAML alias"):
        parse_yaml("a: &a [1, *a]\n", "f.yaml")
    # Aliases as people use them (shared settings, merge keys) still load.
    assert parse_yaml("base: &b {lr: 0.1}\nrun: {<<: *b, steps: 3}\nother: *b\n", "f.yaml") == {
        "base": {"lr": 0.1}, "run": {"lr": 0.1, "steps": 3}, "other": {"lr": 0.1}}
    big = tmp_path / "big.yaml"
    with open(big, "w") as stream:
        stream.truncate((16 << 20) + 1)
    with pytest.raises(ConfigError, match="big.yaml: config is larger than 16777216 bytes"):
        load_yaml(big)


def test_node_refuses_an_alias_bomb_params_file(tmp_path):
    params = tmp_path / "bomb_params.yaml"
    params.write_text("/**/depth_node:\n  ros__parameters:\n" + _alias_bomb(indent="    ")
                      + "    model_path: *l8\n")
    result, seconds = _run_node(tmp_path, params)
    # rcl's parameter-file parser refuses aliases ("Will not support aliasing"), naming the file.
    assert result.returncode == 1 and str(params) in result.stderr and "aliasing" in result.stderr, result.stderr
    assert seconds < NODE_S


# ---------------------------------------------------------------- bags with the wrong message types

@pytest.fixture(scope="module")
def good_bag(tmp_path_factory):
    from training.synthetic.generate import render_sequence, write_bag

    return write_bag(render_sequence(11, 0, 3, 32, 48, "robot"), tmp_path_factory.mktemp("bags") / "good")


def _hostile_bag(good: Path, out: Path, mode: str) -> Path:
    """``good`` with its image topic also carrying Strings (``two_types``), or only String payloads
    under the declared Image type (``payload``)."""
    from rosbags.rosbag2 import Reader, StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    from training.synthetic.generate import TOPICS

    store = get_typestore(Stores.ROS2_HUMBLE)
    text = store.serialize_cdr(store.types["std_msgs/msg/String"](data="not an image " * 4), "std_msgs/msg/String")
    with Reader(good) as reader, Writer(out, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        # The String connection comes first, so a reader that keeps one type per topic sees Image.
        strings = writer.add_connection(TOPICS["image"], "std_msgs/msg/String", typestore=store) \
            if mode == "two_types" else None
        connections = {c.id: writer.add_connection(c.topic, c.msgtype, typestore=store) for c in reader.connections}
        for connection, timestamp, raw in reader.messages():
            is_image = connection.topic == TOPICS["image"]
            writer.write(connections[connection.id], timestamp, text if is_image and mode == "payload" else raw)
            if is_image and strings is not None:
                writer.write(strings, timestamp + 1, text)
    return out


@pytest.mark.parametrize("mode, message", [
    ("two_types", "/camera/image_raw (image) carries sensor_msgs/msg/Image and std_msgs/msg/String, expected "
                  "sensor_msgs/msg/Image or sensor_msgs/msg/CompressedImage only"),
    ("payload", "no image could be read from /camera/image_raw (/camera/image_raw @ 1700000000000000000: "
                "not a valid sensor_msgs/msg/Image message"),
    ("camera_info_is_depth", "/camera/depth/image_raw (camera_info) carries sensor_msgs/msg/Image, expected "
                             "sensor_msgs/msg/CameraInfo"),
])
def test_bag_topic_with_another_message_type_is_named(mode, message, good_bag, tmp_path, caplog):
    from fault_models import write_fault_model

    from gam_depth_ros.evaluation.bag_eval import main
    from training.synthetic.generate import TOPICS

    bag = good_bag if mode == "camera_info_is_depth" else _hostile_bag(good_bag, tmp_path / mode, mode)
    info = TOPICS["depth"] if mode == "camera_info_is_depth" else TOPICS["camera_info"]
    model = write_fault_model(tmp_path / "model.onnx", 32, 48)
    with Elapsed() as elapsed:
        code = main(["--bag", str(bag), "--image-topic", TOPICS["image"], "--camera-info-topic", info,
                     "--model", str(model), "--output", str(tmp_path / "out"), "--scale-mode", "floor",
                     "--camera-height", "1.0"])
    assert code == 2 and f"error: {bag}: " in caplog.text and message in caplog.text, caplog.text
    assert elapsed.seconds < 10 * FAST_S

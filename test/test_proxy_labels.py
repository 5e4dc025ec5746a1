"""gam-depth-proxy-labels with tiny real ONNX models (ONNX Runtime) on an image folder."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from training.config import DataConfig
from training.data import make_dataset
from training.data.common import DataError
from training.proxy_labels import ClassMap, main

H, W = 64, 96
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the TorchScript ONNX exporter's notices


class ColourScores(torch.nn.Module):
    """1x1 conv: class c scores channel c (R, G, B), classes 3..4 score a constant 0.4."""

    def __init__(self, ids_output: bool = False) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 5, 1)
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.bias.zero_()
            for c in range(3):
                self.conv.weight[c, c] = 1.0
            self.conv.bias[3:] = 0.4
        self.ids_output = ids_output

    def forward(self, x):
        scores = self.conv(x)
        return scores.argmax(1) if self.ids_output else scores


def export(path, ids_output=False, size=(32, 48)):
    model = ColourScores(ids_output).eval()
    torch.onnx.export(model, (torch.zeros(1, 3, *size),), str(path), input_names=["img"], output_names=["out"],
                      opset_version=17, dynamo=False)
    return path


@pytest.fixture()
def folder(tmp_path):
    """Six 60x80 frames: left half red, right third blue, middle grey (argmax: 0, 2, classes 3/4 tie -> 3)."""
    root = tmp_path / "seq"
    (root / "images").mkdir(parents=True)
    frame = np.full((60, 80, 3), 50, np.uint8)
    frame[:, :40] = (230, 10, 10)
    frame[:, 56:] = (10, 10, 230)
    for i in range(6):
        Image.fromarray(frame).save(root / "images" / f"{i:06d}.png")
    (root / "intrinsics.yaml").write_text(yaml.safe_dump(
        {"fx": 60.0, "fy": 60.0, "cx": 40.0, "cy": 30.0, "width": 80, "height": 60}))
    return root


def class_map(tmp_path):
    path = tmp_path / "map.yaml"
    path.write_text(yaml.safe_dump({"default": "void", "classes": {0: "wall", 2: "floor", 4: 7}}))
    return path


@pytest.mark.parametrize("ids_output", [False, True])
def test_cli_writes_labels_the_loader_reads(tmp_path, folder, ids_output):
    model = export(tmp_path / "seg.onnx", ids_output)
    argv = ["--model", str(model), "--class-map", str(class_map(tmp_path)), "--mean", "0", "0", "0",
            "--std", "1", "1", "1", "--source", "folder", "--path", str(folder)]
    assert main(argv) == 0
    files = sorted((folder / "labels").glob("*.png"))
    assert [f.stem for f in files] == [f"{i:06d}" for i in range(6)]
    labels = np.asarray(Image.open(files[0]))
    assert labels.shape == (60, 80) and labels.dtype == np.uint8
    assert (labels[:, :36] == 0).all()  # red -> model class 0 -> wall (0)
    assert (labels[:, 60:] == 1).all()  # blue -> model class 2 -> floor (1)
    assert (labels[:, 44:52] == 255).all()  # grey -> model class 3 (first of the tie) -> not listed -> void
    # Existing files are kept unless --overwrite.
    files[0].write_bytes(b"")
    assert main(argv) == 0 and files[0].stat().st_size == 0
    assert main(argv + ["--overwrite"]) == 0 and files[0].stat().st_size > 0
    data = DataConfig(source="folder", path=str(folder), augment=None)
    sample = make_dataset(data, (0, -1, 1), H, W, train=False)[0]
    assert bool(sample["has_labels"])
    assert (sample["labels"][:, :40] == 0).all() and (sample["labels"][:, -20:] == 1).all()


def test_class_map_formats(tmp_path):
    cmap = ClassMap.from_yaml(class_map(tmp_path))
    ids = np.array([[0, 1, 2, 4, 300, -1]])
    assert cmap.apply(ids).tolist() == [[0, 255, 1, 7, 255, 255]]
    assert ClassMap.identity().apply(np.array([0, 39, 40, 255])).tolist() == [0, 39, 255, 255]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"classes": {1: "spaceship"}}))
    with pytest.raises(DataError, match="bad.yaml: class 1: 'spaceship' is not a NYU-40 class name"):
        ClassMap.from_yaml(bad)
    bad.write_text(yaml.safe_dump({"classes": {1: 40}}))
    with pytest.raises(DataError, match="outside 0..39"):
        ClassMap.from_yaml(bad)


def test_dynamic_model_needs_input_size(tmp_path, folder):
    path = tmp_path / "dyn.onnx"
    torch.onnx.export(ColourScores().eval(), (torch.zeros(1, 3, 32, 48),), str(path), input_names=["img"],
                      output_names=["out"], opset_version=17, dynamo=False,
                      dynamic_axes={"img": {2: "h", 3: "w"}, "out": {2: "h", 3: "w"}})
    argv = ["--model", str(path), "--class-map", "identity", "--source", "folder", "--path", str(folder),
            "--out-dir", str(tmp_path / "out")]
    assert main(argv) == 2  # no static size
    assert main(argv + ["--input-size", "16", "16", "--limit", "2"]) == 0
    assert len(list((tmp_path / "out").glob("*.png"))) == 2

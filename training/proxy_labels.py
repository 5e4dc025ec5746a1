"""``gam-depth-proxy-labels``: proxy semantic labels from any ONNX segmentation model.

Runs the model over every target frame of a data source (as the loader prepares it: undistorted
and cropped, before the resize to the network size) and writes ``<labels_dir>/<key>.png``: uint8
NYU-40 ids 0..39, 255 = void, at the prepared frame's size. The data loaders read these files
(and flip them with the images). Usage::

    python -m training.proxy_labels --model seg.onnx --class-map config/ade20k_to_nyu40.yaml \\
        --config config/train_nyu.yaml
    python -m training.proxy_labels --model seg.onnx --class-map identity --source folder --path data/seq

Model interface (options): one image input (``--input-name``, default the first input) of layout
NCHW, size from the model's static shape or ``--input-size H W``; the frame is resized bilinearly,
scaled to [0, ``--input-scale``] (1 or 255), normalised by ``--mean`` / ``--std`` (in that scale;
ImageNet's by default) and given in RGB (``--bgr`` for BGR). The output (``--output-name``, default
the first) is either logits / scores ``[1,C,h,w]`` (argmax over C) or class ids ``[1,h,w]`` / ``[h,w]``
(``--output-kind auto`` decides by rank); ids are resized to the frame by nearest neighbour.

Class map (``--class-map``): ``identity`` (the model already predicts NYU-40 ids 0..39; other ids
are void) or a YAML file::

    default: void        # ids not listed: void, or keep (id kept if it is 0..39)
    classes:             # model class id -> NYU-40 class name, project id 0..39 (NYU-40 id - 1) or void
      0: wall
      3: floor
      12: 4              # chair
      20: void
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from gam_depth_ros.classes import NUM_CLASSES, NYU40_CLASS_NAMES, VOID_LABEL
from gam_depth_ros.config_io import MAX_YAML_BYTES, ConfigError, parse_yaml, read_text_limited
from gam_depth_ros.inference.preprocessing import resize_rgb
from gam_depth_ros.onnx_files import UnsafeModelError, check_external_data
from training.data.cli_args import check_out_dir
from training.data.common import DataError, FrameDataset, resize_nearest

LOG = logging.getLogger("training.proxy_labels")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ClassMap:
    """Model class id -> NYU-40 id (0..39) or 255, as a look-up table."""

    def __init__(self, mapping: dict[int, int], keep_unlisted: bool) -> None:
        self.mapping, self.keep_unlisted = dict(mapping), keep_unlisted

    @classmethod
    def identity(cls) -> ClassMap:
        return cls({}, keep_unlisted=True)

    @classmethod
    def from_yaml(cls, path: str | Path) -> ClassMap:
        """Read the YAML format of the module docstring; errors name the file and the entry."""
        path = Path(path)
        try:
            data = parse_yaml(read_text_limited(path, MAX_YAML_BYTES, "class map"), str(path)) or {}
        except ConfigError as error:
            raise DataError(f"cannot read class map: {error}") from error
        if not isinstance(data, dict) or set(data) - {"default", "classes"}:
            raise DataError(f"{path}: expected a mapping with 'default' and 'classes'")
        default = str(data.get("default", "void"))
        if default not in ("void", "keep"):
            raise DataError(f"{path}: default must be 'void' or 'keep', got {default!r}")
        mapping = {}
        for source, target in (data.get("classes") or {}).items():
            try:
                mapping[int(source)] = _target_id(target)
            except (TypeError, ValueError) as error:
                raise DataError(f"{path}: class {source!r}: {error}") from error
        return cls(mapping, keep_unlisted=default == "keep")

    def lut(self, size: int) -> np.ndarray:
        """``[n]`` uint8 table for model ids 0..n-1 (n at least ``size`` and every listed id + 1)."""
        n = max(size, max(self.mapping, default=-1) + 1, NUM_CLASSES)
        table = np.full(n, VOID_LABEL, dtype=np.uint8)
        if self.keep_unlisted:
            table[:NUM_CLASSES] = np.arange(NUM_CLASSES, dtype=np.uint8)
        for source, target in self.mapping.items():
            if source >= 0:
                table[source] = target
        return table

    def apply(self, ids: np.ndarray) -> np.ndarray:
        """Map ``[h,w]`` integer ids; ids outside the table (or negative) become void."""
        ids = ids.astype(np.int64)
        table = self.lut(int(ids.max(initial=0)) + 1)
        out = table[np.clip(ids, 0, table.size - 1)]
        out[ids < 0] = VOID_LABEL
        return out


def _target_id(target) -> int:
    if isinstance(target, str):
        if target == "void":
            return VOID_LABEL
        if target not in NYU40_CLASS_NAMES:
            raise ValueError(f"{target!r} is not a NYU-40 class name (gam_depth_ros.classes) nor 'void'")
        return NYU40_CLASS_NAMES.index(target)
    value = int(target)
    if not 0 <= value < NUM_CLASSES and value != VOID_LABEL:
        raise ValueError(f"target id {value} outside 0..{NUM_CLASSES - 1} (and not 255)")
    return value


class OnnxSegmenter:
    """An ONNX segmentation model behind :meth:`predict` (see the module docstring for the options)."""

    def __init__(self, path: str | Path, input_name: str | None = None, output_name: str | None = None,
                 input_size: tuple[int, int] | None = None, input_scale: float = 1.0,
                 mean: tuple[float, ...] = IMAGENET_MEAN, std: tuple[float, ...] = IMAGENET_STD,
                 bgr: bool = False, output_kind: str = "auto", threads: int = 0) -> None:
        import onnxruntime as ort

        path = Path(path)
        if not path.is_file():
            raise DataError(f"{path}: segmentation model does not exist")
        try:  # before ONNX Runtime opens any file the model names
            check_external_data(path)
        except UnsafeModelError as error:
            raise DataError(str(error)) from error
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(0, int(threads))
        try:
            self.session = ort.InferenceSession(str(path), options, providers=ort.get_available_providers())
        except Exception as error:  # onnxruntime raises its own exception types
            raise DataError(f"{path}: ONNX Runtime cannot load the model: {error}") from error
        inputs = {i.name: i for i in self.session.get_inputs()}
        outputs = [o.name for o in self.session.get_outputs()]
        self.input_name = input_name or next(iter(inputs))
        self.output_name = output_name or outputs[0]
        if self.input_name not in inputs or self.output_name not in outputs:
            raise DataError(f"{path}: inputs {list(inputs)}, outputs {outputs}; asked for "
                            f"{self.input_name!r} -> {self.output_name!r}")
        shape = inputs[self.input_name].shape
        if input_size is None:
            if len(shape) != 4 or not all(isinstance(d, int) for d in shape[2:]):
                raise DataError(f"{path}: input {self.input_name!r} has no static size {shape}; give --input-size H W")
            input_size = (int(shape[2]), int(shape[3]))
        if output_kind not in ("auto", "logits", "ids"):
            raise DataError(f"output kind must be auto, logits or ids, got {output_kind!r}")
        self.input_size, self.output_kind, self.bgr = input_size, output_kind, bgr
        self.scale = float(input_scale)
        self.mean = np.asarray(mean, np.float32).reshape(1, 3, 1, 1)
        self.std = np.asarray(std, np.float32).reshape(1, 3, 1, 1)
        self.path = path

    def predict(self, rgb: np.ndarray) -> np.ndarray:
        """Model class ids ``[h,w]`` int64 of an ``[h,w,3]`` uint8 RGB frame, at the frame's size."""
        height, width = self.input_size
        x = resize_rgb(rgb, height, width).astype(np.float32).transpose(2, 0, 1)[None] * (self.scale / 255.0)
        if self.bgr:
            x = x[:, ::-1]
        x = np.ascontiguousarray((x - self.mean) / self.std, dtype=np.float32)
        out = np.asarray(self.session.run([self.output_name], {self.input_name: x})[0])
        kind = self.output_kind if self.output_kind != "auto" else ("logits" if out.ndim == 4 else "ids")
        if kind == "logits":
            if out.ndim != 4 or out.shape[0] != 1:
                raise DataError(f"{self.path}: logits output should be [1,C,h,w], got {out.shape}")
            ids = out[0].argmax(0)
        else:
            ids = out.reshape(out.shape[-2:]) if out.ndim in (2, 3) and out.size == np.prod(out.shape[-2:]) else None
            if ids is None:
                raise DataError(f"{self.path}: ids output should be [1,h,w] or [h,w], got {out.shape}")
        return resize_nearest(ids.astype(np.int64), *rgb.shape[:2])


def write_proxy_labels(dataset: FrameDataset, model, class_map: ClassMap,
                       out_dir: str | Path | None = None, overwrite: bool = False, limit: int = 0) -> int:
    """Write ``<out_dir>/<key>.png`` for every target frame of ``dataset``; returns how many were written.

    ``model`` has ``predict(rgb [h,w,3] uint8) -> ids [h,w]`` (:class:`OnnxSegmenter`, or the depth
    model's own head, :class:`training.self_labels.SelfSegmenter`).

    ``out_dir`` defaults to the dataset's ``labels_dir`` (where its loader looks). Existing files
    are kept unless ``overwrite``. Each target key is labelled once.
    """
    folder = Path(out_dir) if out_dir else dataset.labels_dir
    if folder is None:
        raise DataError("no output folder: give --out-dir")
    written = 0
    for index, path in dataset.side_files_to_write(folder, ".png", overwrite):
        if limit and written >= limit:
            break
        rgb, _ = dataset.target_frame(index)
        labels = class_map.apply(model.predict(rgb))
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(labels, mode="L").save(path)
        written += 1
        if written % 500 == 0:
            LOG.info("%d label images written (%d/%d samples)", written, index + 1, len(dataset))
    return written


def write_sequences_labels(parts: list[FrameDataset], model, class_map: ClassMap, out_dir: str | Path | None = None,
                           overwrite: bool = False, limit: int = 0) -> int:
    """:func:`write_proxy_labels` for each sequence into its own labels folder (``out_dir``: one sequence only)."""
    check_out_dir(parts, out_dir)
    return sum(write_proxy_labels(part, model, class_map, out_dir, overwrite, limit) for part in parts)


def main(argv: list[str] | None = None) -> int:
    from training.data.cli_args import add_dataset_arguments, dataset_from_args

    parser = argparse.ArgumentParser(prog="gam-depth-proxy-labels", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="ONNX segmentation model")
    parser.add_argument("--class-map", required=True, help="YAML class map, or 'identity' for NYU-40 models")
    parser.add_argument("--out-dir", help="output folder (default: the source's labels folder)")
    parser.add_argument("--input-name")
    parser.add_argument("--output-name")
    parser.add_argument("--input-size", nargs=2, type=int, metavar=("H", "W"))
    parser.add_argument("--input-scale", type=float, default=1.0, help="input value range [0, scale] (1 or 255)")
    parser.add_argument("--mean", nargs=3, type=float, default=IMAGENET_MEAN)
    parser.add_argument("--std", nargs=3, type=float, default=IMAGENET_STD)
    parser.add_argument("--bgr", action="store_true", help="the model takes BGR")
    parser.add_argument("--output-kind", choices=("auto", "logits", "ids"), default="auto")
    parser.add_argument("--overwrite", action="store_true", help="replace existing label files")
    parser.add_argument("--limit", type=int, default=0, help="stop after N label images (0 = all)")
    parser.add_argument("--threads", type=int, default=0, help="ONNX Runtime CPU threads (0 = default)")
    add_dataset_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        class_map = ClassMap.identity() if args.class_map == "identity" else ClassMap.from_yaml(args.class_map)
        model = OnnxSegmenter(args.model, args.input_name, args.output_name,
                              tuple(args.input_size) if args.input_size else None, args.input_scale,
                              tuple(args.mean), tuple(args.std), args.bgr, args.output_kind, args.threads)
        parts = dataset_from_args(args)
        count = write_sequences_labels(parts, model, class_map, args.out_dir, args.overwrite, args.limit)
    except DataError as error:
        LOG.error("error: %s", error)
        return 2
    LOG.info("wrote %d label images to %s", count, args.out_dir or ", ".join(str(p.labels_dir) for p in parts))
    return 0


if __name__ == "__main__":
    sys.exit(main())

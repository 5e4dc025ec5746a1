"""``gam-depth-build-engine``: exported ONNX -> cached TensorRT engine (FP32, FP16 or INT8).

::

    gam-depth-build-engine --onnx model.onnx --precision fp16
    gam-depth-build-engine --onnx model.onnx --precision int8 --calibration-images calib/
    gam-depth-build-engine --onnx model.onnx --precision int8 \\
        --calibration-bag robot_bag/ --image-topic /camera/color/image_raw
    gam-depth-build-engine --onnx model.onnx --precision fp16 --fp32-layers input-norm heads

(also ``python -m gam_depth_ros.inference.tensorrt_engine``). The engine is written beside the
ONNX (or in ``--cache-dir``; a read-only folder falls back to ``~/.cache/gam_depth_ros/engines``)
under a name holding the cache key, with a metadata JSON; see
:mod:`gam_depth_ros.inference.engine_cache`. An up-to-date engine is reused; a stale or
mismatched one (other TensorRT, GPU, precision, input shape, FP32 layers or a re-exported ONNX)
is rebuilt. The TensorRT backend calls :func:`ensure_engine` at start, so a node pointed at an
``.onnx`` builds its engine on the first start.

Build: ``trt.Builder`` -> network (TensorRT 10 networks are always explicit-batch, so no creation
flag) -> ``trt.OnnxParser`` -> builder config with a workspace memory-pool limit, the FP16 flag
(FP16 and INT8), the INT8 flag with an entropy calibrator (INT8), FP32 layer constraints, and a
timing cache kept beside the engines to speed up rebuilds -> ``build_serialized_network``.
"""

from __future__ import annotations

import argparse
import datetime
import logging
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from gam_depth_ros.checkpoint import file_sha256
from gam_depth_ros.inference.accelerators import cuda_available, tensorrt_available
from gam_depth_ros.inference.calibration import CalibrationBatches, CalibrationSource, calibration_cache_path
from gam_depth_ros.inference.engine_cache import (
    PRECISIONS,
    BuildEnvironment,
    EngineRecord,
    EngineSpec,
    atomic_write_bytes,
    default_folders,
    engine_path,
    find_cached_engine,
    read_record,
    writable_dir,
    write_record,
)
from gam_depth_ros.inference.layer_precision import (
    Fp32Selection,
    LayerInfo,
    normalise_selectors,
    select_fp32_layers,
)
from gam_depth_ros.metadata import MetadataError, read_metadata
from gam_depth_ros.onnx_files import UnsafeModelError, check_external_data

if TYPE_CHECKING:
    import tensorrt as trt

LOG = logging.getLogger("gam_depth_ros.tensorrt")
FIRST_BUILD_NOTE = (
    "The first build takes minutes (roughly 3-10 min on a Jetson Orin Nano or NX, longer with INT8 "
    "calibration); later starts load the cached engine in seconds"
)
INSTALL_HINT = "on Jetson install JetPack's python3-libnvinfer (see docs/jetson.md)"


class EngineBuildError(RuntimeError):
    """TensorRT is missing or the engine cannot be built; the message says why."""


def require_tensorrt() -> None:
    """Raise :class:`EngineBuildError` unless TensorRT >= 10 and a CUDA device are usable."""
    if not tensorrt_available():
        raise EngineBuildError(f"the tensorrt Python package is not installed; {INSTALL_HINT}")
    if not cuda_available():
        raise EngineBuildError("no CUDA device visible to torch (the TensorRT backend needs a CUDA build of torch)")
    import tensorrt as trt

    if int(trt.__version__.split(".")[0]) < 10:
        raise EngineBuildError(f"TensorRT {trt.__version__} found; gam_depth_ros needs TensorRT 10 or newer")


def current_environment(device_index: int = 0) -> BuildEnvironment:
    """TensorRT version, GPU name and compute capability of this machine's ``device_index``."""
    import tensorrt as trt
    import torch

    props = torch.cuda.get_device_properties(device_index)
    return BuildEnvironment(trt.__version__, props.name, (int(props.major), int(props.minor)))


def network_layers(network: trt.INetworkDefinition) -> list[LayerInfo]:
    """The parsed network as :class:`LayerInfo` records (topological order)."""
    layers = []
    for index in range(network.num_layers):
        layer = network.get_layer(index)
        inputs = tuple(t.name for t in (layer.get_input(i) for i in range(layer.num_inputs)) if t is not None)
        outputs = tuple(layer.get_output(i).name for i in range(layer.num_outputs))
        layers.append(LayerInfo(index, layer.name, layer.type.name, inputs, outputs))
    return layers


def apply_fp32_selection(network: trt.INetworkDefinition, selection: Fp32Selection) -> None:
    """Set FP32 compute precision and/or FP32 float outputs on the selected layers.

    Compute precision is set only on layers that read floating-point data (not, e.g., the cast
    of the argmax indices to uint8), output types only on floating-point outputs.
    """
    import tensorrt as trt

    floats = (trt.DataType.FLOAT, trt.DataType.HALF)

    def float_outputs_to_fp32(layer: trt.ILayer) -> None:
        for i in range(layer.num_outputs):
            if layer.get_output(i).dtype in floats:
                layer.set_output_type(i, trt.DataType.FLOAT)

    for index in selection.full:
        layer = network.get_layer(index)
        reads = (layer.get_input(i) for i in range(layer.num_inputs))
        if any(tensor is not None and tensor.dtype in floats for tensor in reads):
            layer.precision = trt.DataType.FLOAT
        float_outputs_to_fp32(layer)
    for index in selection.output_only:
        float_outputs_to_fp32(network.get_layer(index))
    names = ", ".join(network.get_layer(i).name for i in selection.full + selection.output_only)
    LOG.info("FP32 layers: %d in FP32, %d more with FP32 outputs: %s", len(selection.full),
             len(selection.output_only), names)


def _dims(dims: trt.Dims) -> tuple[int, ...]:
    return tuple(int(dims[i]) for i in range(len(dims)))


def _parse(
    builder: trt.Builder, logger: trt.ILogger, onnx_path: Path, spec: EngineSpec
) -> tuple[trt.INetworkDefinition, trt.OnnxParser]:
    """Parse the ONNX into a new network; the parser owns the weights, so keep it while building."""
    import tensorrt as trt

    try:  # before TensorRT's parser opens any file the model names
        check_external_data(onnx_path)
    except UnsafeModelError as error:
        raise EngineBuildError(str(error)) from error
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise EngineBuildError(f"{onnx_path}: TensorRT's ONNX parser failed: {errors}")
    shapes = {network.get_input(i).name: _dims(network.get_input(i).shape) for i in range(network.num_inputs)}
    if list(shapes.values()) != [spec.input_shape]:
        raise EngineBuildError(f"{onnx_path}: expected one input of shape {list(spec.input_shape)}, model has {shapes}")
    return network, parser


def build_serialized_engine(
    onnx_path: Path,
    spec: EngineSpec,
    calibration: CalibrationSource | None = None,
    calibration_table: Path | None = None,
    timing_cache: Path | None = None,
    device_index: int = 0,
) -> bytes:
    """Build the engine ``spec`` describes from ``onnx_path``; returns the serialized engine.

    ``calibration`` (images) and/or an existing ``calibration_table`` are needed for INT8.
    """
    import tensorrt as trt
    import torch

    from gam_depth_ros.inference.tensorrt_support import EntropyCalibrator, LoggingBridge

    logger = LoggingBridge()
    builder = trt.Builder(logger)
    network, _parser = _parse(builder, logger, onnx_path, spec)
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, spec.workspace_mib << 20)
    if spec.precision == "fp32":
        config.clear_flag(trt.BuilderFlag.TF32)  # fp32 means IEEE FP32: no TF32 tensor-core rounding
    if spec.precision in ("fp16", "int8"):
        if not builder.platform_has_fast_fp16:
            LOG.warning("this GPU has no fast FP16; the FP16 engine may not be faster than FP32")
        config.set_flag(trt.BuilderFlag.FP16)
    calibrator = None
    if spec.precision == "int8":
        if not builder.platform_has_fast_int8:
            LOG.warning("this GPU has no fast INT8; the INT8 engine may not be faster than FP16")
        table = calibration_table or calibration_cache_path(onnx_path, file_sha256(onnx_path), *spec.input_shape[2:])
        if calibration is None and not table.is_file():
            raise EngineBuildError(
                "INT8 needs calibration images: --calibration-images DIR or --calibration-bag BAG --image-topic T "
                f"(or an existing calibration table {table.name})"
            )
        images = calibration.images() if calibration is not None else iter(())
        batches = CalibrationBatches(images, spec.input_height, spec.input_width)
        # Given images always calibrate afresh (and replace the table); without, the table is used.
        calibrator = EntropyCalibrator(batches, table, torch.device("cuda", device_index),
                                       read_table=calibration is None)
        config.set_flag(trt.BuilderFlag.INT8)
        config.int8_calibrator = calibrator
    selection = select_fp32_layers(
        network_layers(network),
        [network.get_input(i).name for i in range(network.num_inputs)],
        [network.get_output(i).name for i in range(network.num_outputs)],
        spec.fp32_layers,
    )
    if selection and spec.precision != "fp32":
        apply_fp32_selection(network, selection)
        obey, prefer = trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS, trt.BuilderFlag.PREFER_PRECISION_CONSTRAINTS
        config.set_flag(obey if spec.obey_precision else prefer)
    cache = config.create_timing_cache(timing_cache.read_bytes() if timing_cache and timing_cache.is_file() else b"")
    config.set_timing_cache(cache, ignore_mismatch=False)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EngineBuildError(f"{onnx_path}: TensorRT could not build the engine (see the TensorRT errors above)")
    if timing_cache is not None:
        atomic_write_bytes(timing_cache, bytes(config.get_timing_cache().serialize()))
    return bytes(serialized)


def ensure_engine(
    onnx_path: str | Path,
    spec: EngineSpec,
    calibration: CalibrationSource | None = None,
    cache_dir: Path | None = None,
    env: BuildEnvironment | None = None,
    force: bool = False,
    device_index: int = 0,
) -> Path:
    """Path of an up-to-date engine for ``onnx_path`` and ``spec``, building it when needed.

    Looks in ``cache_dir``, or beside the ONNX and then in the user cache folder. A missing, stale
    or mismatched engine is (re)built, with a log line giving the reason; ``force`` always builds.
    """
    onnx_path = Path(onnx_path)
    if not onnx_path.is_file():
        raise EngineBuildError(f"{onnx_path}: ONNX model file does not exist")
    try:
        metadata = read_metadata(onnx_path)
    except MetadataError as error:
        raise EngineBuildError(str(error)) from error
    require_tensorrt()
    env = env or current_environment(device_index)
    onnx_sha256 = file_sha256(onnx_path)
    cached, reasons = find_cached_engine(onnx_path, spec, env, onnx_sha256, default_folders(onnx_path, cache_dir))
    if cached is not None and calibration is not None and read_record(cached).calibration != calibration.describe():
        cached, reasons = None, ["calibrating with other images"]
    if cached is not None and not force:
        LOG.info("using cached TensorRT engine %s", cached)
        return cached
    target = engine_path(onnx_path, spec, env, cache_dir or writable_dir(onnx_path.parent))
    LOG.warning("building TensorRT engine %s (%s). %s.", target, "forced" if force else "; ".join(reasons),
                FIRST_BUILD_NOTE)
    table = calibration_cache_path(onnx_path, onnx_sha256, spec.input_height, spec.input_width, target.parent)
    calibration_record = None
    if spec.precision == "int8":
        calibration_record = calibration.describe() if calibration else {"kind": "table", "path": str(table)}
    timing = target.parent / f"{onnx_path.stem}.trt{env.tensorrt_version}.{env.gpu_slug}.{env.sm}.timing-cache"
    start = time.perf_counter()
    data = build_serialized_engine(onnx_path, spec, calibration, table, timing, device_index)
    seconds = time.perf_counter() - start
    atomic_write_bytes(target, data)
    write_record(target, EngineRecord(
        tensorrt_version=env.tensorrt_version, gpu_name=env.gpu_name, compute_capability=env.compute_capability,
        precision=spec.precision, input_shape=spec.input_shape, fp32_layers=spec.fp32_layers,
        obey_precision=spec.obey_precision, onnx_file=onnx_path.name, onnx_sha256=onnx_sha256,
        engine_bytes=len(data), model=asdict(metadata),
        calibration=calibration_record,
        build_seconds=round(seconds, 1), built_at=datetime.datetime.now(datetime.timezone.utc).isoformat(),
    ))
    LOG.warning("TensorRT engine built in %.0f s: %s", seconds, target)
    return target


def _arguments() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gam-depth-build-engine", description=__doc__.splitlines()[0])
    parser.add_argument("--onnx", required=True, type=Path, help="exported model (its .json metadata beside it)")
    parser.add_argument("--precision", choices=PRECISIONS, default="fp16", help="engine precision (default fp16)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--calibration-images", type=Path, metavar="DIR", help="INT8: folder of calibration images")
    source.add_argument("--calibration-bag", type=Path, metavar="BAG", help="INT8: rosbag2 folder (sqlite3 or mcap)")
    parser.add_argument("--image-topic", metavar="T", help="INT8 with --calibration-bag: Image/CompressedImage topic")
    parser.add_argument("--calibration-limit", type=int, default=500, metavar="N",
                        help="INT8: at most N images, spread evenly (default 500)")
    parser.add_argument("--fp32-layers", nargs="+", metavar="SELECTOR",
                        help="keep layers in FP32: input-norm, heads, none, or name patterns "
                             "(default: none for fp16, 'input-norm heads' for int8)")
    parser.add_argument("--obey-precision", action="store_true",
                        help="fail if an FP32 layer has no FP32 kernel (default: prefer, fall back with a warning)")
    parser.add_argument("--workspace-mib", type=int, default=1024, help="builder workspace limit in MiB (default 1024)")
    parser.add_argument("--cache-dir", type=Path, help="folder for the engine (default: beside the ONNX)")
    parser.add_argument("--device", type=int, default=0, help="CUDA device index (default 0)")
    parser.add_argument("--force", action="store_true", help="rebuild even if an up-to-date engine exists")
    parser.add_argument("--verbose", action="store_true", help="show TensorRT's own messages")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _arguments()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s")
    if args.calibration_bag is not None and not args.image_topic:
        parser.error("--calibration-bag needs --image-topic")
    calibration = None
    if args.calibration_images is not None or args.calibration_bag is not None:
        if args.precision != "int8":
            parser.error("calibration images are only used with --precision int8")
        topic = args.image_topic if args.calibration_bag is not None else None
        calibration = CalibrationSource(args.calibration_images or args.calibration_bag, topic, args.calibration_limit)
    try:
        metadata = read_metadata(args.onnx)
        spec = EngineSpec(
            args.precision, metadata.input_height, metadata.input_width,
            normalise_selectors(args.fp32_layers, args.precision), args.obey_precision, args.workspace_mib,
        )
        path = ensure_engine(args.onnx, spec, calibration, args.cache_dir, force=args.force, device_index=args.device)
    except (EngineBuildError, MetadataError, ValueError) as error:
        LOG.error("engine build failed: %s", error)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())

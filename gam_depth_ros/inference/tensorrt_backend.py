"""TensorRT backend: runs a serialized engine (built from the ONNX at first start and cached).

TensorRT 10 execution: every I/O tensor is found by name (``num_io_tensors``,
``get_tensor_name``, ``get_tensor_mode``, ``get_tensor_shape``, ``get_tensor_dtype``), bound once
to a device buffer with ``set_tensor_address``, and each frame is one ``execute_async_v3`` on a
CUDA stream.

Device memory, streams and pinned host memory come from torch CUDA tensors rather than
cuda-python (or pycuda). torch is already needed to export the model; it gives device buffers
whose addresses TensorRT can use (``tensor.data_ptr()``), ``torch.cuda.Stream`` (whose
``cuda_stream`` handle ``execute_async_v3`` takes), events for timing, pinned host tensors for
asynchronous copies, and the resize/argmax ops of the GPU pre/post-processing
(:mod:`~gam_depth_ros.inference.gpu_processing`) on the same stream, with no extra dependency.
cuda-python (``cuda.cudart.cudaMallocAsync`` / ``cudaMemcpyAsync`` / ``cudaStreamCreate``) would
avoid torch on a robot (NVIDIA's Jetson torch wheel is large) but needs hand-written kernels or
numpy round trips for the resizes; swapping it in only touches this module.

With CUDA present, :meth:`TensorRTBackend.infer` keeps the whole frame on the GPU: the uint8
camera image is copied once (pinned buffer), resized and scaled into the engine's input buffer,
the engine runs, disparity and labels are resized to the output size and copied back once.
:meth:`run_network` (numpy in, numpy out) serves the shared CPU pre-processing path and tests.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import tensorrt as trt
import torch

from gam_depth_ros.inference.base import InferenceBackend, ModelLoadError, Prediction
from gam_depth_ros.inference.engine_cache import (
    ENGINE_SUFFIXES,
    EngineCacheError,
    EngineSpec,
    environment_problems,
    read_record,
)
from gam_depth_ros.inference.gpu_processing import GpuProcessor
from gam_depth_ros.inference.layer_precision import normalise_selectors
from gam_depth_ros.inference.preprocessing import as_rgb
from gam_depth_ros.inference.tensorrt_engine import (
    EngineBuildError,
    current_environment,
    ensure_engine,
    require_tensorrt,
)
from gam_depth_ros.inference.tensorrt_support import LoggingBridge
from gam_depth_ros.metadata import MetadataError, ModelMetadata, read_metadata

LOG = logging.getLogger("gam_depth_ros.tensorrt")

_TORCH_DTYPES = {
    trt.DataType.FLOAT: torch.float32,
    trt.DataType.HALF: torch.float16,
    trt.DataType.INT8: torch.int8,
    trt.DataType.INT32: torch.int32,
    trt.DataType.INT64: torch.int64,
    trt.DataType.BOOL: torch.bool,
    trt.DataType.UINT8: torch.uint8,
}


class TensorRTBackend(InferenceBackend):
    """Runs the network with TensorRT on a CUDA GPU.

    Parameters
    ----------
    model_path:
        An ``.onnx`` (metadata JSON beside it; the engine is built or reused, see
        :func:`~gam_depth_ros.inference.tensorrt_engine.ensure_engine`) or an ``.engine``/``.plan``
        (its ``<name>.json`` engine metadata beside it, or, for engines built elsewhere, e.g. with
        ``trtexec``, the model metadata ``<stem>.json``).
    precision:
        Engine precision when building from an ONNX (``fp16`` default, ``fp32``; ``int8`` needs a
        calibration table from ``gam-depth-build-engine`` first).
    fp32_layers:
        FP32 layer selectors when building (None: the precision's defaults).
    device_index:
        CUDA device.
    gpu_processing:
        Resize and scale on the GPU in :meth:`infer` (default); False uses the numpy path.
    cache_dir:
        Where engines are cached (default beside the ONNX).
    """

    name = "tensorrt"

    def __init__(
        self,
        model_path: str | Path,
        precision: str = "fp16",
        fp32_layers: tuple[str, ...] | None = None,
        device_index: int = 0,
        gpu_processing: bool = True,
        cache_dir: Path | None = None,
    ) -> None:
        model_path = Path(model_path)
        if not model_path.is_file():
            raise ModelLoadError(f"{model_path}: model file does not exist")
        try:
            require_tensorrt()
            engine_file, metadata = self._engine_for(model_path, precision, fp32_layers, device_index, cache_dir)
        except (EngineBuildError, MetadataError, EngineCacheError, ValueError) as error:
            raise ModelLoadError(f"{model_path}: {error}") from error
        self._device = torch.device("cuda", device_index)
        torch.cuda.set_device(self._device)
        self._logger = LoggingBridge()
        self._runtime = trt.Runtime(self._logger)
        self._engine = self._runtime.deserialize_cuda_engine(engine_file.read_bytes())
        if self._engine is None:
            raise ModelLoadError(f"{engine_file}: TensorRT cannot deserialize the engine (see the TensorRT errors)")
        self._context = self._engine.create_execution_context()
        self._stream = torch.cuda.Stream(self._device)
        self._buffers = self._bind(engine_file, metadata)
        self._input = self._buffers[metadata.input_name]
        self._disparity = self._buffers[metadata.disparity_output]
        self._labels = self._buffers[metadata.semantic_output]
        self._processor = GpuProcessor(self._device, self._stream) if gpu_processing else None
        self._start = torch.cuda.Event(enable_timing=True)
        self._end = torch.cuda.Event(enable_timing=True)
        super().__init__(metadata, device=f"TensorRT {trt.__version__} on {torch.cuda.get_device_name(self._device)}")
        self.engine_path = engine_file

    @staticmethod
    def _engine_for(
        model_path: Path,
        precision: str,
        fp32_layers: tuple[str, ...] | None,
        device_index: int,
        cache_dir: Path | None,
    ) -> tuple[Path, ModelMetadata]:
        """The engine file to load and the model metadata, building the engine when needed."""
        if model_path.suffix not in ENGINE_SUFFIXES:
            metadata = read_metadata(model_path)
            spec = EngineSpec(precision, metadata.input_height, metadata.input_width,
                              normalise_selectors(fp32_layers, precision))
            return ensure_engine(model_path, spec, cache_dir=cache_dir, device_index=device_index), metadata
        try:
            record = read_record(model_path)
        except FileNotFoundError:
            LOG.warning("%s has no engine metadata; cannot check that it was built for this TensorRT and GPU",
                        model_path)
            return model_path, read_metadata(model_path)
        problems = environment_problems(record, current_environment(device_index))
        if problems:
            raise EngineBuildError(
                f"engine cannot run here ({'; '.join(problems)}); rebuild it from the ONNX with "
                f"gam-depth-build-engine --onnx {record.onnx_file} --precision {record.precision}, "
                "or give the .onnx as model_path to build it at start"
            )
        return model_path, record.model_metadata()

    def _bind(self, engine_file: Path, metadata: ModelMetadata) -> dict[str, torch.Tensor]:
        """One device buffer per I/O tensor, bound by name; shapes and names checked against the metadata."""
        expected = {
            metadata.input_name: (1, 3, metadata.input_height, metadata.input_width),
            metadata.disparity_output: (1, 1, metadata.input_height, metadata.input_width),
            metadata.semantic_output: (1, metadata.input_height, metadata.input_width),
        }
        buffers: dict[str, torch.Tensor] = {}
        for index in range(self._engine.num_io_tensors):
            name = self._engine.get_tensor_name(index)
            dims = self._engine.get_tensor_shape(name)
            shape = tuple(int(dims[i]) for i in range(len(dims)))
            dtype = self._engine.get_tensor_dtype(name)
            if any(d < 0 for d in shape):
                raise ModelLoadError(f"{engine_file}: tensor {name!r} has a dynamic shape {shape}; use static shapes")
            if name in expected and shape != expected[name]:
                raise ModelLoadError(f"{engine_file}: tensor {name!r} is {list(shape)}, metadata says "
                                     f"{list(expected[name])}")
            if dtype not in _TORCH_DTYPES:
                raise ModelLoadError(f"{engine_file}: tensor {name!r} has unsupported type {dtype}")
            mode = self._engine.get_tensor_mode(name)
            if mode == trt.TensorIOMode.INPUT and name != metadata.input_name:
                raise ModelLoadError(f"{engine_file}: unexpected input {name!r} (metadata: {metadata.input_name!r})")
            buffers[name] = torch.empty(shape, dtype=_TORCH_DTYPES[dtype], device=self._device)
            if not self._context.set_tensor_address(name, buffers[name].data_ptr()):
                raise ModelLoadError(f"{engine_file}: TensorRT refused the buffer of {name!r}")
        missing = set(expected) - set(buffers)
        if missing:
            raise ModelLoadError(f"{engine_file}: missing tensors {sorted(missing)}; engine has {sorted(buffers)}")
        return buffers

    def _execute(self) -> None:
        """Queue the engine on the stream, between two timing events."""
        self._start.record(self._stream)
        if not self._context.execute_async_v3(self._stream.cuda_stream):
            raise RuntimeError("TensorRT execute_async_v3 failed (see the TensorRT errors)")
        self._end.record(self._stream)

    def _network_seconds(self) -> float:
        """GPU time of the last :meth:`_execute` (waits for it)."""
        self._end.synchronize()
        return self._start.elapsed_time(self._end) / 1000.0

    def run_network(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with torch.cuda.stream(self._stream):
            self._input.copy_(torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)))
            self._execute()
            disparity = self._disparity[0, 0].to("cpu", torch.float32)
            labels = self._labels[0].to("cpu", torch.uint8)
        self._stream.synchronize()
        return disparity.numpy(), labels.numpy()

    def infer(self, image: np.ndarray, output_size: tuple[int, int] | None = None) -> Prediction:
        """As :meth:`InferenceBackend.infer`, with the pre/post-processing on the GPU."""
        if self._processor is None:
            return super().infer(image, output_size)
        rgb = as_rgb(image)
        out_size = output_size if output_size is not None else (rgb.shape[0], rgb.shape[1])
        height, width = self.input_size
        with torch.cuda.stream(self._stream):
            self._input.copy_(self._processor.preprocess(rgb, height, width))
            self._execute()
        depth, labels = self._processor.postprocess(
            self._disparity[0, 0], self._labels[0], out_size, self.metadata.min_depth, self.metadata.max_depth
        )
        return Prediction(depth=depth, labels=labels, inference_s=self._network_seconds())

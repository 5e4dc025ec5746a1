"""ONNX Runtime backend: TensorRT, CUDA or CPU execution providers, best first.

On a Jetson with ``onnxruntime-gpu`` (JetPack builds from NVIDIA / the Jetson Zoo; the PyPI
wheel has no Jetson build) the TensorRT and CUDA execution providers are available:

- TensorRT EP: builds a TensorRT engine for the graph the first time a session is created
  (minutes on a Jetson), then loads it from the engine cache ``<model>_ort_trt_cache/`` beside
  the model (``~/.cache/gam_depth_ros/engines/`` if that folder is read-only); a timing cache in
  the same folder speeds up rebuilds. Delete the folder after upgrading JetPack, TensorRT or
  onnxruntime-gpu, or after re-exporting the model under the same name: unlike
  ``gam-depth-build-engine``'s cache, this one is keyed by ONNX Runtime and may reuse or fail on
  an engine built by another version. FP16 is on by default.
- CUDA EP: cuDNN kernels, for nodes TensorRT does not take; the memory arena grows only by what
  is requested (Jetson shares its DRAM between CPU and GPU).
- CPU EP: always last, as a fallback.

The options used are accepted by onnxruntime-gpu 1.17 and newer (1.18+ for TensorRT 10).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from gam_depth_ros.inference.base import InferenceBackend, ModelLoadError
from gam_depth_ros.inference.engine_cache import writable_dir
from gam_depth_ros.metadata import MetadataError, read_metadata
from gam_depth_ros.onnx_files import UnsafeModelError, check_external_data

#: Preferred execution providers, fastest first; only those available are requested.
PROVIDER_PREFERENCE = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")


def tensorrt_provider_options(
    cache: Path, fp16: bool = True, device_id: int = 0, workspace_mib: int = 1024
) -> dict[str, Any]:
    """TensorRT execution provider options: engine and timing caches in ``cache``, FP16, workspace."""
    return {
        "device_id": device_id,
        "trt_engine_cache_enable": True,
        "trt_engine_cache_path": str(cache),
        "trt_timing_cache_enable": True,
        "trt_timing_cache_path": str(cache),
        "trt_fp16_enable": fp16,
        "trt_max_workspace_size": workspace_mib << 20,
    }


def cuda_provider_options(device_id: int = 0) -> dict[str, Any]:
    """CUDA execution provider options: device, arena grown by requested sizes only."""
    return {"device_id": device_id, "arena_extend_strategy": "kSameAsRequested"}


def select_providers(
    available: list[str],
    model_path: Path,
    cache_dir: Path | None = None,
    fp16: bool = True,
    device_id: int = 0,
    workspace_mib: int = 1024,
) -> list:
    """Provider list for ``InferenceSession`` in preference order, with options.

    TensorRT caches its engines (built at first start, which takes minutes) in ``cache_dir``,
    default a folder beside the model; CPU is always last as a fallback.

    Parameters
    ----------
    available:
        ``onnxruntime.get_available_providers()``.
    model_path:
        The model; the default cache folder is ``<stem>_ort_trt_cache`` beside it.
    cache_dir:
        Engine and timing cache folder for the TensorRT EP.
    fp16:
        Let the TensorRT EP use FP16 kernels.
    device_id:
        CUDA device of the TensorRT and CUDA EPs.
    workspace_mib:
        TensorRT builder workspace limit.
    """
    providers: list = []
    for name in PROVIDER_PREFERENCE:
        if name not in available:
            continue
        if name == "TensorrtExecutionProvider":
            # A model in a read-only folder caches its engines in the user cache folder instead.
            cache = cache_dir or writable_dir(model_path.parent) / f"{model_path.stem}_ort_trt_cache"
            cache.mkdir(parents=True, exist_ok=True)
            providers.append((name, tensorrt_provider_options(cache, fp16, device_id, workspace_mib)))
        elif name == "CUDAExecutionProvider":
            providers.append((name, cuda_provider_options(device_id)))
        else:
            providers.append(name)
    if "CPUExecutionProvider" not in providers:
        providers.append("CPUExecutionProvider")
    return providers


class OnnxRuntimeBackend(InferenceBackend):
    """Runs an exported ``.onnx`` model (with its metadata JSON) in ONNX Runtime.

    Parameters
    ----------
    model_path:
        The ``.onnx`` file; ``<stem>.json`` must lie beside it.
    threads:
        Intra-op threads for the CPU provider; 0 lets ONNX Runtime decide.
    providers:
        Explicit provider names, overriding the automatic TensorRT > CUDA > CPU choice.
    """

    name = "onnxruntime"

    def __init__(self, model_path: str | Path, threads: int = 0, providers: list[str] | None = None):
        import onnxruntime as ort

        model_path = Path(model_path)
        if not model_path.is_file():
            raise ModelLoadError(f"{model_path}: ONNX model file does not exist")
        try:
            metadata = read_metadata(model_path)
        except MetadataError as error:
            raise ModelLoadError(str(error)) from error
        try:  # before ONNX Runtime opens any file the model names
            check_external_data(model_path)
        except UnsafeModelError as error:
            raise ModelLoadError(str(error)) from error
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(0, int(threads))
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        chosen = providers or select_providers(ort.get_available_providers(), model_path)
        try:
            self.session = ort.InferenceSession(str(model_path), options, providers=chosen)
        except Exception as error:  # ORT raises its own Fail/InvalidGraph/NoSuchFile types
            raise ModelLoadError(f"{model_path}: ONNX Runtime cannot load the model: {error}") from error
        self._check_signature(model_path, metadata)
        super().__init__(metadata, device=self.session.get_providers()[0])
        self._outputs = [metadata.disparity_output, metadata.semantic_output]

    def _check_signature(self, model_path: Path, metadata) -> None:
        inputs = {i.name: i.shape for i in self.session.get_inputs()}
        outputs = {o.name for o in self.session.get_outputs()}
        expected_shape = [1, 3, metadata.input_height, metadata.input_width]
        if inputs.get(metadata.input_name) != expected_shape:
            raise ModelLoadError(
                f"{model_path}: input {metadata.input_name!r} should be {expected_shape}, model has {inputs}"
            )
        missing = {metadata.disparity_output, metadata.semantic_output} - outputs
        if missing:
            raise ModelLoadError(f"{model_path}: missing outputs {sorted(missing)}; model has {sorted(outputs)}")

    def run_network(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        disparity, labels = self.session.run(self._outputs, {self.metadata.input_name: batch})
        return disparity[0, 0], labels[0].astype(np.uint8, copy=False)

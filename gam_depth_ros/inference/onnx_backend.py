"""ONNX Runtime backend: TensorRT, CUDA or CPU execution providers, best first."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gam_depth_ros.inference.base import InferenceBackend, ModelLoadError
from gam_depth_ros.metadata import MetadataError, read_metadata

#: Preferred execution providers, fastest first; only those available are requested.
PROVIDER_PREFERENCE = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")


def select_providers(available: list[str], model_path: Path, cache_dir: Path | None = None) -> list:
    """Provider list for ``InferenceSession`` in preference order, with options.

    TensorRT caches its engines (built at first start, which takes minutes) in ``cache_dir``,
    default a folder beside the model; CPU is always last as a fallback.
    """
    cache = cache_dir or model_path.parent / f"{model_path.stem}_ort_trt_cache"
    providers: list = []
    for name in PROVIDER_PREFERENCE:
        if name not in available:
            continue
        if name == "TensorrtExecutionProvider":
            providers.append(
                (name, {"trt_engine_cache_enable": True, "trt_engine_cache_path": str(cache),
                        "trt_fp16_enable": True})
            )
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

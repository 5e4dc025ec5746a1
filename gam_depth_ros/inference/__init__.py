"""Inference backends behind one interface. Frameworks are imported only when a backend is made.

Use :func:`create_backend`; ``auto`` picks by file type and availability:
``.onnx`` -> TensorRT when the ``tensorrt`` package and a CUDA device are there (the engine is
built at first start and cached), else ONNX Runtime (TensorRT, CUDA, CPU providers, best first);
``.engine``/``.plan`` -> TensorRT; ``.pt``/``.pth``/``.safetensors`` -> torch.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from gam_depth_ros.inference.accelerators import tensorrt_usable
from gam_depth_ros.inference.base import InferenceBackend, ModelLoadError, Prediction
from gam_depth_ros.inference.engine_cache import ENGINE_SUFFIXES

BACKENDS = ("auto", "onnxruntime", "tensorrt", "torch")
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt", ".safetensors")

__all__ = ["BACKENDS", "InferenceBackend", "ModelLoadError", "Prediction", "create_backend", "resolve_backend"]


def resolve_backend(name: str, model_path: str | Path) -> str:
    """The concrete backend ``name`` means for ``model_path`` (``auto`` resolved)."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose one of {BACKENDS}")
    suffix = Path(model_path).suffix
    if name != "auto":
        return name
    if suffix in ENGINE_SUFFIXES:
        if not tensorrt_usable():
            raise ModelLoadError(
                f"{model_path}: cannot pick a backend for {suffix!r}: a TensorRT engine needs the tensorrt "
                "package and a CUDA GPU visible to torch (see docs/jetson.md)"
            )
        return "tensorrt"
    if suffix == ".onnx":
        if tensorrt_usable():
            return "tensorrt"
        if importlib.util.find_spec("onnxruntime") is None:
            raise ModelLoadError(f"{model_path}: an .onnx model needs onnxruntime, which is not installed")
        return "onnxruntime"
    if suffix in CHECKPOINT_SUFFIXES:
        return "torch"
    raise ModelLoadError(
        f"{model_path}: cannot pick a backend for {suffix or 'a file without suffix'!r} "
        f"(expected .onnx, {ENGINE_SUFFIXES} or one of {CHECKPOINT_SUFFIXES})"
    )


def create_backend(name: str, model_path: str | Path, threads: int = 0) -> InferenceBackend:
    """Make the backend ``name`` (``auto``, ``onnxruntime``, ``tensorrt``, ``torch``) for ``model_path``.

    ``threads`` applies to the CPU backends; TensorRT builds an FP16 engine from an ``.onnx``
    (other precisions: build with ``gam-depth-build-engine`` and pass the ``.engine``).

    Raises
    ------
    ModelLoadError
        If the file is missing, unreadable or of the wrong kind; the message names it.
    """
    kind = resolve_backend(name, model_path)
    if kind == "onnxruntime":
        from gam_depth_ros.inference.onnx_backend import OnnxRuntimeBackend

        return OnnxRuntimeBackend(model_path, threads=threads)
    if kind == "tensorrt":
        if not tensorrt_usable():
            raise ModelLoadError(f"{model_path}: the tensorrt backend needs the tensorrt package and a CUDA GPU")
        from gam_depth_ros.inference.tensorrt_backend import TensorRTBackend

        return TensorRTBackend(model_path)
    # A robot often has no torch (ROS 2 Humble's apt has none): a ModelLoadError, not an ImportError.
    if importlib.util.find_spec("torch") is None:
        raise ModelLoadError(
            f"{model_path}: the torch backend needs the torch package, which is not installed "
            "(export the checkpoint to .onnx for onnxruntime or tensorrt)"
        )
    from gam_depth_ros.inference.torch_backend import TorchBackend

    return TorchBackend(model_path, threads=threads)

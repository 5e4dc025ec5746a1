"""Inference backends behind one interface. Frameworks are imported only when a backend is made.

Use :func:`create_backend`; ``auto`` picks by file type and availability:
``.onnx`` -> ONNX Runtime (TensorRT, CUDA, CPU providers, best first); ``.pt``/``.pth``/
``.safetensors`` -> torch.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from gam_depth_ros.inference.base import InferenceBackend, ModelLoadError, Prediction

BACKENDS = ("auto", "onnxruntime", "torch")
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt", ".safetensors")

__all__ = ["BACKENDS", "InferenceBackend", "ModelLoadError", "Prediction", "create_backend", "resolve_backend"]


def resolve_backend(name: str, model_path: str | Path) -> str:
    """The concrete backend ``name`` means for ``model_path`` (``auto`` resolved)."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose one of {BACKENDS}")
    suffix = Path(model_path).suffix
    if name != "auto":
        return name
    if suffix == ".onnx":
        if importlib.util.find_spec("onnxruntime") is None:
            raise ModelLoadError(f"{model_path}: an .onnx model needs onnxruntime, which is not installed")
        return "onnxruntime"
    if suffix in CHECKPOINT_SUFFIXES:
        return "torch"
    raise ModelLoadError(
        f"{model_path}: cannot pick a backend for {suffix or 'a file without suffix'!r} "
        f"(expected .onnx or one of {CHECKPOINT_SUFFIXES})"
    )


def create_backend(name: str, model_path: str | Path, threads: int = 0) -> InferenceBackend:
    """Make the backend ``name`` (``auto``, ``onnxruntime``, ``torch``) for ``model_path``.

    Raises
    ------
    ModelLoadError
        If the file is missing, unreadable or of the wrong kind; the message names it.
    """
    kind = resolve_backend(name, model_path)
    if kind == "onnxruntime":
        from gam_depth_ros.inference.onnx_backend import OnnxRuntimeBackend

        return OnnxRuntimeBackend(model_path, threads=threads)
    from gam_depth_ros.inference.torch_backend import TorchBackend

    return TorchBackend(model_path, threads=threads)

"""Is TensorRT / CUDA usable here? Cheap checks that import nothing heavy unless needed."""

from __future__ import annotations

import importlib.util


def tensorrt_available() -> bool:
    """True when the real ``tensorrt`` Python package is installed.

    ``tensorrt-stubs`` (type stubs for mypy) leaves a ``tensorrt`` folder holding only ``.pyi``
    files, which Python imports as an empty namespace package; that does not count. The real
    package (JetPack's ``python3-libnvinfer`` or NVIDIA's wheel) has an ``__init__.py``.
    """
    try:
        spec = importlib.util.find_spec("tensorrt")
    except (ImportError, ValueError):
        return False
    return spec is not None and spec.origin not in (None, "namespace")


def cuda_available() -> bool:
    """True when torch is installed and sees a CUDA device (the TensorRT backend's buffers need it)."""
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return bool(torch.cuda.is_available())


def tensorrt_usable() -> bool:
    """TensorRT and a CUDA device through torch: what the ``tensorrt`` backend needs."""
    return tensorrt_available() and cuda_available()

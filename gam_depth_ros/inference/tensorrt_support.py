"""TensorRT callback classes: a logger that forwards to ``logging``, and the INT8 calibrator.

Imports ``tensorrt`` and ``torch`` at module level: import this module only where TensorRT is
known to be installed (:mod:`gam_depth_ros.inference.tensorrt_engine` and
:mod:`gam_depth_ros.inference.tensorrt_backend` do so lazily).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import tensorrt as trt
import torch

from gam_depth_ros.inference.calibration import CalibrationBatches
from gam_depth_ros.inference.engine_cache import atomic_write_bytes

if TYPE_CHECKING:
    from typing_extensions import Buffer

LOG = logging.getLogger("gam_depth_ros.tensorrt")

_LEVELS = {
    trt.ILogger.Severity.INTERNAL_ERROR: logging.CRITICAL,
    trt.ILogger.Severity.ERROR: logging.ERROR,
    trt.ILogger.Severity.WARNING: logging.WARNING,
    trt.ILogger.Severity.INFO: logging.INFO,
    trt.ILogger.Severity.VERBOSE: logging.DEBUG,
}


class LoggingBridge(trt.ILogger):
    """TensorRT messages into the ``gam_depth_ros.tensorrt`` logger.

    TensorRT's INFO messages (one per build phase and many per engine load) go to DEBUG; its
    warnings and errors keep their level.
    """

    def __init__(self) -> None:
        trt.ILogger.__init__(self)

    def log(self, severity: trt.ILogger.Severity, msg: str) -> None:
        level = _LEVELS.get(severity, logging.INFO)
        LOG.log(logging.DEBUG if level == logging.INFO else level, "TensorRT: %s", msg)


class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
    """INT8 entropy calibration (TensorRT's recommended calibrator) over :class:`CalibrationBatches`.

    TensorRT calls :meth:`get_batch` from the builder until it returns an empty list; each batch
    goes from a pinned host buffer into one device buffer that lives as long as the calibrator.
    The resulting table is written to ``cache_path``; a later build with ``read_table`` uses it
    instead of images, so a rebuild (another TensorRT version, other FP32 layers) does not need
    the images again.

    Implicit-quantisation calibrators are deprecated since TensorRT 10.1 in favour of explicit
    (Q/DQ) quantisation but still work in TensorRT 10.x; the builder logs a deprecation warning.

    Parameters
    ----------
    batches:
        Network-input batches; ``batches.shape`` must equal the engine input's shape.
    cache_path:
        Calibration table file (read if present, written after calibration).
    device:
        CUDA device of the engine.
    read_table:
        Offer an existing table at ``cache_path`` to TensorRT (which then skips the images).
    """

    def __init__(
        self, batches: CalibrationBatches, cache_path: Path, device: torch.device, read_table: bool = True
    ) -> None:
        trt.IInt8EntropyCalibrator2.__init__(self)
        self._batches = batches
        self._iterator: Iterator[np.ndarray] | None = None
        self.cache_path = cache_path
        self.read_table = read_table
        self._device_input = torch.empty(batches.shape, dtype=torch.float32, device=device)
        self._host_input = torch.empty(batches.shape, dtype=torch.float32, pin_memory=True)
        self.batches_served = 0

    def get_batch_size(self) -> int:
        return self._batches.batch_size

    def get_batch(self, names: list[str]) -> list[int]:
        if len(names) != 1:
            raise RuntimeError(f"INT8 calibration feeds one input tensor, the network has {names}")
        if self._iterator is None:
            self._iterator = iter(self._batches)
        batch = next(self._iterator, None)
        if batch is None:
            LOG.info("INT8 calibration: %d batch(es) used", self.batches_served)
            return []
        self._host_input.numpy()[...] = batch
        self._device_input.copy_(self._host_input)  # synchronous: the buffer is ready when we return
        self.batches_served += 1
        if self.batches_served % 50 == 0:
            LOG.info("INT8 calibration: %d batch(es) so far", self.batches_served)
        return [int(self._device_input.data_ptr())]

    # The stubs declare a Buffer return; TensorRT's documentation (and binding) take None for
    # "no cache, calibrate from the images".
    def read_calibration_cache(self) -> bytes | None:  # type: ignore[override]
        if self.read_table and self.cache_path.is_file():
            LOG.info("INT8 calibration: using the table %s (delete it to recalibrate)", self.cache_path)
            return self.cache_path.read_bytes()
        return None

    def write_calibration_cache(self, cache: Buffer) -> None:
        atomic_write_bytes(self.cache_path, bytes(cache))
        LOG.info("INT8 calibration table written to %s", self.cache_path)

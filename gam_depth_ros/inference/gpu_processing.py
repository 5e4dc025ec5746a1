"""Pre- and post-processing with torch, on the GPU when there is one (CPU tensors work too).

The same steps as the numpy/OpenCV path (:mod:`~gam_depth_ros.inference.preprocessing`,
:mod:`~gam_depth_ros.inference.postprocessing`, filters in :mod:`gam_depth_ros.image_resize`), as
tensor operations, so that a camera frame goes to the GPU once as uint8 and only the results come back:

- resizing is separable and linear in the pixels, so each axis is one matrix: OpenCV itself computes
  the weights once per size pair (by resizing an identity matrix with the filter the numpy path
  uses: area when shrinking, else bilinear), and the GPU applies them as two matrix products;
- input: uint8 [H, W, 3] RGB -> float [1, 3, h, w] in [0, 1], rounded to whole grey levels as
  OpenCV's 8-bit resize is. The ImageNet normalisation is inside the network; the argmax over
  classes is inside the exported graph.
- output: disparity [h, w] -> the same filters to the output size -> depth; labels [h, w] -> nearest
  pixel centre with the source indices OpenCV's ``INTER_NEAREST_EXACT`` picks, never blending ids.

Agreement with the OpenCV path (``test/test_tensorrt_cpu.py`` checks it on CPU tensors): network input
within one grey level (OpenCV's 8-bit bilinear uses 11-bit fixed-point weights, this path float32),
disparity within 1e-4, labels identical.

:class:`GpuProcessor` adds reusable pinned (page-locked) host buffers, so host <-> device copies
are asynchronous DMA transfers on the processor's CUDA stream; on Jetson (memory shared by CPU
and GPU) pinned memory also avoids an extra staging copy in the driver.
"""

from __future__ import annotations

import contextlib
import functools

import cv2
import numpy as np
import torch

from gam_depth_ros.image_resize import shrinks
from gam_depth_ros.inference.postprocessing import disparity_to_depth


@functools.lru_cache(maxsize=64)
def resize_weights(size_in: int, size_out: int, area: bool, device: torch.device) -> torch.Tensor:
    """[size_out, size_in] float32 weights of OpenCV's area (``area``) or bilinear filter along one axis.

    Computed and copied to ``device`` once per size pair (a camera's frames reuse them); shared, so
    callers must not modify the tensor in place.
    """
    # Row i of a resized identity matrix is output pixel i's weight on each input pixel.
    identity = np.eye(size_in, dtype=np.float64)
    interpolation = cv2.INTER_AREA if area else cv2.INTER_LINEAR
    weights = cv2.resize(identity, (size_in, size_out), interpolation=interpolation).astype(np.float32)
    return torch.from_numpy(weights).to(device)


def resize_torch(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """[..., h, w] float -> [..., height, width] with :func:`gam_depth_ros.image_resize.resize_image`'s filter."""
    size_in = (int(image.shape[-2]), int(image.shape[-1]))
    if size_in == (height, width):
        return image
    area = shrinks(size_in, (height, width))
    rows = resize_weights(size_in[0], height, area, image.device)
    cols = resize_weights(size_in[1], width, area, image.device)
    return torch.matmul(torch.matmul(rows, image), cols.T)


def to_network_input_torch(rgb: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """[H, W, 3] uint8 RGB tensor -> [1, 3, height, width] float32 in [0, 1] on the same device."""
    if rgb.dtype != torch.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an [H, W, 3] uint8 tensor, got {tuple(rgb.shape)} {rgb.dtype}")
    chw = rgb.permute(2, 0, 1).unsqueeze(0).to(torch.float32)
    if tuple(chw.shape[-2:]) != (height, width):
        chw = resize_torch(chw, height, width).round_().clamp_(0.0, 255.0)
    return chw.mul_(1.0 / 255.0)  # chw is a new tensor (the uint8 -> float conversion copied)


def resize_disparity_torch(disparity: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """[h, w] float disparity -> [height, width] (bilinear, or area when shrinking)."""
    return resize_torch(disparity.to(torch.float32), height, width)


@functools.lru_cache(maxsize=64)
def nearest_indices(size_in: int, size_out: int, device: torch.device) -> torch.Tensor:
    """Source index of each output pixel of a nearest-neighbour resize, as OpenCV's
    ``INTER_NEAREST_EXACT`` picks it (about ``floor((i + 0.5) * size_in / size_out)``); on ``device``,
    once per size pair, shared (not to be modified in place)."""
    # OpenCV's own choice (fixed-point arithmetic, its rounding on exact ties), read off a ramp.
    ramp = np.arange(size_in, dtype=np.int32)[None]
    indices = cv2.resize(ramp, (size_out, 1), interpolation=cv2.INTER_NEAREST_EXACT)[0].astype(np.int64)
    return torch.from_numpy(indices).to(device)


def resize_labels_torch(labels: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """[h, w] class ids (any integer dtype) -> [height, width], nearest neighbour."""
    if tuple(labels.shape) == (height, width):
        return labels
    rows = nearest_indices(labels.shape[0], height, labels.device)
    cols = nearest_indices(labels.shape[1], width, labels.device)
    return labels.index_select(0, rows).index_select(1, cols)


class GpuProcessor:
    """Pre/post-processing on ``device`` with pinned host staging buffers, on one CUDA stream.

    Parameters
    ----------
    device:
        Where the tensors live (``cuda:N``; ``cpu`` works for tests, without pinning).
    stream:
        CUDA stream the work is queued on (the inference stream, so that no extra
        synchronisation is needed); None for the current stream.

    Buffers are allocated per image size on first use and reused; a camera with a fixed
    resolution allocates once.
    """

    def __init__(self, device: torch.device, stream: torch.cuda.Stream | None = None) -> None:
        self.device = device
        self.stream = stream
        self._pin = device.type == "cuda"
        self._host: dict[tuple[tuple[int, ...], torch.dtype], torch.Tensor] = {}

    def host_buffer(self, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        """A reusable (pinned, on CUDA) host tensor of ``shape`` and ``dtype``."""
        key = (tuple(shape), dtype)
        if key not in self._host:
            self._host[key] = torch.empty(shape, dtype=dtype, pin_memory=self._pin)
        return self._host[key]

    def upload_rgb(self, rgb: np.ndarray) -> torch.Tensor:
        """[H, W, 3] uint8 numpy (any strides) -> device tensor, through the pinned buffer."""
        staging = self.host_buffer(rgb.shape, torch.uint8)
        staging.numpy()[...] = rgb
        return staging.to(self.device, non_blocking=self._pin)

    def on_stream(self) -> contextlib.AbstractContextManager:
        """Context in which torch queues work on the processor's stream."""
        if self.device.type == "cuda" and self.stream is not None:
            return torch.cuda.stream(self.stream)
        return contextlib.nullcontext()

    def preprocess(self, rgb: np.ndarray, height: int, width: int) -> torch.Tensor:
        """[H, W, 3] uint8 RGB -> [1, 3, height, width] float32 in [0, 1] on the device."""
        with self.on_stream():
            return to_network_input_torch(self.upload_rgb(rgb), height, width)

    def postprocess(
        self,
        disparity: torch.Tensor,
        labels: torch.Tensor,
        output_size: tuple[int, int],
        min_depth: float,
        max_depth: float,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Network outputs on the device -> (depth [H, W] float32, labels [H, W] uint8) numpy.

        ``disparity`` [h, w] sigmoid disparity, ``labels`` [h, w] class ids, ``output_size``
        (H, W). Queues the resize and the copies, then waits for the stream once.
        """
        height, width = output_size
        depth_host = self.host_buffer((height, width), torch.float32)
        labels_host = self.host_buffer((height, width), torch.uint8)
        with self.on_stream():
            depth = disparity_to_depth(resize_disparity_torch(disparity, height, width), min_depth, max_depth)
            ids = resize_labels_torch(labels, height, width).to(torch.uint8)
            depth_host.copy_(depth, non_blocking=self._pin)
            labels_host.copy_(ids, non_blocking=self._pin)
        self.synchronize()
        # Copies out of the reused staging buffers: the caller may keep the arrays.
        return depth_host.numpy().copy(), labels_host.numpy().copy()

    def synchronize(self) -> None:
        """Wait for the queued work (no-op on CPU)."""
        if self.device.type != "cuda":
            return
        if self.stream is not None:
            self.stream.synchronize()
        else:
            torch.cuda.current_stream(self.device).synchronize()

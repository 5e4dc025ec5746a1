"""Resizing with OpenCV: the one implementation for camera images, depth/disparity and label maps.

The filters, chosen per call from the sizes (OpenCV 4.5.4 or newer, the oldest a robot has:
Ubuntu 22.04's apt):

- shrinking both axes (or keeping one): ``INTER_AREA``, each output pixel the mean of the source
  area it covers, weighted by overlap (OpenCV's filter for decimation; no aliasing of fine textures);
- otherwise ``INTER_LINEAR``: bilinear with pixel centres at ``i + 0.5``, edges replicated;
- label maps: ``INTER_NEAREST_EXACT``, source pixel ``floor((i + 0.5) * in / out)``, so class ids
  are never blended and the map is not shifted by half a pixel.

The torch path (:mod:`gam_depth_ros.inference.gpu_processing`) computes the same filters on the GPU;
``test/test_tensorrt_cpu.py`` holds the two to within one grey level.
"""

from __future__ import annotations

import cv2
import numpy as np


def shrinks(source_hw: tuple[int, int], target_hw: tuple[int, int]) -> bool:
    """True when no axis grows: the area filter applies (else bilinear)."""
    return target_hw[0] <= source_hw[0] and target_hw[1] <= source_hw[1]


def resize_image(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """[H, W] or [H, W, C] (uint8 or float32) -> [height, width(, C)], area or bilinear filter.

    Returns ``image`` itself when the size already matches. Any strides are accepted.
    """
    if image.shape[:2] == (height, width):
        return image
    if height <= 0 or width <= 0:
        raise ValueError(f"cannot resize to {width}x{height}")
    if image.shape[:2] == (1, 1):  # every filter repeats the pixel; OpenCV 4.5's binding rejects 1x1x3 arrays
        return np.broadcast_to(image, (height, width, *image.shape[2:])).copy()
    interpolation = cv2.INTER_AREA if shrinks(image.shape[:2], (height, width)) else cv2.INTER_LINEAR
    return cv2.resize(np.ascontiguousarray(image), (width, height), interpolation=interpolation)


def resize_nearest(labels: np.ndarray, height: int, width: int) -> np.ndarray:
    """[H, W] label map (uint8 or uint16) -> [height, width], nearest pixel centre, ids never blended."""
    if labels.shape[:2] == (height, width):
        return labels
    if height <= 0 or width <= 0:
        raise ValueError(f"cannot resize to {width}x{height}")
    if labels.shape[:2] == (1, 1):
        return np.broadcast_to(labels, (height, width, *labels.shape[2:])).copy()
    return cv2.resize(np.ascontiguousarray(labels), (width, height), interpolation=cv2.INTER_NEAREST_EXACT)


def limit_opencv_threads(count: int = 1) -> None:
    """Let OpenCV run its functions on ``count`` threads (process-wide; 0 or 1: no thread pool).

    The node uses one: its image work takes about a millisecond a frame, while ONNX Runtime's
    ``threads`` own the cores; OpenCV's own pool (one thread per core) would compete with them.
    """
    cv2.setNumThreads(count)

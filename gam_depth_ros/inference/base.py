"""The interface every inference backend implements, and the shared infer() pipeline."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from gam_depth_ros.inference.postprocessing import disparity_to_depth, resize_disparity, resize_labels
from gam_depth_ros.inference.preprocessing import as_rgb, to_network_input
from gam_depth_ros.metadata import ModelMetadata


class ModelLoadError(ValueError):
    """A model file cannot be used by a backend; the message names the file and the problem."""


@dataclass
class Prediction:
    """One frame's result at the requested output size.

    ``depth`` is in network units (multiply by a scale for metres), float32, finite and within
    [min_depth, max_depth] of the model. ``labels`` are class ids (uint8).
    """

    depth: np.ndarray  # [H, W] float32
    labels: np.ndarray  # [H, W] uint8
    inference_s: float  # time spent in the network alone


class InferenceBackend(ABC):
    """Runs the exported network. Subclasses implement :meth:`run_network` only.

    Attributes
    ----------
    name:
        Backend name as used by the ``backend`` parameter.
    metadata:
        The model's metadata (input size, depth range, classes).
    device:
        Human-readable description of where the network runs (e.g. ``CPUExecutionProvider``).
    """

    name = "base"

    def __init__(self, metadata: ModelMetadata, device: str) -> None:
        self.metadata = metadata
        self.device = device

    @property
    def input_size(self) -> tuple[int, int]:
        """Network input (height, width)."""
        return self.metadata.input_height, self.metadata.input_width

    @abstractmethod
    def run_network(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Run the network on [1, 3, H, W] float32 RGB in [0, 1].

        Returns
        -------
        disparity:
            [H, W] float32 sigmoid disparity.
        labels:
            [H, W] uint8 class ids.
        """

    def infer(self, image: np.ndarray, output_size: tuple[int, int] | None = None) -> Prediction:
        """Depth and labels for one image.

        Parameters
        ----------
        image:
            [H, W, 3] RGB (or grey / RGBA, see ``as_rgb``) uint8, any strides.
        output_size:
            (height, width) of the result; default the input image's size.
        """
        rgb = as_rgb(image)
        out_h, out_w = output_size if output_size is not None else rgb.shape[:2]
        batch = to_network_input(rgb, *self.input_size)
        start = time.perf_counter()
        disparity, labels = self.run_network(batch)
        inference_s = time.perf_counter() - start
        disparity = resize_disparity(disparity, out_h, out_w)
        depth = disparity_to_depth(disparity, self.metadata.min_depth, self.metadata.max_depth)
        return Prediction(
            depth=depth.astype(np.float32, copy=False),
            labels=resize_labels(labels, out_h, out_w),
            inference_s=inference_s,
        )

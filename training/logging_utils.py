"""Run logs: a CSV file always; TensorBoard scalars and image grids when ``tensorboard`` is installed.

Neither TensorBoard nor tqdm is a dependency: without them the CSV log and plain ``logging``
lines carry the same numbers.
"""

from __future__ import annotations

import csv
import logging
import sys
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from gam_depth_ros.colorize import colorize_depth, colorize_labels

LOG = logging.getLogger("training")


class RunLogger:
    """Scalars to ``<output_dir>/<split>_log.csv`` (and TensorBoard), images to TensorBoard only.

    Parameters
    ----------
    output_dir:
        Run folder.
    enabled:
        False on DDP ranks other than 0 (every call is then a no-op).
    tensorboard:
        Use TensorBoard when importable.
    """

    def __init__(self, output_dir: str | Path, enabled: bool = True, tensorboard: bool = True) -> None:
        self.output_dir = Path(output_dir)
        self.enabled = enabled
        self._writers: dict[str, tuple[object, csv.DictWriter]] = {}
        self._tb = None
        if enabled:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            if tensorboard:
                self._tb = _tensorboard_writer(self.output_dir / "tensorboard")

    def scalars(self, split: str, step: int, epoch: int, values: dict[str, float]) -> None:
        """Append one row (``step``, ``epoch`` and ``values``) to the split's CSV and TensorBoard."""
        if not self.enabled:
            return
        row = {"step": step, "epoch": epoch, **{k: _number(v) for k, v in values.items()}}
        writer = self._csv(split, list(row))
        writer.writerow(row)
        self._writers[split][0].flush()  # type: ignore[attr-defined]
        if self._tb is not None:
            for key, value in values.items():
                self._tb.add_scalar(f"{split}/{key}", _number(value), step)

    def images(self, step: int, grids: dict[str, np.ndarray]) -> None:
        """TensorBoard image grids (``[N,H,W,3]`` uint8 each); ignored without TensorBoard."""
        if self.enabled and self._tb is not None:
            for tag, grid in grids.items():
                self._tb.add_images(tag, grid, step, dataformats="NHWC")

    def close(self) -> None:
        for stream, _ in self._writers.values():
            stream.close()  # type: ignore[attr-defined]
        if self._tb is not None:
            self._tb.close()

    def _csv(self, split: str, fields: list[str]) -> csv.DictWriter:
        if split not in self._writers:
            path = self.output_dir / f"{split}_log.csv"
            if path.exists() and path.stat().st_size > 0:  # resumed run: keep the file's columns
                with open(path, newline="") as stream:
                    fields = next(csv.reader(stream), fields)
                stream = open(path, "a", newline="")  # noqa: SIM115 - kept open for the run
                writer = csv.DictWriter(stream, fields, extrasaction="ignore")
            else:
                stream = open(path, "w", newline="")  # noqa: SIM115
                writer = csv.DictWriter(stream, fields, extrasaction="ignore")
                writer.writeheader()
            self._writers[split] = (stream, writer)
        return self._writers[split][1]


def image_grids(target: Tensor, disparity: Tensor, mask: Tensor | None, logits: Tensor | None,
                max_images: int = 4) -> dict[str, np.ndarray]:
    """Visualisations of a batch: target, disparity (turbo), mask (grey), predicted semantics (palette).

    Parameters
    ----------
    target:
        ``[B,3,H,W]`` in [0, 1].
    disparity:
        ``[B,1,H,W]`` full-resolution disparity.
    mask:
        ``[B,1,H,W]`` gradient-aware mask or None.
    logits:
        ``[B,C,H,W]`` semantic logits or None.

    Returns
    -------
    dict
        Tag -> ``[N,H,W,3]`` uint8.
    """
    n = min(max_images, target.shape[0])
    rgb = target[:n].detach().float().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy()
    grids = {"target": (rgb * 255).astype(np.uint8)}
    disp = disparity[:n, 0].detach().float().cpu().numpy()
    grids["disparity"] = np.stack([colorize_depth(d / max(d.max(), 1e-6), 0.0, 1.0) for d in disp])
    if mask is not None:
        grey = (mask[:n, 0].detach().float().clamp(0, 1).cpu().numpy() * 255).astype(np.uint8)
        grids["mask"] = np.repeat(grey[..., None], 3, axis=-1)
    if logits is not None:
        labels = logits[:n].detach().argmax(1).to(torch.uint8).cpu().numpy()
        grids["semantics"] = np.stack([colorize_labels(lab) for lab in labels])
    return grids


def progress(iterable: Iterable, total: int, enabled: bool, description: str = "") -> Iterable:
    """A tqdm progress bar when tqdm is installed, ``enabled`` and stderr is a terminal; else the iterable."""
    if not enabled or not sys.stderr.isatty():
        return iterable
    try:
        from tqdm import tqdm
    except ImportError:
        return iterable
    return tqdm(iterable, total=total, desc=description, dynamic_ncols=True, leave=False)


def _tensorboard_writer(folder: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard not installed: CSV only
        LOG.info("tensorboard is not installed: logging to CSV only")
        return None
    return SummaryWriter(str(folder))


def _number(value) -> float:
    return float(value.detach()) if isinstance(value, Tensor) else float(value)

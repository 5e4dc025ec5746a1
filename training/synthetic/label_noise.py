"""Degrade exact labels like a real segmentation network, for proxy labels with realistic errors.

Five kinds of error, all deterministic by the generator passed in:

- boundary jitter: near class boundaries the labels of one side spill over into the other (a random
  erosion/dilation of a few pixels, the blurry edges of a low-resolution segmenter);
- wrong blobs: a few elliptical blobs take the class of a random other class present in the image
  (confusions such as cabinet vs. wall);
- void boundaries: a thin band along some boundaries becomes void (255), as with confidence
  thresholding;
- missed small objects (``segmenter`` only): an object region (not wall, floor or ceiling) smaller
  than a share of the image takes the label around it, as a segmenter overlooks a box or a chair leg;
- object confusion (``segmenter`` only): some whole object regions take another object class present
  in the image (chair read as sofa).

Measured pixel agreement with the exact labels (24 frames of 6 generated rooms at 96x128):
``light`` 95.7 % (worst frame 88.6 %, 0.7 % void), ``strong`` 82.1 % (worst 65.4 %, 2.7 % void);
the tests check light within 85-99.5 % and strong below light. ``segmenter`` is the level of a real
indoor segmenter (70-80 % pixel agreement; its measured figures are in docs/data.md).
"""

from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np

from gam_depth_ros.classes import VOID_LABEL
from gam_depth_ros.evaluation.metrics import structural_ids

STRUCTURAL_IDS = structural_ids()  # wall, floor, ceiling: never an "object" to miss or confuse


class NoiseLevel(NamedTuple):
    jitter_radius: int  # px of boundary jitter
    blobs: int  # wrong elliptical blobs per image
    blob_size: float  # blob radius as a fraction of the width
    void_p: float  # probability of a void band along the boundaries
    small_object_share: float = 0.0  # object regions below this share of the image are missed
    confusion_p: float = 0.0  # probability that an object region takes another object class


LEVELS = {
    "none": NoiseLevel(0, 0, 0.0, 0.0),
    "light": NoiseLevel(1, 1, 0.06, 0.3),
    "strong": NoiseLevel(3, 3, 0.12, 0.7),
    "segmenter": NoiseLevel(3, 3, 0.12, 0.7, small_object_share=0.02, confusion_p=0.25),
}


def _boundaries(labels: np.ndarray) -> np.ndarray:
    edge = np.zeros(labels.shape, bool)
    edge[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    edge[1:] |= labels[1:] != labels[:-1]
    return edge


def _shift(array: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``array`` moved by (dy, dx) with edge values repeated (no wrap-around)."""
    h, w = array.shape
    ys = np.clip(np.arange(h) - dy, 0, h - 1)
    xs = np.clip(np.arange(w) - dx, 0, w - 1)
    return array[ys][:, xs]


def degrade_labels(labels: np.ndarray, rng: np.random.Generator, level: str = "light") -> np.ndarray:
    """Noisy copy of ``labels`` [H,W] uint8 (NYU-40 ids, 255 void) at ``level`` (a key of ``LEVELS``)."""
    if level not in LEVELS:
        raise ValueError(f"label noise level must be one of {sorted(LEVELS)}, got {level!r}")
    radius, blobs, blob_size, void_p, small_share, confusion_p = LEVELS[level]
    out = _object_errors(labels, rng, small_share, confusion_p) if small_share or confusion_p else labels.copy()
    if radius:
        # Boundary jitter: near edges take the label of a pixel displaced by a random offset that
        # varies smoothly over the image (coarse random field, upsampled by repetition).
        h, w = labels.shape
        coarse = rng.integers(-radius, radius + 1, size=(2, h // 8 + 1, w // 8 + 1))
        near = _boundaries(labels)
        for _ in range(radius):
            near = near | _shift(near, 1, 0) | _shift(near, 0, 1) | _shift(near, -1, 0) | _shift(near, 0, -1)
        dy = np.kron(coarse[0], np.ones((8, 8), int))[:h, :w]
        dx = np.kron(coarse[1], np.ones((8, 8), int))[:h, :w]
        ys = np.clip(np.arange(h)[:, None] + dy, 0, h - 1)
        xs = np.clip(np.arange(w)[None, :] + dx, 0, w - 1)
        out = np.where(near, labels[ys, xs], out)
    classes = np.unique(labels[labels != VOID_LABEL])
    h, w = labels.shape
    yy, xx = np.mgrid[:h, :w]
    for _ in range(blobs if len(classes) > 1 else 0):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        ry, rx = (rng.uniform(0.5, 1.5, 2) * blob_size * w)
        inside = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1
        out[inside] = rng.choice(classes)
    if void_p and rng.random() < void_p:
        out[_boundaries(labels)] = VOID_LABEL
    return out


def _object_errors(labels: np.ndarray, rng: np.random.Generator, small_share: float, confusion_p: float) -> np.ndarray:
    """``labels`` with small object regions relabelled to their surroundings and some object regions
    relabelled to another object class present (regions: 8-connected components of one class)."""
    out = labels.copy()
    objects = [int(c) for c in np.unique(labels) if c != VOID_LABEL and c not in STRUCTURAL_IDS]
    ring_kernel = np.ones((3, 3), np.uint8)
    for cls in objects:
        count, components, stats, _ = cv2.connectedComponentsWithStats((labels == cls).astype(np.uint8), connectivity=8)
        for index in range(1, count):
            region = components == index
            if stats[index, cv2.CC_STAT_AREA] < small_share * labels.size:
                ring = cv2.dilate(region.astype(np.uint8), ring_kernel).astype(bool) & ~region
                around = labels[ring]
                around = around[around != VOID_LABEL]
                if around.size:  # the most common label just outside the region
                    values, counts = np.unique(around, return_counts=True)
                    out[region] = values[np.argmax(counts)]
            elif len(objects) > 1 and rng.random() < confusion_p:
                out[region] = rng.choice([c for c in objects if c != cls])
    return out

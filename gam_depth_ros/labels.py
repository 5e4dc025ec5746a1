"""Semantic label id conventions: what a published or ground-truth id means, and converting between them.

Two conventions meet on a robot:

- ``zero-based`` (this project's models and ``depth_node``'s ``semantic/image``): id ``i`` is
  ``class_names[i]`` (NYU-40: 0 = wall ... 39 = other prop); 255 is void in ground truth and never
  published;
- ``nyu40`` (NYU-40 ground truth in the wild): 0 = unlabeled/unknown, 1 = wall ... 40 = other prop.

A model's metadata names the convention of its semantic output (``label_format``); the node
publishes it with the class names and palette on the latched ``semantic/classes`` topic
(:func:`classes_description`). Evaluation tools convert ground truth to zero-based ids with
:func:`to_zero_based` and compare the mIoU with the ids shifted by one (:func:`offset_warning`), which
catches a ground truth read in the wrong convention. Pure numpy.
"""

from __future__ import annotations

import json

import numpy as np

from gam_depth_ros.classes import VOID_LABEL

ZERO_BASED = "zero-based"
NYU40 = "nyu40"
LABEL_FORMATS = (ZERO_BASED, NYU40)
CLASSES_FORMAT = "gam_depth_ros.classes/1"
#: A shifted reading must beat the given one by this factor and this many mIoU points to be reported.
OFFSET_RATIO = 2.0
OFFSET_MARGIN = 0.05


def first_id(label_format: str) -> int:
    """The id of ``class_names[0]`` in ``label_format`` (0 or 1)."""
    if label_format not in LABEL_FORMATS:
        raise ValueError(f"label format {label_format!r} is not one of {list(LABEL_FORMATS)}")
    return 1 if label_format == NYU40 else 0


def to_zero_based(labels: np.ndarray, label_format: str) -> np.ndarray:
    """[H, W] integer ids in ``label_format`` -> uint8 zero-based ids, 255 (void) for unknown.

    ``nyu40``: 0 (unlabeled) -> 255, k -> k - 1; ``zero-based``: unchanged.
    """
    labels = np.asarray(labels)
    if first_id(label_format) == 0:
        return labels.astype(np.uint8, copy=False)
    out = labels.astype(np.int64) - 1
    out[(labels == 0) | (labels == VOID_LABEL)] = VOID_LABEL
    return out.astype(np.uint8)


def shift_labels(labels: np.ndarray, shift: int, num_classes: int) -> np.ndarray:
    """Zero-based ids moved by ``shift``; void stays void, ids pushed out of 0..C-1 become void."""
    labels = np.asarray(labels)
    out = labels.astype(np.int64) + shift
    out[(labels == VOID_LABEL) | (out < 0) | (out >= num_classes)] = VOID_LABEL
    return out.astype(np.uint8)


def offset_warning(miou_by_shift: dict[int, float], label_format: str) -> str | None:
    """A warning when the ground truth scores far better with its ids shifted by one, else None.

    ``miou_by_shift`` maps a shift of the (already converted) ground-truth ids (-1, 0, +1) to the
    mIoU it gives; 0 is the reading as given.
    """
    given = miou_by_shift.get(0, float("nan"))
    shifted = {s: m for s, m in miou_by_shift.items() if s != 0 and np.isfinite(m)}
    if not shifted or not np.isfinite(given):
        return None
    shift, best = max(shifted.items(), key=lambda item: item[1])
    if best < OFFSET_RATIO * given or best < given + OFFSET_MARGIN:
        return None
    hint = {(-1, ZERO_BASED): f"--label-format {NYU40}", (1, NYU40): f"--label-format {ZERO_BASED}"}.get(
        (shift, label_format), "a label map for the ground truth")
    return (f"ground-truth labels look offset by one: mIoU {given:.3f} as read ({label_format}), {best:.3f} with "
            f"the ground-truth ids shifted by {shift:+d}; check the ground truth's convention (try {hint})")


def palette_lut(palette, label_format: str = ZERO_BASED) -> np.ndarray:
    """[256, 3] uint8 colour of every published id: the palette from the first class id on, the
    rest black (void, unknown)."""
    lut = np.zeros((256, 3), dtype=np.uint8)
    start = first_id(label_format)
    colours = np.asarray(palette, dtype=np.uint8).reshape(-1, 3)
    lut[start : start + len(colours)] = colours
    return lut


def classes_description(class_names, palette, label_format: str = ZERO_BASED, model: str = "") -> dict:
    """What the ids of ``semantic/image`` mean: the content of the latched ``semantic/classes`` topic.

    Keys: ``format``; ``label_format``; ``classes``, a list of ``{"id", "name", "color": [r, g, b]}``
    in id order; ``unknown_id`` (the id of unlabeled pixels, or null when none is published);
    ``model`` (the model file).
    """
    start = first_id(label_format)
    classes = [{"id": start + i, "name": str(name), "color": [int(c) for c in colour]}
               for i, (name, colour) in enumerate(zip(class_names, palette))]
    return {"format": CLASSES_FORMAT, "label_format": label_format, "classes": classes,
            "unknown_id": 0 if start == 1 else None, "model": model}


def classes_json(*args, **kwargs) -> str:
    """:func:`classes_description` as compact JSON."""
    return json.dumps(classes_description(*args, **kwargs), separators=(",", ":"))

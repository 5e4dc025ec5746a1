"""Procedural surface textures: a brightness factor per hit point from its face coordinates.

A texture maps surface coordinates ``(a, b)`` in metres (the two axes spanning the face that was
hit) to a factor that multiplies the surface's base colour. Textures are functions of the surface
point only, so a point looks the same from every view: the photometric loss sees a consistent scene.

Two families:

- the ``plain`` style's low-contrast patterns (``flat``, ``stripes``, ``checker``, ``noise``),
  unchanged from the first generator;
- the ``rich`` style's (``wood``, ``planks``, ``tiles``, ``fabric``, ``wallpaper``, ``plaster``,
  ``poster``, ``rug``, ``cardboard``, ``leaves``): contrast like real indoor materials (grain, seams,
  grout, prints), with periods of 8 cm or more and seams about 2 cm wide, so that a
  256-pixel-wide image at 1-4 m does not alias them into noise. ``scale`` stretches a pattern
  (per-object variety), ``phase`` shifts it.
"""

from __future__ import annotations

import numpy as np

PLAIN_TEXTURES = ("flat", "stripes", "checker", "noise")
RICH_TEXTURES = ("wood", "planks", "tiles", "fabric", "wallpaper", "plaster", "poster", "rug", "cardboard", "leaves")


def _hash(cell: np.ndarray, phase: float) -> np.ndarray:
    """A repeatable pseudo-random value in [0, 1) per integer cell id."""
    x = np.sin(cell * 12.9898 + phase * 78.233) * 43758.5453
    return x - np.floor(x)


def _seam(coordinate: np.ndarray, period: float, width: float) -> np.ndarray:
    """True within ``width`` metres of every multiple of ``period``."""
    frac = np.mod(coordinate, period)
    return (frac < width) | (frac > period - width)


def _plain(kind: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if kind == "stripes":
        return 0.85 + 0.15 * np.sin(a * 25.0) * np.sin(a * 3.1 + b * 0.7)
    if kind == "checker":
        return np.where((np.floor(a * 6) + np.floor(b * 6)) % 2 == 0, 1.15, 0.8)
    if kind == "noise":
        return 0.9 + 0.1 * np.sin(a * 37.0 + 3 * np.sin(b * 11.0)) * np.cos(b * 23.0)
    return np.ones_like(a)


def texture(kind: str, a: np.ndarray, b: np.ndarray, scale: float = 1.0, phase: float = 0.0) -> np.ndarray:
    """Brightness factor (around 1, within [0.15, 1.9]) of texture ``kind`` at surface coordinates (a, b)."""
    if kind in PLAIN_TEXTURES:
        return _plain(kind, a, b)
    a = a / scale + phase
    b = b / scale + 0.37 * phase
    if kind == "wood":  # grain along a: wavy rings, darker late wood
        rings = np.sin(2 * np.pi * (b + 0.04 * np.sin(a * 3.0 + phase)) / 0.08)
        return 0.82 + 0.2 * rings + 0.08 * np.sin(a * 0.9 + b * 5.0)
    if kind == "planks":  # floorboards 15 cm wide, each its own shade, dark seams
        plank = np.floor(b / 0.15)
        shade = 0.7 + 0.55 * _hash(plank, phase)
        grain = 0.08 * np.sin(2 * np.pi * (b + 0.03 * np.sin(a * 2.0 + plank)) / 0.08)
        seams = _seam(b, 0.15, 0.012) | _seam(a + 0.37 * plank, 1.2, 0.012)
        return np.where(seams, 0.35, shade + grain)
    if kind == "tiles":  # 30 cm tiles, alternating shades, dark grout
        cell = np.floor(a / 0.3) + 1000 * np.floor(b / 0.3)
        shade = np.where((np.floor(a / 0.3) + np.floor(b / 0.3)) % 2 == 0, 1.2, 0.85) + 0.1 * _hash(cell, phase)
        return np.where(_seam(a, 0.3, 0.012) | _seam(b, 0.3, 0.012), 0.3, shade)
    if kind == "fabric":  # coarse weave with a large check
        weave = 0.08 * np.sign(np.sin(a * 2 * np.pi / 0.1)) * np.sign(np.sin(b * 2 * np.pi / 0.1))
        check = np.where((np.floor(a / 0.2) + np.floor(b / 0.2)) % 2 == 0, 1.1, 0.75)
        return check + weave
    if kind == "wallpaper":  # repeating diamonds and stripes
        diamond = np.abs(np.mod(a / 0.25, 1) - 0.5) + np.abs(np.mod(b / 0.25, 1) - 0.5)
        stripe = 0.1 * np.sign(np.sin(a * 2 * np.pi / 0.5))
        return np.where(diamond < 0.22, 1.25, 0.85) + stripe
    if kind == "plaster":  # a painted wall's faint unevenness (the textureless case, but not perfectly flat)
        return 0.95 + 0.04 * np.sin(a * 7.0 + 2 * np.sin(b * 5.0)) * np.cos(b * 6.0 - a)
    if kind == "poster":  # bold printed shapes: thresholded sum of waves, three levels
        wave = (np.sin(a * 19.0 + phase) + np.sin(b * 23.0 - 2 * phase) + np.sin((a + b) * 13.0 + 3 * phase))
        return np.where(wave > 0.8, 1.9, np.where(wave < -0.8, 0.15, 0.9))
    if kind == "rug":  # concentric bands and a central medallion
        ring = np.maximum(np.abs(np.mod(a, 2.0) - 1.0), np.abs(np.mod(b, 1.6) - 0.8))
        band = np.mod(ring / 0.12, 2.0) < 1.0
        return np.where(band, 1.5, 0.35)
    if kind == "cardboard":  # corrugation and a tape stripe
        tape = np.abs(np.mod(a, 1.0) - 0.5) < 0.03
        return np.where(tape, 1.35, 0.9 + 0.06 * np.sin(b * 2 * np.pi / 0.08))
    if kind == "leaves":  # irregular light and dark patches
        blobs = np.sin(a * 31.0 + 2 * np.sin(b * 17.0)) * np.sin(b * 29.0 + 2 * np.sin(a * 13.0))
        return 0.8 + 0.45 * blobs
    raise ValueError(f"unknown texture {kind!r}; known: {PLAIN_TEXTURES + RICH_TEXTURES}")

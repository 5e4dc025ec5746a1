"""Pillow resampling filters that work on every Pillow a robot has.

Pillow's ``Resampling`` enum exists only from Pillow 9.1; Ubuntu 22.04 (ROS 2 Humble, JetPack 6) ships
Pillow 9.0.1, where the same filters are module constants (``Image.BILINEAR``). Both spellings name
the same integer values, so taking whichever exists changes nothing on newer Pillows.
"""

from __future__ import annotations

from PIL import Image

_FILTERS = getattr(Image, "Resampling", Image)
BILINEAR = _FILTERS.BILINEAR
NEAREST = _FILTERS.NEAREST

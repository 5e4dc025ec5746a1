"""NYU-40 class names and the colour palette used for every semantic output.

The one place in the project that defines the label set. Class ids are 0..39 in the order below
(NYU-40 id minus one); ``VOID_LABEL`` (255) marks pixels without a label in proxy labels and ground
truth, so that no real class is ever ignored by mistake.
"""

from __future__ import annotations

import numpy as np

NYU40_CLASS_NAMES: tuple[str, ...] = (
    "wall", "floor", "cabinet", "bed", "chair", "sofa", "table", "door", "window", "bookshelf",
    "picture", "counter", "blinds", "desk", "shelves", "curtain", "dresser", "pillow", "mirror",
    "floor mat", "clothes", "ceiling", "books", "refrigerator", "television", "paper", "towel",
    "shower curtain", "box", "whiteboard", "person", "night stand", "toilet", "sink", "lamp",
    "bathtub", "bag", "other structure", "other furniture", "other prop",
)  # fmt: skip

NUM_CLASSES = len(NYU40_CLASS_NAMES)
VOID_LABEL = 255

# Well-separated colours for people looking at the colorized output; the first entries follow the
# palette commonly used for NYU-40 visualisations so walls, floors and furniture read naturally.
NYU40_PALETTE: tuple[tuple[int, int, int], ...] = (
    (174, 199, 232), (152, 223, 138), (31, 119, 180), (255, 187, 120), (188, 189, 34),
    (140, 86, 75), (255, 152, 150), (214, 39, 40), (197, 176, 213), (148, 103, 189),
    (196, 156, 148), (23, 190, 207), (178, 76, 76), (247, 182, 210), (66, 188, 102),
    (219, 219, 141), (140, 57, 197), (202, 185, 52), (51, 176, 203), (200, 54, 131),
    (92, 193, 61), (78, 71, 183), (172, 114, 82), (255, 127, 14), (91, 163, 138),
    (153, 98, 156), (140, 153, 101), (158, 218, 229), (100, 125, 154), (178, 127, 135),
    (120, 185, 128), (146, 111, 194), (44, 160, 44), (112, 128, 144), (96, 207, 209),
    (227, 119, 194), (213, 92, 176), (94, 106, 211), (82, 84, 163), (100, 85, 144),
)  # fmt: skip

assert len(NYU40_PALETTE) == NUM_CLASSES


def palette_lut() -> np.ndarray:
    """Colour look-up table for label images.

    Returns
    -------
    np.ndarray
        [256, 3] uint8; rows 0..39 are the class colours, every other id (void included) is black.
    """
    lut = np.zeros((256, 3), dtype=np.uint8)
    lut[:NUM_CLASSES] = np.asarray(NYU40_PALETTE, dtype=np.uint8)
    return lut

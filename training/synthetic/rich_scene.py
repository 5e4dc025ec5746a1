"""The ``rich`` room style: rooms that teach geometry (issue "Depth that sees obstacles").

Built on the furniture of :mod:`.scene`, with what the plain style lacks:

- texture contrast like real materials (:mod:`.textures`: wood grain, planks and tiles, fabric,
  wallpaper, posters, rugs), while about 40 % of the rooms keep plain painted walls (the
  textureless surfaces the gradient-aware mask is for);
- light: one to three point lights with random strength and tint, an ambient share, so faces are
  shaded by their orientation and their distance to a lamp (view-independent Lambertian shading);
- clutter and thin structures: plants (pot, thin stem, leaves), cardboard boxes on the floor, open
  shelving (two side panels and thin boards, the wall visible between them), floor lamps (a 3 cm
  pole), stools on thin legs, bins;
- room shapes: plain boxes, long corridors, L-shaped rooms (a floor-to-ceiling block in one corner)
  and rooms with pillars. Blocks and pillars are labelled ``wall`` (structure, not obstacles).

Everything is a pure function of the random generator passed in.
"""

from __future__ import annotations

import numpy as np

from training.synthetic.room import LABEL, Box, Light, Room
from training.synthetic.scene import FLOOR_Y, SIZES, Scene, _colour, _furniture, _legs, _small_objects, _wall_items

FURNITURE_TEXTURES = ("wood", "fabric", "wood", "cardboard", "fabric")
FLOOR_TEXTURES = ("planks", "tiles", "wood", "rug", "fabric")
WALL_TEXTURES = ("wallpaper", "plaster", "wood", "tiles")
#: (furniture, floor, wall) texture choices per texture set. ``nonperiodic`` leaves out the repeating
#: patterns (tiles, planks, wallpaper, fabric checks) on floors, walls and furniture (small clutter keeps
#: its own), whose shifted copies match the photometric loss almost as well as the true alignment. Measured
#: on 64x96 runs (docs/training.md): no reliable gain over ``all`` across three seeds; kept as a knob.
TEXTURE_SETS = {
    "all": (FURNITURE_TEXTURES, FLOOR_TEXTURES, WALL_TEXTURES),
    "nonperiodic": (("wood", "leaves", "wood", "cardboard", "poster"), ("wood", "leaves", "plaster"),
                    ("plaster", "wood", "poster", "leaves")),
}
SHAPES = ("box", "corridor", "l_shape", "pillars")


def _textured(boxes: list[Box], rng: np.random.Generator, kinds: tuple[str, ...]) -> list[Box]:
    """The same boxes with a rich texture each (one per piece: all its boxes share the look)."""
    kind, scale, phase = str(rng.choice(kinds)), float(rng.uniform(0.7, 1.5)), float(rng.uniform(0, 10))
    return [Box(b.lo, b.hi, b.label, b.color, kind if b.texture != "flat" or rng.random() < 0.7 else "flat",
                scale, phase) for b in boxes]


def _plant(x0: float, z0: float, rng: np.random.Generator) -> list[Box]:
    """A pot, a thin stem and a few leaf clusters (NYU-40 files plants under 'other prop')."""
    label, pot = LABEL["other prop"], float(rng.uniform(0.2, 0.35))
    height = float(rng.uniform(0.6, 1.4))
    cx, cz = x0 + pot / 2, z0 + pot / 2
    boxes = [Box((x0, FLOOR_Y - pot, z0), (x0 + pot, FLOOR_Y, z0 + pot), label, _colour(rng, 0.3, 0.7), "cardboard",
                 0.5, float(rng.uniform(0, 9))),
             Box((cx - 0.012, FLOOR_Y - height, cz - 0.012), (cx + 0.012, FLOOR_Y - pot, cz + 0.012), label,
                 (0.25, 0.4, 0.15))]
    green = (float(rng.uniform(0.1, 0.3)), float(rng.uniform(0.4, 0.7)), float(rng.uniform(0.1, 0.3)))
    for _ in range(int(rng.integers(2, 5))):
        y = FLOOR_Y - float(rng.uniform(pot + 0.2, height))
        dx, dz, size = rng.uniform(-0.25, 0.25), rng.uniform(-0.25, 0.25), float(rng.uniform(0.12, 0.25))
        lo_leaf = (cx + dx - size / 2, y - 0.05, cz + dz - size / 2)
        hi_leaf = (cx + dx + size / 2, y, cz + dz + size / 2)
        boxes.append(Box(lo_leaf, hi_leaf, label, green, "leaves", 1.0, float(rng.uniform(0, 9))))
    return boxes


def _open_shelving(x0: float, z0: float, sx: float, sz: float, rng: np.random.Generator) -> list[Box]:
    """Two side panels and thin boards with books on them; the wall shows between the boards."""
    label, colour = LABEL["shelves"], _colour(rng, 0.2, 0.7)
    height, t = float(rng.uniform(1.2, 2.0)), 0.02
    top = FLOOR_Y - height
    boxes = [Box((x0, top, z0), (x0 + t, FLOOR_Y, z0 + sz), label, colour, "wood"),
             Box((x0 + sx - t, top, z0), (x0 + sx, FLOOR_Y, z0 + sz), label, colour, "wood")]
    boards = int(rng.integers(3, 6))
    for level in np.linspace(FLOOR_Y - 0.1, top, boards):
        boxes.append(Box((x0 + t, level - t, z0), (x0 + sx - t, level, z0 + sz), label, colour, "wood"))
        if rng.random() < 0.7 and level > top + 0.1:
            width = float(rng.uniform(0.15, sx - 2 * t - 0.02))
            start = x0 + t + float(rng.uniform(0, sx - 2 * t - width))
            boxes.append(Box((start, level - t - float(rng.uniform(0.12, 0.28)), z0 + 0.02),
                             (start + width, level - t, z0 + sz - 0.02), LABEL["books"], _colour(rng, 0.1, 0.9),
                             "poster", 0.4, float(rng.uniform(0, 9))))
    return boxes


def _floor_lamp(x0: float, z0: float, rng: np.random.Generator) -> list[Box]:
    label, height = LABEL["lamp"], float(rng.uniform(1.3, 1.7))
    cx, cz = x0 + 0.15, z0 + 0.15
    colour = _colour(rng, 0.1, 0.5)
    return [Box((x0, FLOOR_Y - 0.03, z0), (x0 + 0.3, FLOOR_Y, z0 + 0.3), label, colour),
            Box((cx - 0.015, FLOOR_Y - height, cz - 0.015), (cx + 0.015, FLOOR_Y - 0.03, cz + 0.015), label, colour),
            Box((cx - 0.18, FLOOR_Y - height - 0.25, cz - 0.18), (cx + 0.18, FLOOR_Y - height, cz + 0.18), label,
                _colour(rng, 0.75, 0.98), "fabric")]


def _stool(x0: float, z0: float, rng: np.random.Generator) -> list[Box]:
    seat, size, colour = FLOOR_Y - float(rng.uniform(0.45, 0.75)), 0.35, _colour(rng, 0.15, 0.8)
    return [Box((x0, seat - 0.03, z0), (x0 + size, seat, z0 + size), LABEL["chair"], colour, "wood"),
            *_legs(x0, z0, x0 + size, z0 + size, seat, 0.025, LABEL["chair"], colour)]


def _floor_box(x0: float, z0: float, rng: np.random.Generator) -> list[Box]:
    sx, sz, h = (float(v) for v in rng.uniform((0.25, 0.25, 0.15), (0.6, 0.5, 0.5)))
    return [Box((x0, FLOOR_Y - h, z0), (x0 + sx, FLOOR_Y, z0 + sz), LABEL["box"], _colour(rng, 0.45, 0.75),
                "cardboard", float(rng.uniform(0.5, 1.5)), float(rng.uniform(0, 9)))]


CLUTTER = {  # footprint (x, z) in metres and builder
    "plant": ((0.55, 0.55), lambda x0, z0, sx, sz, rng: _plant(x0 + 0.12, z0 + 0.12, rng)),
    "shelving": ((1.0, 0.35), _open_shelving),
    "floor lamp": ((0.36, 0.36), lambda x0, z0, sx, sz, rng: _floor_lamp(x0, z0, rng)),
    "stool": ((0.35, 0.35), lambda x0, z0, sx, sz, rng: _stool(x0, z0, rng)),
    "floor box": ((0.6, 0.5), lambda x0, z0, sx, sz, rng: _floor_box(x0, z0, rng)),
    "bin": ((0.3, 0.3), lambda x0, z0, sx, sz, rng: [Box((x0, FLOOR_Y - 0.4, z0), (x0 + 0.3, FLOOR_Y, z0 + 0.3),
                                                         LABEL["other prop"], _colour(rng, 0.1, 0.9))]),
}


def _room_extent(shape: str, rng: np.random.Generator) -> tuple[tuple, tuple]:
    if shape == "corridor":
        width, length = rng.uniform(1.8, 2.6), rng.uniform(6.0, 10.0)
        if rng.random() < 0.5:
            width, length = length, width
    else:
        width, length = rng.uniform(3.5, 8.0), rng.uniform(3.5, 9.0)
    height = rng.uniform(2.3, 3.4)
    return (-width / 2, FLOOR_Y - height, -1.5), (width / 2, FLOOR_Y, length - 1.5)


def _structure(shape: str, lo, hi, rng: np.random.Generator) -> list[tuple[tuple, Box]]:
    """(footprint, box) of the L-shape's corner block or the pillars, labelled wall."""
    wall, out = LABEL["wall"], []
    if shape == "l_shape":
        sx, sz = (hi[0] - lo[0]) * rng.uniform(0.3, 0.45), (hi[2] - lo[2]) * rng.uniform(0.3, 0.45)
        x0 = lo[0] if rng.random() < 0.5 else hi[0] - sx
        z0 = hi[2] - sz
        out.append(((x0, z0, x0 + sx, z0 + sz), Box((x0, lo[1], z0), (x0 + sx, FLOOR_Y, z0 + sz), wall, (1, 1, 1))))
    elif shape == "pillars":
        for _ in range(int(rng.integers(1, 3))):
            size = rng.uniform(0.3, 0.5)
            x0, z0 = rng.uniform(lo[0] + 1.0, hi[0] - 1.0 - size), rng.uniform(lo[2] + 1.5, hi[2] - 1.0 - size)
            out.append(((x0, z0, x0 + size, z0 + size),
                        Box((x0, lo[1], z0), (x0 + size, FLOOR_Y, z0 + size), wall, (1, 1, 1))))
    return out


def _place(footprints: list, lo, hi, sx: float, sz: float, rng: np.random.Generator, wall_p: float):
    """A free footprint (x0, z0) of size (sx, sz) kept 0.3 m from the others, or None after 10 tries
    (at once when the piece does not fit between the walls: narrow corridors)."""
    if hi[0] - lo[0] - 0.1 < sx or hi[2] - lo[2] - 0.1 < sz:
        return None
    for _attempt in range(10):
        x0 = rng.uniform(lo[0] + 0.05, hi[0] - sx - 0.05)
        z0 = rng.uniform(lo[2] + 0.05, hi[2] - sz - 0.05)
        if rng.random() < wall_p:
            x0 = lo[0] + 0.02 if rng.random() < 0.5 else hi[0] - sx - 0.02
        c = (x0, z0, x0 + sx, z0 + sz)
        if all(c[2] + 0.3 < f[0] or f[2] + 0.3 < c[0] or c[3] + 0.3 < f[1] or f[3] + 0.3 < c[1] for f in footprints):
            footprints.append(c)
            return x0, z0
    return None


def rich_scene(rng: np.random.Generator, texture_set: str = "all") -> Scene:
    """A room of the rich style (module docstring) with the textures of ``TEXTURE_SETS[texture_set]``;
    the geometry does not depend on the texture set (same random draws)."""
    if texture_set not in TEXTURE_SETS:
        raise ValueError(f"texture_set must be one of {sorted(TEXTURE_SETS)}, got {texture_set!r}")
    furniture_textures, floor_textures, wall_textures = TEXTURE_SETS[texture_set]
    shape = str(rng.choice(SHAPES))
    lo, hi = _room_extent(shape, rng)
    boxes: list[Box] = []
    footprints: list[tuple[float, float, float, float]] = []
    for footprint, block in _structure(shape, lo, hi, rng):
        footprints.append(footprint)
        boxes.append(block)
    wall_colour = _colour(rng, 0.45, 0.95)
    boxes = [Box(b.lo, b.hi, b.label, wall_colour) for b in boxes]  # structure painted like the walls
    kinds = list(SIZES)
    for _ in range(int(rng.integers(3, 8))):
        kind = str(rng.choice(kinds))
        (ax, bx), (az, bz) = SIZES[kind]
        sx, sz = rng.uniform(ax, bx), rng.uniform(az, bz)
        if rng.random() < 0.5:
            sx, sz = sz, sx
        spot = _place(footprints, lo, hi, sx, sz, rng, 0.6)
        if spot is not None:
            boxes.extend(_textured(_furniture(kind, spot[0], spot[1], sx, sz, rng), rng, furniture_textures))
    for _ in range(int(rng.integers(3, 9))):
        kind = str(rng.choice(list(CLUTTER)))
        (sx, sz), build = CLUTTER[kind]
        spot = _place(footprints, lo, hi, sx, sz, rng, 0.4)
        if spot is not None:
            boxes.extend(build(spot[0], spot[1], sx, sz, rng))
    boxes.extend(_small_objects(boxes, rng))
    for _ in range(int(rng.integers(0, 3))):  # rugs
        sx, sz = rng.uniform(1.0, 2.5), rng.uniform(0.8, 2.0)
        x0, z0 = rng.uniform(lo[0], max(lo[0], hi[0] - sx)), rng.uniform(lo[2], max(lo[2], hi[2] - sz))
        boxes.append(Box((x0, FLOOR_Y - 0.01, z0), (x0 + sx, FLOOR_Y, z0 + sz), LABEL["floor mat"],
                         _colour(rng, 0.2, 0.8), "rug", float(rng.uniform(0.5, 1.5)), float(rng.uniform(0, 9))))
    for item in _wall_items(lo, hi, rng):
        poster = item.label == LABEL["picture"]
        boxes.append(Box(item.lo, item.hi, item.label, item.color, "poster" if poster else item.texture,
                         float(rng.uniform(0.5, 1.5)), float(rng.uniform(0, 9))))
    plain_walls = rng.random() < 0.4
    lights = tuple(
        Light((float(rng.uniform(lo[0] + 0.5, hi[0] - 0.5)), lo[1] + 0.3, float(rng.uniform(lo[2] + 0.5, hi[2] - 0.5))),
              float(rng.uniform(0.4, 1.0)), float(rng.uniform(2.0, 4.5)), _colour(rng, 0.85, 1.0))
        for _ in range(int(rng.integers(1, 4))))
    room = Room(lo, hi, wall_colour, _colour(rng, 0.25, 0.65), _colour(rng, 0.8, 0.97), str(rng.choice(floor_textures)),
                tuple(boxes), wall_texture="flat" if plain_walls else str(rng.choice(wall_textures)),
                wall_texture_scale=float(rng.uniform(0.7, 1.5)), floor_texture_scale=float(rng.uniform(0.7, 1.4)),
                lights=lights, ambient=float(rng.uniform(0.25, 0.5)))
    return Scene(room, tuple(footprints))

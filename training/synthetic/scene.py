"""Random furnished rooms for the synthetic video generator (rendered by :mod:`.room`).

A room is an axis-aligned box (world frame of :mod:`.room`: x right, y down, z forward; the floor is
``y = FLOOR_Y``) whose walls and ceiling are flat colours (the large textureless surfaces that make
indoor self-supervision hard), with a textured floor (planks, tiles or carpet), rugs, furniture built
from boxes (tables and desks on legs, chairs with backs, beds, sofas, cabinets, shelves), small
textured objects on the furniture (books, boxes, lamps) and wall items (pictures, a door, windows,
a whiteboard). Everything is a pure function of the random generator passed in.

Furniture footprints are kept for the trajectory planner (:mod:`.trajectory`), which keeps the camera
out of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from training.synthetic.room import LABEL, Box, Room

FLOOR_Y = 1.2  # world y of the floor (the camera-height reference: height = FLOOR_Y - camera y)
WALL_TEXTURES = ("flat",)
FLOOR_TEXTURES = ("stripes", "checker", "noise")
OBJECT_TEXTURES = ("noise", "stripes", "checker")


@dataclass(frozen=True)
class Scene:
    """A room and the floor footprints ``(x0, z0, x1, z1)`` the camera must keep clear of."""

    room: Room
    footprints: tuple[tuple[float, float, float, float], ...]

    def is_free(self, x: float, z: float, margin: float) -> bool:
        """Whether a camera at floor position (x, z) keeps ``margin`` metres from walls and furniture."""
        lo, hi = self.room.lo, self.room.hi
        if not (lo[0] + margin <= x <= hi[0] - margin and lo[2] + margin <= z <= hi[2] - margin):
            return False
        return all(not (x0 - margin < x < x1 + margin and z0 - margin < z < z1 + margin)
                   for x0, z0, x1, z1 in self.footprints)


def _colour(rng: np.random.Generator, lo: float, hi: float) -> tuple[float, float, float]:
    return tuple(float(c) for c in rng.uniform(lo, hi, 3))


def _legs(x0, z0, x1, z1, top_y, thickness, label, colour) -> list[Box]:
    """Four legs under a top spanning [x0, x1] x [z0, z1] whose underside is at ``top_y``."""
    t = thickness
    return [Box((x, top_y, z), (x + t, FLOOR_Y, z + t), label, colour)
            for x in (x0, x1 - t) for z in (z0, z1 - t)]


def _furniture(kind: str, x0: float, z0: float, sx: float, sz: float, rng: np.random.Generator) -> list[Box]:
    """Boxes of one piece of furniture with footprint [x0, x0 + sx] x [z0, z0 + sz]."""
    x1, z1 = x0 + sx, z0 + sz
    colour, texture = _colour(rng, 0.15, 0.8), str(rng.choice(OBJECT_TEXTURES))
    f = FLOOR_Y
    if kind in ("table", "desk"):
        top = f - rng.uniform(0.7, 0.78)
        return [Box((x0, top - 0.04, z0), (x1, top, z1), LABEL[kind], colour, texture),
                *_legs(x0, z0, x1, z1, top, 0.05, LABEL[kind], colour)]
    if kind == "chair":
        seat = f - 0.45
        back = Box((x0, seat - 0.5, z1 - 0.05), (x1, seat, z1), LABEL["chair"], colour, "flat")
        return [Box((x0, seat - 0.04, z0), (x1, seat, z1), LABEL["chair"], colour, "flat"), back,
                *_legs(x0, z0, x1, z1, seat, 0.04, LABEL["chair"], colour)]
    if kind == "bed":
        pillow = Box((x0 + 0.1, f - 0.62, z1 - 0.45), (x1 - 0.1, f - 0.5, z1 - 0.1), LABEL["pillow"],
                     _colour(rng, 0.7, 0.95), "flat")
        return [Box((x0, f - 0.5, z0), (x1, f, z1), LABEL["bed"], colour, "noise"), pillow]
    if kind == "sofa":
        return [Box((x0, f - 0.42, z0), (x1, f, z1), LABEL["sofa"], colour, "noise"),
                Box((x0, f - 0.85, z1 - 0.2), (x1, f - 0.42, z1), LABEL["sofa"], colour, "noise")]
    height = {"cabinet": rng.uniform(0.8, 1.1), "bookshelf": rng.uniform(1.6, 2.0), "dresser": rng.uniform(0.8, 1.0),
              "shelves": rng.uniform(1.2, 1.8), "night stand": 0.55}[kind]
    texture = "stripes" if kind in ("bookshelf", "shelves") else texture
    return [Box((x0, f - height, z0), (x1, f, z1), LABEL[kind], colour, texture)]


SIZES = {  # footprint ranges (x, z) in metres
    "table": ((0.8, 1.6), (0.6, 1.0)), "desk": ((1.0, 1.6), (0.5, 0.8)), "chair": ((0.42, 0.5), (0.42, 0.5)),
    "bed": ((1.2, 1.8), (1.9, 2.1)), "sofa": ((1.5, 2.2), (0.8, 0.95)), "cabinet": ((0.5, 1.2), (0.4, 0.6)),
    "bookshelf": ((0.8, 1.4), (0.3, 0.4)), "dresser": ((0.8, 1.4), (0.45, 0.55)), "shelves": ((0.6, 1.2), (0.3, 0.4)),
    "night stand": ((0.4, 0.5), (0.4, 0.5)),
}
TOP_SURFACES = ("table", "desk", "cabinet", "dresser", "night stand")


def _small_objects(boxes: list[Box], rng: np.random.Generator) -> list[Box]:
    """Books, boxes and lamps standing on the top of flat furniture."""
    out = []
    surfaces = {LABEL[k] for k in TOP_SURFACES}
    for box in boxes:
        wide = min(box.hi[0] - box.lo[0], box.hi[2] - box.lo[2]) >= 0.3  # a top, not a leg
        if box.label not in surfaces or not wide or rng.random() < 0.3:  # some tops stay bare
            continue
        for _ in range(int(rng.integers(1, 4))):
            kind = str(rng.choice(["books", "box", "lamp"]))
            sx, sz = rng.uniform(0.1, 0.3), rng.uniform(0.1, 0.25)
            if box.hi[0] - box.lo[0] <= sx + 0.02 or box.hi[2] - box.lo[2] <= sz + 0.02:
                continue
            x0 = rng.uniform(box.lo[0], box.hi[0] - sx)
            z0 = rng.uniform(box.lo[2], box.hi[2] - sz)
            h = {"books": rng.uniform(0.04, 0.25), "box": rng.uniform(0.08, 0.3), "lamp": rng.uniform(0.3, 0.5)}[kind]
            out.append(Box((x0, box.lo[1] - h, z0), (x0 + sx, box.lo[1], z0 + sz), LABEL[kind],
                           _colour(rng, 0.1, 0.95), str(rng.choice(OBJECT_TEXTURES))))
    return out


def _wall_items(lo, hi, rng: np.random.Generator) -> list[Box]:
    """Pictures, a door, windows and a whiteboard as thin boxes on the four walls."""
    items = []
    walls = [(0, lo[0], +1), (0, hi[0], -1), (2, lo[2], +1), (2, hi[2], -1)]  # (axis, plane, inward sign)
    for axis, plane, inward in walls:
        along = 2 if axis == 0 else 0
        span = (lo[along] + 0.3, hi[along] - 0.3)
        for kind in (str(k) for k in rng.choice(["picture", "door", "window", "whiteboard", "none"], size=2)):
            width = {"door": 0.9, "window": rng.uniform(0.8, 1.6), "whiteboard": 1.4}.get(kind, rng.uniform(0.4, 1))
            if kind == "none" or span[1] - span[0] < width:
                continue
            start = rng.uniform(span[0], span[1] - width)
            top, bottom = {"door": (FLOOR_Y - 2.05, FLOOR_Y), "window": (FLOOR_Y - 2.1, FLOOR_Y - 0.9),
                           "whiteboard": (FLOOR_Y - 2.0, FLOOR_Y - 1.0)}.get(kind, (FLOOR_Y - 2.0, FLOOR_Y - 1.4))
            depth = (plane, plane + inward * 0.03)
            a, b = min(depth), max(depth)
            lo_pt = [0.0, top, 0.0]
            hi_pt = [0.0, bottom, 0.0]
            lo_pt[axis], hi_pt[axis] = a, b
            lo_pt[along], hi_pt[along] = start, start + width
            fixed = {"window": (0.85, 0.92, 1.0), "whiteboard": (0.95, 0.95, 0.95)}
            colour = fixed.get(kind, _colour(rng, 0.1, 0.9))
            texture = "checker" if kind == "picture" else "flat"
            items.append(Box(tuple(lo_pt), tuple(hi_pt), LABEL[kind], colour, texture))
    return items


def random_scene(rng: np.random.Generator) -> Scene:
    """A furnished room of 3.5-8 m by 3.5-9 m, 2.4-3.2 m high (see the module docstring)."""
    width, length, height = rng.uniform(3.5, 8.0), rng.uniform(3.5, 9.0), rng.uniform(2.4, 3.2)
    lo = (-width / 2, FLOOR_Y - height, -1.5)
    hi = (width / 2, FLOOR_Y, length - 1.5)
    boxes: list[Box] = []
    footprints: list[tuple[float, float, float, float]] = []
    kinds = list(SIZES)
    for _ in range(int(rng.integers(4, 10))):
        kind = str(rng.choice(kinds))
        (ax, bx), (az, bz) = SIZES[kind]
        sx, sz = rng.uniform(ax, bx), rng.uniform(az, bz)
        if rng.random() < 0.5:
            sx, sz = sz, sx  # rotated by 90 degrees
        for _attempt in range(10):
            against_wall = rng.random() < 0.6
            x0 = rng.uniform(lo[0] + 0.05, hi[0] - sx - 0.05)
            z0 = rng.uniform(lo[2] + 0.05, hi[2] - sz - 0.05)
            if against_wall:
                x0 = lo[0] + 0.02 if rng.random() < 0.5 else hi[0] - sx - 0.02
            candidate = (x0, z0, x0 + sx, z0 + sz)
            if all(candidate[2] + 0.3 < f[0] or f[2] + 0.3 < candidate[0] or candidate[3] + 0.3 < f[1]
                   or f[3] + 0.3 < candidate[1] for f in footprints):
                footprints.append(candidate)
                boxes.extend(_furniture(kind, x0, z0, sx, sz, rng))
                break
    boxes.extend(_small_objects(boxes, rng))
    for _ in range(int(rng.integers(0, 3))):  # rugs: thin textured boxes on the floor
        sx, sz = rng.uniform(1.0, 2.5), rng.uniform(0.8, 2.0)
        x0, z0 = rng.uniform(lo[0], max(lo[0], hi[0] - sx)), rng.uniform(lo[2], max(lo[2], hi[2] - sz))
        boxes.append(Box((x0, FLOOR_Y - 0.01, z0), (x0 + sx, FLOOR_Y, z0 + sz), LABEL["floor mat"],
                         _colour(rng, 0.2, 0.8), str(rng.choice(OBJECT_TEXTURES))))
    boxes.extend(_wall_items(lo, hi, rng))
    wall = _colour(rng, 0.55, 0.95)
    room = Room(lo, hi, wall, _colour(rng, 0.25, 0.6), _colour(rng, 0.8, 0.97),
                str(rng.choice(FLOOR_TEXTURES)), tuple(boxes))
    return Scene(room, tuple(footprints))

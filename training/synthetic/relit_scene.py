"""The ``relit`` room style: the plain rooms' furniture in another building's materials and light.

What a robot meets when it moves to a new building with the same kinds of furniture: the layout
and furniture of :func:`.scene.random_scene` (so the geometry stays within what the shipped model
learnt), but every surface re-dressed with the textures of :mod:`.rich_scene` (wood, fabric,
planks, tiles, wallpaper; about 40 % of the rooms keep painted walls) and lit by one to three
tinted point lights with an ambient share instead of the plain style's fixed shading. With another
camera height (``--camera-height``) it is the "new building" of ``bench/adapt_building.py``.

Everything is a pure function of the random generator passed in.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from training.synthetic.rich_scene import FLOOR_TEXTURES, FURNITURE_TEXTURES, WALL_TEXTURES
from training.synthetic.room import Box, Light
from training.synthetic.scene import Scene, _colour, random_scene


def _dressed(box: Box, rng: np.random.Generator) -> Box:
    texture = str(rng.choice(FURNITURE_TEXTURES)) if rng.random() < 0.7 else "flat"
    return replace(box, texture=texture, texture_scale=float(rng.uniform(0.7, 1.5)),
                   texture_phase=float(rng.uniform(0, 10)))


def relit_scene(rng: np.random.Generator) -> Scene:
    """A plain room (same draws as :func:`.scene.random_scene`) re-dressed and re-lit (module docstring)."""
    scene = random_scene(rng)
    room = scene.room
    lo, hi = room.lo, room.hi
    lights = tuple(
        Light((float(rng.uniform(lo[0] + 0.5, hi[0] - 0.5)), lo[1] + 0.3, float(rng.uniform(lo[2] + 0.5, hi[2] - 0.5))),
              float(rng.uniform(0.4, 1.0)), float(rng.uniform(2.0, 4.5)), _colour(rng, 0.85, 1.0))
        for _ in range(int(rng.integers(1, 4))))
    painted = rng.random() < 0.4
    room = replace(room, boxes=tuple(_dressed(b, rng) for b in room.boxes),
                   floor_texture=str(rng.choice(FLOOR_TEXTURES)),
                   wall_texture="flat" if painted else str(rng.choice(WALL_TEXTURES)),
                   wall_texture_scale=float(rng.uniform(0.7, 1.5)), floor_texture_scale=float(rng.uniform(0.7, 1.4)),
                   lights=lights, ambient=float(rng.uniform(0.25, 0.5)))
    return Scene(room, scene.footprints)

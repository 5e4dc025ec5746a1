"""Tiny generated rich rooms shared by the tests of the per-frame fitting tools (seed 57, docs/data.md)."""

from __future__ import annotations

from pathlib import Path

from training.synthetic.generate import render_sequence, write_folder


def write_tiny_rich_rooms(folder: Path, sequences: int = 2, frames: int = 8) -> Path:
    """``sequences`` hand-held sequences of ``frames`` 64x96 frames in ``folder/seq_NNNN``; returns ``folder``."""
    for index in range(sequences):
        write_folder(render_sequence(57, index, frames, 64, 96, "handheld", style="rich"), folder / f"seq_{index:04d}")
    return folder

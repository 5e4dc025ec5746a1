"""The stand-in demo writes depth and semantic pictures and a montage."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def test_demo_writes_pictures(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo.py"), "--output", str(tmp_path), "--frames", "2",
         "--size", "64x96", "--image-size", "60x80"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    for index in range(2):
        for kind in ("image", "depth", "semantic"):
            picture = np.asarray(Image.open(tmp_path / f"frame{index:02d}_{kind}.png"))
            assert picture.shape == (60, 80, 3), kind
    montage = np.asarray(Image.open(tmp_path / "montage.png"))
    assert montage.shape == (120, 400, 3)
    assert str(tmp_path / "montage.png") in result.stderr  # logging prints where the pictures are
    image = np.asarray(Image.open(tmp_path / "frame00_image.png"))
    assert image.std() > 10  # a rendered room, not a blank frame

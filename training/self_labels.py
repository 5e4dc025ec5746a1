"""``gam-depth-self-labels``: proxy semantic labels from the depth model's own semantic head.

A robot's bags carry no labels, so the semantic constraint has nothing to learn from when
fine-tuning. Self-training fills the gap: the model being adapted labels the frames itself
before fine-tuning (the labels stay fixed while it trains), so the semantic loss keeps the
shared encoder's semantic features - and the head's floor, wall and furniture classes the
floor scale and the obstacle outputs rely on - from drifting while the depth adapts. Pixels whose
top class probability is under ``--min-confidence`` are written as void (255) and do not count.

Writes ``<labels_dir>/<key>.png`` exactly like ``gam-depth-proxy-labels`` (the loaders read both
the same way). Usage::

    python -m training.self_labels --checkpoint models/demo/gam_depth_demo.safetensors \\
        --config config/finetune_rosbag.yaml --set data.path=my_bag --min-confidence 0.5
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

from gam_depth_ros.checkpoint import CheckpointError, build_model, load_checkpoint
from gam_depth_ros.classes import VOID_LABEL
from gam_depth_ros.inference.preprocessing import resize_rgb
from training.data.common import DataError, resize_nearest
from training.proxy_labels import ClassMap, write_sequences_labels

LOG = logging.getLogger("training.self_labels")


class SelfSegmenter:
    """The semantic head of a depth checkpoint behind ``predict`` (the interface of ``OnnxSegmenter``).

    Parameters
    ----------
    checkpoint:
        A model checkpoint (``.safetensors`` or a training ``.pt``) readable by
        :func:`gam_depth_ros.checkpoint.load_checkpoint`.
    min_confidence:
        Pixels whose softmax maximum is below this are void (0 keeps every pixel).
    """

    def __init__(self, checkpoint: str | Path, min_confidence: float = 0.0) -> None:
        import torch

        if not 0.0 <= min_confidence < 1.0:
            raise DataError(f"min_confidence must be in [0, 1), got {min_confidence}")
        try:
            loaded = load_checkpoint(checkpoint)
            self.model = build_model(loaded)
        except CheckpointError as error:
            raise DataError(str(error)) from error
        self.input_size = (loaded.model_config.height, loaded.model_config.width)
        self.min_confidence = float(min_confidence)
        self._torch = torch
        self.void_share = 0.0  # share of void pixels in the last prediction

    def probabilities(self, rgb: np.ndarray) -> np.ndarray:
        """``[C,h,w]`` float32 class probabilities at the network size of an ``[H,W,3]`` uint8 RGB frame."""
        torch = self._torch
        x = torch.from_numpy(resize_rgb(rgb, *self.input_size).copy()).permute(2, 0, 1)[None].float().div_(255.0)
        with torch.inference_mode():
            _, logits = self.model(x)
        return torch.softmax(logits[0].float(), dim=0).numpy()

    def predict(self, rgb: np.ndarray) -> np.ndarray:
        """Class ids ``[H,W]`` int64 at the frame's size; low-confidence pixels are ``VOID_LABEL``."""
        probs = self.probabilities(rgb)
        ids = probs.argmax(0).astype(np.int64)
        if self.min_confidence > 0:
            void = probs.max(0) < self.min_confidence
            ids[void] = VOID_LABEL
            self.void_share = float(void.mean())
        return resize_nearest(ids, *rgb.shape[:2])


def write_self_labels(parts: list, checkpoint: str | Path, min_confidence: float = 0.0,
                      out_dir: str | Path | None = None, overwrite: bool = False) -> int:
    """Label every target frame of the sequences ``parts`` with ``checkpoint``'s semantic head; files written."""
    return write_sequences_labels(parts, SelfSegmenter(checkpoint, min_confidence), ClassMap.identity(), out_dir,
                                  overwrite)


def main(argv: list[str] | None = None) -> int:
    from training.data.cli_args import add_dataset_arguments, dataset_from_args

    parser = argparse.ArgumentParser(prog="gam-depth-self-labels", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="the model whose semantic head labels the frames")
    parser.add_argument("--min-confidence", type=float, default=0.5,
                        help="pixels whose top class probability is lower become void (default 0.5)")
    parser.add_argument("--out-dir", help="output folder (default: each sequence's labels folder)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing label files")
    add_dataset_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        count = write_self_labels(dataset_from_args(args), args.checkpoint, args.min_confidence, args.out_dir,
                                  args.overwrite)
    except DataError as error:
        LOG.error("error: %s", error)
        return 2
    LOG.info("wrote %d label images", count)
    return 0


if __name__ == "__main__":
    sys.exit(main())

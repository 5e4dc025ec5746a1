"""Command-line selection of a training data source, shared by the offline tools.

``--config train.yaml`` takes the config's ``data`` section (and network size); otherwise
``--source``, ``--path``, ``--split-file``, ``--option key=value`` (value parsed as YAML) and
``--size H W`` describe it directly. Tools iterate every possible target frame, so the dataset is
built with ``frame_ids = (0,)`` and without augmentation; several sequences (a folder of them, many
bags) come as a list, each writing its side files into its own folders.
"""

from __future__ import annotations

import argparse

import yaml

from training.data.common import DataError, FrameDataset


def add_dataset_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the data-source options to ``parser``."""
    group = parser.add_argument_group("data source (a training config, or the fields of its data section)")
    group.add_argument("--config", help="training config YAML; its data section and model size are used")
    group.add_argument("--source", choices=("nyu_raw", "folder", "rosbag"), help="data source when no --config")
    group.add_argument("--path", default="", help="dataset root / image folder / rosbag (rosbag: also a glob)")
    group.add_argument("--split-file", default="", help="split file (nyu_raw)")
    group.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                       help="source option (repeatable), value parsed as YAML, e.g. --option stride=2")
    group.add_argument("--size", nargs=2, type=int, metavar=("H", "W"), help="network size (default 288 384)")


def dataset_from_args(args: argparse.Namespace) -> list[FrameDataset]:
    """The sequences of the dataset the arguments describe (see the module docstring)."""
    from training.config import DataConfig, load_training_config
    from training.data.factory import make_dataset, sequences

    options = {}
    for item in args.option:
        key, sep, text = item.partition("=")
        if not sep:
            raise DataError(f"--option {item!r}: expected KEY=VALUE")
        options[key.strip()] = yaml.safe_load(text)
    if args.config:
        config = load_training_config(args.config)
        data = config.data
        if options:
            data = DataConfig(source=data.source, path=data.path, split_file=data.split_file,
                              options={**data.options, **options}, augment=None)
        height, width = config.model.height, config.model.width
    else:
        if not args.source:
            raise DataError("give --config or --source (with --path)")
        data = DataConfig(source=args.source, path=args.path, split_file=args.split_file, options=options,
                          augment=None)
        height, width = 288, 384
    if args.size:
        height, width = args.size
    dataset = make_dataset(data, frame_ids=(0,), height=height, width=width, train=False)
    parts = sequences(dataset)
    if not all(isinstance(part, FrameDataset) for part in parts):
        raise DataError(f"source {data.source!r} has no target frames to process")
    return parts


def check_out_dir(parts: list[FrameDataset], out_dir: str | None) -> None:
    """``--out-dir`` names one folder: refuse it for data of several sequences (each has its own)."""
    if out_dir and len(parts) > 1:
        raise DataError("--out-dir names one folder, but the data has several sequences (each has its own)")

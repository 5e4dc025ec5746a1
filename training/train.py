"""Command line: ``python -m training.train --config config/train_tiny.yaml [--set key=value ...] [--resume [PATH]]``.

Single process on CUDA (with AMP) when available, else CPU. Several GPUs or nodes:
``torchrun --nproc_per_node 4 -m training.train --config config/train_nyu.yaml`` (DDP; gloo on CPU).
``--resume`` continues from the newest checkpoint in the run's ``output_dir`` (or from PATH) with
the optimiser, scheduler, counters and random generators restored; a newest checkpoint that cannot
be read is set aside (``*.pt.corrupt``) with a warning and the previous one is used.

Exit status: 0 done; 2 config, data or checkpoint error; 3 too many non-finite losses; 4 a
checkpoint could not be written (disk full: the earlier checkpoints are intact, ``--resume`` later).
"""

from __future__ import annotations

import argparse
import logging
import sys

from gam_depth_ros.checkpoint import CheckpointError
from gam_depth_ros.config_io import ConfigError
from training.checkpointing import CheckpointStorageError
from training.config import load_training_config
from training.data.common import DataError
from training.distributed import init_distributed, shutdown_distributed
from training.trainer import NonFiniteLossError, Trainer

LOG = logging.getLogger("training")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m training.train", description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="training config YAML (see config/train_nyu.yaml)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config field, value parsed as YAML (repeatable): --set optim.lr=2e-4")
    parser.add_argument("--resume", nargs="?", const="last", default=None, metavar="PATH",
                        help="continue from the newest checkpoint in output_dir, or from PATH")
    parser.add_argument("--cpu", action="store_true", help="train on CPU even when CUDA is available")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        config = load_training_config(args.config, args.overrides)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    info = init_distributed(force_cpu=args.cpu)
    if not info.is_main:
        logging.getLogger().setLevel(logging.WARNING)
    try:
        result = Trainer(config, info, resume=args.resume).fit()
    except NonFiniteLossError as error:
        LOG.error("%s", error)
        return 3
    except (DataError, CheckpointError, FileNotFoundError) as error:
        LOG.error("%s", error)
        return 2
    except CheckpointStorageError as error:
        LOG.error("%s", error)
        return 4
    finally:
        shutdown_distributed()
    LOG.info("done: epoch %d, step %d, %d non-finite batches skipped, last checkpoint %s",
             result.epoch, result.step, result.nan_steps, result.checkpoint)
    return 0


if __name__ == "__main__":
    sys.exit(main())

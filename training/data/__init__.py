"""Training data: every source (NYUv2 raw, image folders, rosbags, synthetic rooms, evaluation sets)
yields the sample schema documented in :mod:`training.data.sample`; :func:`make_dataset` picks the
source named by ``DataConfig.source`` (see :mod:`training.data.factory`)."""

from training.data.factory import SOURCES, build_dataset, make_dataset

__all__ = ["SOURCES", "build_dataset", "make_dataset"]

"""Training data: every source (NYUv2 raw, image folders, rosbags, synthetic rooms, evaluation sets)
yields the sample schema documented in :mod:`training.data.sample`; :func:`make_dataset` picks the
source named by ``DataConfig.source`` (see :mod:`training.data.factory`)."""

__all__ = ["SOURCES", "build_dataset", "make_dataset"]


def __getattr__(name: str):
    # Imported on first use: the factory needs torch, the torch-free modules of this package
    # (poses, errors; used by the synthetic generator) must import without it.
    if name in __all__:
        from training.data import factory

        return getattr(factory, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""Training data: every source (NYUv2 raw, image folders, rosbags, synthetic rooms) yields the
sample schema documented in :mod:`training.data.sample`."""

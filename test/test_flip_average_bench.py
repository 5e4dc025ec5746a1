"""bench/flip_average.py: a backend's network wrapped to average each frame with its mirror image."""

from __future__ import annotations

import numpy as np
from bench_scripts import load_bench
from model_fixtures import SMALL_HEIGHT, SMALL_WIDTH, blocky_scene

from gam_depth_ros.inference import create_backend


def test_flip_average_is_the_mean_of_the_frame_and_its_mirror(small_model):
    from gam_depth_ros.inference.postprocessing import disparity_to_depth
    from gam_depth_ros.inference.preprocessing import to_network_input

    backend = create_backend("onnxruntime", small_model.onnx, threads=1)  # its own: the wrapper is per backend
    image = blocky_scene(SMALL_HEIGHT, SMALL_WIDTH, seed=3)  # at the network size: no resize in the comparison
    plain = backend.infer(image)
    batch = to_network_input(image, SMALL_HEIGHT, SMALL_WIDTH)
    disparity, _ = backend.run_network(batch)
    mirrored, _ = backend.run_network(np.ascontiguousarray(batch[..., ::-1]))
    backend.run_network = load_bench("flip_average").flip_averaged(backend.run_network)
    averaged = backend.infer(image)
    meta = backend.metadata
    expected = disparity_to_depth(0.5 * (disparity + mirrored[:, ::-1]), meta.min_depth, meta.max_depth)
    np.testing.assert_allclose(averaged.depth, expected, rtol=1e-6)
    assert np.abs(averaged.depth - plain.depth).max() > 1e-3  # the random network is not mirror-symmetric
    assert np.array_equal(averaged.labels, plain.labels)  # labels from the frame alone
    # Averaged with its mirror, the prediction of a mirrored frame is the mirrored prediction.
    np.testing.assert_allclose(backend.infer(image[:, ::-1]).depth, averaged.depth[:, ::-1], rtol=1e-5)

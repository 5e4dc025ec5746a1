"""CUDA without TensorRT: the torch backend and the GPU pre/post-processing against the CPU results,
and mixed-precision (AMP) training steps against fp32 ones.

These tests need a CUDA GPU visible to torch and skip otherwise (the development and CI machines have
none). On a GPU machine: ``python -m pytest -q test/test_cuda.py``; ``bench/gpu_session.sh``
runs them first on a lent GPU (docs/benchmarks.md, "On a lent GPU"), where they have not run yet.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from model_fixtures import SMALL_HEIGHT, SMALL_WIDTH

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(),
    reason="needs a CUDA GPU visible to torch; none here, so only the CPU paths of the same code are tested",
)

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "config" / "train_tiny.yaml"


def _scene(height: int, width: int, seed: int) -> np.ndarray:
    """Blocks of random colour: a scene with edges, not per-pixel noise."""
    image = np.random.default_rng(seed).integers(0, 256, (height // 8, width // 8, 3), dtype=np.uint8)
    return np.kron(image, np.ones((8, 8, 1), np.uint8))


def test_gpu_processor_on_cuda_matches_the_numpy_pipeline():
    from gam_depth_ros.inference.gpu_processing import GpuProcessor
    from gam_depth_ros.inference.postprocessing import disparity_to_depth, resize_disparity, resize_labels
    from gam_depth_ros.inference.preprocessing import to_network_input

    processor = GpuProcessor(torch.device("cuda"), torch.cuda.Stream())
    image = _scene(120, 160, seed=3)[::-1]  # a negative-stride view
    batch = processor.preprocess(image, SMALL_HEIGHT, SMALL_WIDTH)
    processor.synchronize()
    assert batch.device.type == "cuda" and batch.shape == (1, 3, SMALL_HEIGHT, SMALL_WIDTH)
    expected_batch = to_network_input(np.ascontiguousarray(image), SMALL_HEIGHT, SMALL_WIDTH)
    assert np.abs(batch.cpu().numpy() - expected_batch).max() <= 1.0 / 255 + 1e-6  # at most one grey level
    disparity = torch.rand(SMALL_HEIGHT, SMALL_WIDTH, generator=torch.Generator().manual_seed(0))
    labels = torch.randint(0, 40, (SMALL_HEIGHT, SMALL_WIDTH), dtype=torch.uint8)
    depth, ids = processor.postprocess(disparity.cuda(), labels.cuda(), (120, 160), 0.1, 10.0)
    expected = disparity_to_depth(resize_disparity(disparity.numpy(), 120, 160), 0.1, 10.0)
    assert depth.dtype == np.float32 and ids.dtype == np.uint8 and depth.shape == ids.shape == (120, 160)
    np.testing.assert_allclose(depth, expected, rtol=5e-4)
    np.testing.assert_array_equal(ids, resize_labels(labels.numpy(), 120, 160))


def test_torch_backend_on_cuda_matches_cpu(small_model):
    from gam_depth_ros.export import verification_images
    from gam_depth_ros.inference.torch_backend import TorchBackend

    cuda = TorchBackend(small_model.safetensors, device="cuda")
    cpu = TorchBackend(small_model.safetensors, device="cpu")
    assert cuda.model.encoder.conv1.weight.device.type == "cuda"
    for batch in verification_images(SMALL_HEIGHT, SMALL_WIDTH, seed=7):
        disparity, labels = cuda.run_network(batch)
        ref_disparity, ref_labels = cpu.run_network(batch)
        assert disparity.shape == (SMALL_HEIGHT, SMALL_WIDTH) and disparity.dtype == np.float32
        # cuDNN may run the fp32 convolutions in TF32 (~1e-3 relative): disparity in (0, 1)
        np.testing.assert_allclose(disparity, ref_disparity, atol=2e-3)
        assert (labels == ref_labels).mean() >= 0.98
    image = _scene(240, 320, seed=5)
    on_gpu, on_cpu = cuda.infer(image), cpu.infer(image)
    assert on_gpu.depth.shape == (240, 320) and on_gpu.labels.dtype == np.uint8
    assert np.median(np.abs(on_gpu.depth - on_cpu.depth) / on_cpu.depth) < 2e-3


def _tiny_cuda_trainer(output_dir: Path, amp: bool):
    from training.config import load_training_config
    from training.distributed import DistInfo
    from training.trainer import Trainer

    config = load_training_config(TINY, [
        f"train.output_dir={output_dir}", "validation=null", "train.log_every_steps=1", "train.progress_bar=false",
        "train.checkpoint_every_epochs=0", "optim.milestones=[]",
        "data.options={num_samples: 2, seed: 0, step_m: 0.08}", "train.batch_size=2", "train.epochs=100",
        "train.max_steps=20", "loss.semantic_epochs=100",
        "train.num_workers=0", f"train.amp={str(amp).lower()}",
    ])
    return Trainer(config, DistInfo(device=torch.device("cuda")))


def test_amp_training_steps_on_cuda_agree_with_fp32_and_learn(tmp_path):
    """The trainer's own step on CUDA: autocast (bf16 on Ampere and later) from the same weights and
    batch gives the fp32 loss within bf16 rounding, and 20 AMP steps overfit two clips like fp32 does."""
    fp32, amp = _tiny_cuda_trainer(tmp_path / "fp32", amp=False), _tiny_cuda_trainer(tmp_path / "amp", amp=True)
    assert fp32.amp_dtype is None and amp.amp_dtype in (torch.bfloat16, torch.float16)
    for a, b in zip(fp32.model.parameters(), amp.model.parameters()):
        assert torch.equal(a, b)  # same seed, same initial weights
    batch = next(iter(fp32.loader))
    terms_fp32, _, _ = fp32._train_step(fp32.model, batch, True)
    terms_amp, _, _ = amp._train_step(amp.model, batch, True)
    assert terms_fp32 is not None and terms_amp is not None
    for key in ("total", "photometric"):
        assert float(terms_amp[key]) == pytest.approx(float(terms_fp32[key]), rel=2e-2), key

    fresh = _tiny_cuda_trainer(tmp_path / "run", amp=True)
    rows: list[dict[str, float]] = []
    fresh._log = lambda terms, data_time, step_time: rows.append(terms)
    result = fresh.fit()
    assert len(rows) == 20 and result.nan_steps == 0
    first = sum(r["total"] for r in rows[:3]) / 3
    last = sum(r["total"] for r in rows[-3:]) / 3
    assert last < 0.85 * first, (first, last)  # the CPU fp32 run (test_trainer.py): x0.73

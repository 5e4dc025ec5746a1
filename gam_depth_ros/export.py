"""``gam-depth-export``: checkpoint -> one self-contained ONNX file + metadata JSON, verified.

The graph takes ``image`` [1,3,H,W] float RGB in [0,1] and returns ``disparity`` [1,1,H,W] and
``semantic`` [1,H,W] uint8 class ids (argmax inside the graph, so a runtime copies 1 byte per
pixel instead of 40 floats); ``--semantic-logits`` adds ``semantic_logits`` [1,C,H,W]. Static
shapes, as TensorRT prefers. After writing, the file is checked with ``onnx.checker`` and run in
ONNX Runtime against torch; a mismatch is an error. ``--fp16-weights`` stores the weights as
float16 (half the file, float32 compute; :mod:`gam_depth_ros.onnx_weights`) and checks parity with
the looser float16 tolerances.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from gam_depth_ros import __version__
from gam_depth_ros.checkpoint import CheckpointError, build_model, file_sha256, load_checkpoint, save_checkpoint
from gam_depth_ros.metadata import ModelMetadata, write_metadata

LOG = logging.getLogger("gam_depth_ros.export")
DEFAULT_OPSET = 17
MAX_DISPARITY_DIFF = 1e-4
MIN_LABEL_AGREEMENT = 0.999
#: Parity with float16-stored weights: rounding every weight to 11 bits moves outputs a little.
FP16_MAX_DISPARITY_DIFF = 5e-3
FP16_MIN_LABEL_AGREEMENT = 0.99


class ExportError(RuntimeError):
    """Export or its verification failed."""


def _register_constant_pad() -> None:
    """Export ``F.pad`` / ``ReflectionPad2d`` as one Pad node with constant pads.

    The stock TorchScript symbolic computes the pad amounts at run time (ConstantOfShape, Slice,
    Transpose, Cast per pad), which leaves output shapes symbolic and hides static shapes from
    TensorRT. The pads are known when tracing, so emit them as a constant.
    """
    import torch
    from torch.onnx import symbolic_helper

    def pad(g, input, padding, mode, value):
        amounts = symbolic_helper._get_const(padding, "is", "pad")
        mode_name = symbolic_helper._get_const(mode, "s", "mode")
        if len(amounts) != 4 or mode_name not in ("reflect", "replicate"):
            raise ExportError(f"unsupported pad {amounts} mode {mode_name!r} in export")
        left, right, top, bottom = amounts
        pads = torch.tensor([0, 0, top, left, 0, 0, bottom, right], dtype=torch.int64)
        onnx_mode = "edge" if mode_name == "replicate" else "reflect"
        return g.op("Pad", input, g.op("Constant", value_t=pads), mode_s=onnx_mode)

    torch.onnx.register_custom_op_symbolic("aten::pad", pad, DEFAULT_OPSET)


def _graph_module(model, semantic_logits: bool):
    import torch
    from torch import nn

    class ExportGraph(nn.Module):
        """The exported computation: network + argmax over classes."""

        def __init__(self) -> None:
            super().__init__()
            self.net = model

        def forward(self, image: torch.Tensor):
            disparity, logits = self.net(image)
            labels = torch.argmax(logits, dim=1).to(torch.uint8)
            if semantic_logits:
                return disparity, labels, logits
            return disparity, labels

    return ExportGraph().eval()


@dataclass(frozen=True)
class ParityReport:
    """Torch vs ONNX Runtime on the verification inputs."""

    max_disparity_diff: float
    label_agreement: float
    fp16_weights: bool = False

    @property
    def limits(self) -> tuple[float, float]:
        """(max disparity difference, min label agreement) this export must meet."""
        if self.fp16_weights:
            return FP16_MAX_DISPARITY_DIFF, FP16_MIN_LABEL_AGREEMENT
        return MAX_DISPARITY_DIFF, MIN_LABEL_AGREEMENT

    @property
    def ok(self) -> bool:
        max_diff, min_agreement = self.limits
        return self.max_disparity_diff <= max_diff and self.label_agreement >= min_agreement


def export_onnx(
    model,
    output: str | Path,
    metadata: ModelMetadata,
    opset: int = DEFAULT_OPSET,
    semantic_logits: bool = False,
    fp16_weights: bool = False,
) -> ModelMetadata:
    """Export ``model`` (a ``GamDepthNet`` in eval mode) to ``output`` and write its metadata.

    Returns the metadata as written (output names and opset filled in).
    """
    import onnx
    import torch

    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    graph = _graph_module(model.eval(), semantic_logits)
    example = torch.rand(1, 3, metadata.input_height, metadata.input_width)
    output_names = ["disparity", "semantic"] + (["semantic_logits"] if semantic_logits else [])
    _register_constant_pad()
    with torch.no_grad():
        torch.onnx.export(
            graph, (example,), str(output), input_names=["image"], output_names=output_names,
            opset_version=opset, dynamo=False, do_constant_folding=True,
        )
    onnx.checker.check_model(str(output), full_check=True)
    if fp16_weights:
        from gam_depth_ros.onnx_weights import store_weights_as_float16

        store_weights_as_float16(output)
    metadata = replace(
        metadata,
        input_name="image",
        disparity_output="disparity",
        semantic_output="semantic",
        semantic_logits_output="semantic_logits" if semantic_logits else None,
        opset=opset,
        weights_dtype="float16" if fp16_weights else "float32",
        exporter={"gam_depth_ros": __version__, "torch": torch.__version__, "onnx": onnx.__version__},
    )
    write_metadata(output, metadata)
    return metadata


def verification_images(height: int, width: int, seed: int = 0) -> np.ndarray:
    """[3, 1, 3, H, W] float32 inputs: uniform noise, a smooth gradient, a blocky scene."""
    rng = np.random.default_rng(seed)
    noise = rng.random((1, 3, height, width), dtype=np.float32)
    yy, xx = np.meshgrid(np.linspace(0, 1, height), np.linspace(0, 1, width), indexing="ij")
    gradient = np.stack([xx, yy, 1 - xx * yy])[None].astype(np.float32)
    blocks = np.kron(rng.random((1, 3, height // 16, width // 16)), np.ones((1, 1, 16, 16))).astype(np.float32)
    return np.stack([noise, gradient, blocks])


def verify_onnx(model, onnx_path: str | Path, metadata: ModelMetadata) -> ParityReport:
    """Compare ONNX Runtime (CPU) with torch on :func:`verification_images`."""
    import onnxruntime as ort
    import torch

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    worst_diff, agree, total = 0.0, 0, 0
    for batch in verification_images(metadata.input_height, metadata.input_width):
        with torch.no_grad():
            disparity_t, logits_t = model(torch.from_numpy(batch))
        labels_t = logits_t.argmax(dim=1).numpy()
        disparity_o, labels_o = session.run(["disparity", "semantic"], {"image": batch})
        worst_diff = max(worst_diff, float(np.abs(disparity_o - disparity_t.numpy()).max()))
        agree += int((labels_o == labels_t).sum())
        total += labels_t.size
    return ParityReport(worst_diff, agree / total, metadata.weights_dtype == "float16")


def export_checkpoint(
    checkpoint_path: str | Path,
    output: str | Path,
    height: int | None = None,
    width: int | None = None,
    opset: int = DEFAULT_OPSET,
    semantic_logits: bool = False,
    fp16_weights: bool = False,
) -> tuple[ModelMetadata, ParityReport]:
    """Load, export, verify. Raises :class:`ExportError` if parity fails (the files are removed)."""
    checkpoint = load_checkpoint(checkpoint_path)
    model = build_model(checkpoint)
    try:
        config = replace(checkpoint.model_config, height=height or checkpoint.model_config.height,
                         width=width or checkpoint.model_config.width)
    except ValueError as error:
        raise ExportError(f"export size: {error}") from error
    metadata = ModelMetadata(
        input_height=config.height,
        input_width=config.width,
        min_depth=config.min_depth,
        max_depth=config.max_depth,
        depth_scale=config.depth_scale,
        source_checkpoint=Path(checkpoint_path).name,
        source_checkpoint_sha256=file_sha256(checkpoint_path),
        training_config=checkpoint.training_config,
    )
    metadata = export_onnx(model, output, metadata, opset, semantic_logits, fp16_weights)
    report = verify_onnx(model, output, metadata)
    if not report.ok:
        max_diff, min_agreement = report.limits
        Path(output).unlink(missing_ok=True)
        Path(output).with_suffix(".json").unlink(missing_ok=True)
        raise ExportError(
            f"{output}: ONNX Runtime disagrees with torch (max disparity diff {report.max_disparity_diff:.2e} "
            f"> {max_diff:g} or label agreement {report.label_agreement:.5f} < {min_agreement}); "
            "the export was removed"
        )
    return metadata, report


def export_random_model(output: str | Path, config, seed: int = 0) -> Path:
    """A seeded random-init network exported (and verified) to ``output``: for stand-ins and
    benchmarks, whose speed and plumbing do not depend on the weights. Its outputs mean nothing."""
    import torch

    from gam_depth_ros.networks import GamDepthNet

    output = Path(output)
    torch.manual_seed(seed)
    checkpoint = save_checkpoint(output.with_suffix(".pt"), GamDepthNet.from_config(config).state_dict(), config)
    export_checkpoint(checkpoint, output)
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gam-depth-export", description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, type=Path, help=".pt or .safetensors checkpoint")
    parser.add_argument("--output", required=True, type=Path, help="output .onnx path (metadata: same stem .json)")
    parser.add_argument("--height", type=int, help="network input height (default: the checkpoint's)")
    parser.add_argument("--width", type=int, help="network input width (default: the checkpoint's)")
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset (>= 17, default {DEFAULT_OPSET})")
    parser.add_argument("--semantic-logits", action="store_true", help="also output semantic_logits [1,C,H,W]")
    parser.add_argument("--fp16-weights", action="store_true",
                        help="store weights as float16 (half the file; compute stays float32)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.opset < 17:
        parser.error("--opset must be at least 17")
    try:
        metadata, report = export_checkpoint(
            args.checkpoint, args.output, args.height, args.width, args.opset, args.semantic_logits,
            args.fp16_weights,
        )
    except (CheckpointError, ExportError) as error:
        LOG.error("export failed: %s", error)
        return 1
    LOG.info(
        "wrote %s (%dx%d, opset %d) and %s; ONNX Runtime vs torch: max disparity diff %.2e, labels agree %.4f%%",
        args.output, metadata.input_height, metadata.input_width, metadata.opset,
        args.output.with_suffix(".json"), report.max_disparity_diff, 100 * report.label_agreement,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

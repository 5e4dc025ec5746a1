"""Count a network's floating-point operations per forward pass with forward hooks.

Convention (the usual one for CNN papers, and the one the benchmark's GFLOP/s figures use):

- ``Conv2d`` and ``Linear``: 2 x multiply-accumulates (one multiply + one add per MAC), i.e.
  ``2 * out_elements * (in_channels / groups) * kernel_h * kernel_w`` for a convolution. Stride,
  padding (including reflection padding), dilation and groups enter through the output size and
  the per-output receptive field. The bias add is *not* counted, as in most published counts.
- Everything else is elementwise or data movement (BatchNorm, ReLU, ELU, max-pool, sigmoid,
  residual adds, nearest up-sampling, concatenation, the input normalisation). It is not part of
  the FLOP figure. With ``count_elementwise=True`` the number of output elements of the leaf
  modules ``BatchNorm*``, ``ReLU``, ``ELU``, ``MaxPool*`` and ``Sigmoid`` is reported separately
  under ``<part>/elementwise`` keys; operations written as functions inside ``forward``
  (``F.interpolate``, ``torch.cat``, ``+``, ``torch.sigmoid``) have no module to hook and are not
  seen at all. For GamDepthNet the hooked elementwise outputs are under 0.1 % of the conv FLOPs.

Parts are the model's top-level children (for :class:`GamDepthNet`: ``encoder``,
``depth_decoder``, ``semantic_decoder``); ``total`` is their sum. GamDepthNet at 288x384 counts
7.99 (encoder) + 6.40 (depth decoder) + 7.64 (semantic decoder) = 22.04 GFLOP, matching the
reference's 14.4 GFLOP for encoder + depth decoder and 22.0 GFLOP for depth + semantics.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

_ELEMENTWISE = (nn.BatchNorm1d, nn.BatchNorm2d, nn.ReLU, nn.ELU, nn.MaxPool2d, nn.Sigmoid)


def conv2d_flops(module: nn.Conv2d, output: Tensor) -> int:
    """2 x multiply-accumulates of ``module`` producing ``output`` [B, C_out, H_out, W_out]."""
    kernel_h, kernel_w = module.kernel_size
    macs_per_output = (module.in_channels // module.groups) * kernel_h * kernel_w
    return 2 * output.numel() * macs_per_output


def linear_flops(module: nn.Linear, output: Tensor) -> int:
    """2 x multiply-accumulates of ``module`` producing ``output`` [..., out_features]."""
    return 2 * output.numel() * module.in_features


def count_flops(
    model: nn.Module,
    height: int,
    width: int,
    batch: int = 1,
    in_channels: int = 3,
    count_elementwise: bool = False,
) -> dict[str, int]:
    """FLOPs of one forward pass of ``model`` on a [batch, in_channels, height, width] input.

    Parameters
    ----------
    model:
        Any module taking one image tensor. It is run once (under ``torch.no_grad`` in eval mode,
        on the device of its first parameter); its train/eval mode is restored afterwards.
    height, width:
        Input size in pixels.
    batch:
        Batch size; FLOPs scale linearly with it.
    in_channels:
        Input channels (3 for RGB).
    count_elementwise:
        Also report ``<part>/elementwise`` output-element counts (see the module docstring).

    Returns
    -------
    dict[str, int]
        FLOPs per top-level child of ``model`` (children without convolutions or linear layers
        are left out; modules owned directly by ``model`` go under ``"other"``) and ``"total"``.
    """
    counts: dict[str, int] = {}
    elementwise: dict[str, int] = {}
    handles = []

    for name, module in model.named_modules():
        part = name.split(".", 1)[0] if name else "other"
        if isinstance(module, nn.Conv2d):
            handles.append(module.register_forward_hook(_adder(counts, part, conv2d_flops)))
        elif isinstance(module, nn.Linear):
            handles.append(module.register_forward_hook(_adder(counts, part, linear_flops)))
        elif count_elementwise and isinstance(module, _ELEMENTWISE):
            handles.append(module.register_forward_hook(_adder(elementwise, part, _elements)))

    was_training = model.training
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(batch, in_channels, height, width, device=device))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)

    result = dict(counts)
    result["total"] = sum(counts.values())
    for part, elements in elementwise.items():
        result[f"{part}/elementwise"] = elements
    return result


def _elements(_module: nn.Module, output: Tensor) -> int:
    return output.numel()


def _adder(counts: dict[str, int], part: str, flops_of):
    def hook(module: nn.Module, _inputs, output) -> None:
        out = output[0] if isinstance(output, (tuple, list)) else output
        counts[part] = counts.get(part, 0) + int(flops_of(module, out))

    return hook


def gflop(flops: float) -> float:
    """FLOPs -> GFLOP (1e9)."""
    return float(flops) / 1e9

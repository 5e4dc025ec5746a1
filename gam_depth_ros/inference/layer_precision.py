"""Which layers to keep in FP32 in an FP16/INT8 TensorRT engine. Pure graph logic, no TensorRT.

Reduced precision is safe for the convolutions but can hurt at the two ends of the network:

- ``input-norm``: the ImageNet normalisation ``(image - mean) / std`` at the input (ONNX ``Sub``,
  ``Div``): every layer between the network input and the first convolution.
- ``heads``: everything after the last convolution of each output (the disparity ``Sigmoid``,
  the semantic ``ArgMax`` and its ``Cast``) runs in FP32, and that last convolution writes its
  result in FP32 (it still computes in reduced precision, so it costs little). An FP16 logit map
  can turn near-ties of two classes into exact ties and flip the argmax.

Selectors (``--fp32-layers``): ``input-norm``, ``heads``, ``none``, or shell-style patterns
(``fnmatch``) on layer names as the ONNX parser names them (e.g. ``*semantic_decoder/heads*``).
A pattern that matches nothing is an error, so a typo does not silently build an FP16 engine.

The graph is described by :class:`LayerInfo` records in topological order, which
``tensorrt_engine`` extracts from a parsed ``INetworkDefinition`` and tests build from an ONNX
graph.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

GROUPS = ("input-norm", "heads")
NONE = "none"
#: Layer kinds (TensorRT ``LayerType`` names and ONNX op types) that end a walk: the heavy layers.
BARRIER_KINDS = frozenset(
    {"CONVOLUTION", "DECONVOLUTION", "MATRIX_MULTIPLY", "Conv", "ConvTranspose", "MatMul", "Gemm"}
)
#: Layer kinds that compute nothing (precision does not apply); walks pass through them.
DATA_KINDS = frozenset({"CONSTANT", "SHAPE", "Constant", "Shape"})
#: Default selectors per precision: FP32 builds need none; INT8 keeps both ends in FP32.
DEFAULT_FP32_LAYERS = {"fp32": (), "fp16": (), "int8": ("input-norm", "heads")}


@dataclass(frozen=True)
class LayerInfo:
    """One layer of a network, enough to walk the graph.

    Attributes
    ----------
    index:
        Position in the network (topological order).
    name:
        Layer name.
    kind:
        TensorRT ``LayerType`` name (``"CONVOLUTION"``) or ONNX op type (``"Conv"``).
    inputs, outputs:
        Names of the tensors it reads and writes (absent optional inputs left out).
    """

    index: int
    name: str
    kind: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


@dataclass(frozen=True)
class Fp32Selection:
    """Layers to change, by index.

    ``full``: compute in FP32 and write FP32 (float outputs only). ``output_only``: keep the
    compute precision but write FP32 (the head convolutions).
    """

    full: tuple[int, ...] = ()
    output_only: tuple[int, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.full or self.output_only)


def normalise_selectors(selectors: Iterable[str] | None, precision: str) -> tuple[str, ...]:
    """Selectors as stored in the engine key: defaults for ``None``, ``()`` for ``none``.

    Accepts comma-separated items too (``"input-norm,heads"``). Order is kept, duplicates dropped.
    """
    if selectors is None:
        return DEFAULT_FP32_LAYERS[precision]
    items: list[str] = []
    for selector in selectors:
        for item in (part.strip() for part in selector.split(",")):
            if item and item not in items:
                items.append(item)
    if NONE in items:
        if len(items) > 1:
            raise ValueError(f"'none' cannot be combined with other FP32 layer selectors: {items}")
        return ()
    return tuple(items)


def select_fp32_layers(
    layers: Sequence[LayerInfo],
    network_inputs: Iterable[str],
    network_outputs: Iterable[str],
    selectors: Iterable[str],
) -> Fp32Selection:
    """Resolve ``selectors`` (see the module docstring) to layer indices.

    Raises
    ------
    ValueError
        For a pattern that matches no layer name; the message lists some names.
    """
    full: set[int] = set()
    output_only: set[int] = set()
    for selector in selectors:
        if selector == "input-norm":
            full |= _forward_until_barrier(layers, set(network_inputs))
        elif selector == "heads":
            after, convs = _backward_until_barrier(layers, set(network_outputs))
            full |= after
            output_only |= convs
        else:
            matched = {layer.index for layer in layers if fnmatch.fnmatchcase(layer.name, selector)}
            if not matched:
                examples = ", ".join(layer.name for layer in layers[:5])
                raise ValueError(f"FP32 layer pattern {selector!r} matches no layer (names look like: {examples}, ...)")
            full |= matched
    full -= {layer.index for layer in layers if layer.kind in DATA_KINDS}
    return Fp32Selection(tuple(sorted(full)), tuple(sorted(output_only - full)))


def _forward_until_barrier(layers: Sequence[LayerInfo], sources: set[str]) -> set[int]:
    """Layers fed (transitively) by ``sources`` without passing a barrier layer."""
    reached = set(sources)
    chosen: set[int] = set()
    for layer in layers:  # topological order: one pass suffices
        if layer.kind in BARRIER_KINDS or not reached.intersection(layer.inputs):
            continue
        chosen.add(layer.index)
        reached.update(layer.outputs)
    return chosen


def _backward_until_barrier(layers: Sequence[LayerInfo], sinks: set[str]) -> tuple[set[int], set[int]]:
    """Layers feeding ``sinks`` after the last barrier, and the barrier layers where the walk stopped."""
    needed = set(sinks)
    chosen: set[int] = set()
    barriers: set[int] = set()
    for layer in reversed(layers):
        if not needed.intersection(layer.outputs):
            continue
        if layer.kind in BARRIER_KINDS:
            barriers.add(layer.index)
            continue
        chosen.add(layer.index)
        needed.update(layer.inputs)
    return chosen, barriers

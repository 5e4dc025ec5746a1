"""Real ONNX models that misbehave on purpose, for the node's fault tests (run by the real backend).

:func:`write_fault_model` builds a tiny graph with the exported model's signature (``image``
[1,3,H,W] -> ``disparity`` [1,1,H,W], ``semantic`` [1,H,W] uint8) and metadata JSON:

- ``disparity = R / G - 0.5``: R = G = 0 gives NaN, R > 0 = G gives +inf, R < G / 2 a negative
  disparity (an impossible depth): garbage the node must never publish; other pixels are fine;
- a Reshape (``allowzero``) whose target shape is ``ceil(max(B))``: an image whose blue channel is
  all zero makes ONNX Runtime fail at run time (1 element into shape [0]); any blue pixel makes it
  succeed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_fault_model(path: Path, height: int = 64, width: int = 96) -> Path:
    import onnx
    from onnx import TensorProto, helper

    from gam_depth_ros.metadata import ModelMetadata, write_metadata

    def const(name: str, values, dtype=np.float32):
        array = np.asarray(values, dtype=dtype)
        return helper.make_node("Constant", [], [name], value=onnx.numpy_helper.from_array(array, name))

    nodes = [
        const("half", [0.5]), const("zero", [0.0]), const("one_elem", [0.0]),
        const("axes_r", [0], np.int64), const("starts_r", [0], np.int64), const("ends_r", [1], np.int64),
        const("starts_g", [1], np.int64), const("ends_g", [2], np.int64),
        const("starts_b", [2], np.int64), const("ends_b", [3], np.int64), const("ch_axis", [1], np.int64),
        helper.make_node("Slice", ["image", "starts_r", "ends_r", "ch_axis"], ["r"]),
        helper.make_node("Slice", ["image", "starts_g", "ends_g", "ch_axis"], ["g"]),
        helper.make_node("Slice", ["image", "starts_b", "ends_b", "ch_axis"], ["b"]),
        helper.make_node("Div", ["r", "g"], ["r_over_g"]),
        helper.make_node("Sub", ["r_over_g", "half"], ["ratio"]),
        # Fault trigger: reshape one element to shape [ceil(max(b))]; max(b) = 0 -> shape [0] -> error.
        helper.make_node("ReduceMax", ["b"], ["b_max"], keepdims=0),
        helper.make_node("Ceil", ["b_max"], ["b_ceil"]),
        helper.make_node("Cast", ["b_ceil"], ["b_shape_scalar"], to=TensorProto.INT64),
        helper.make_node("Unsqueeze", ["b_shape_scalar", "axes_r"], ["b_shape"]),
        helper.make_node("Reshape", ["one_elem", "b_shape"], ["probe"], allowzero=1),
        helper.make_node("ReduceSum", ["probe"], ["probe_sum"], keepdims=0),
        helper.make_node("Mul", ["probe_sum", "zero"], ["nothing"]),
        helper.make_node("Add", ["ratio", "nothing"], ["disparity"]),
        helper.make_node("Mul", ["g", "zero"], ["g_zero"]),
        helper.make_node("Squeeze", ["g_zero", "ch_axis"], ["label_float"]),
        helper.make_node("Cast", ["label_float"], ["semantic"], to=TensorProto.UINT8),
    ]
    graph = helper.make_graph(
        nodes, "fault_model",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, height, width])],
        [helper.make_tensor_value_info("disparity", TensorProto.FLOAT, [1, 1, height, width]),
         helper.make_tensor_value_info("semantic", TensorProto.UINT8, [1, height, width])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))
    write_metadata(path, ModelMetadata(input_height=height, input_width=width))
    return path

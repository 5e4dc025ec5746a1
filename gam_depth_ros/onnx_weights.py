"""Weight compression of an exported ONNX graph: float16 storage, float32 compute.

:func:`store_weights_as_float16` replaces every large float32 initializer by a float16 copy
followed by a ``Cast`` back to float32, so the file holds half the bytes while every operator
still computes in float32 (ONNX Runtime and TensorRT fold the casts of constants when the
session/engine is built, so inference speed is unchanged). The cost is the rounding of each
weight to float16 (11 significant bits); :mod:`gam_depth_ros.export` measures it against torch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gam_depth_ros.onnx_files import check_external_data

#: Initializers with fewer elements stay float32 (biases, BN-folded shifts: no size to gain).
MIN_ELEMENTS = 1024


def store_weights_as_float16(path: str | Path, min_elements: int = MIN_ELEMENTS) -> int:
    """Rewrite the ONNX file at ``path`` in place with float16-stored weights.

    Returns
    -------
    int
        Number of initializers converted.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    check_external_data(path)  # before onnx.load opens any file the model names
    model = onnx.load(str(path))
    graph = model.graph
    kept, casts, converted = [], [], 0
    for init in graph.initializer:
        if init.data_type != TensorProto.FLOAT or int(np.prod(init.dims)) < min_elements:
            kept.append(init)
            continue
        half = numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), f"{init.name}__fp16")
        kept.append(half)
        casts.append(helper.make_node("Cast", [half.name], [init.name], to=TensorProto.FLOAT,
                                      name=f"{init.name}__to_fp32"))
        converted += 1
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = casts + list(graph.node)  # the casts come first: the graph stays topologically sorted
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))
    return converted

"""The QONNX step graph rewritten in standard ONNX operators, for onnxruntime.

QONNX's two custom operators in our graphs become the arithmetic that defines them (QONNX
`Quant` and `BipolarQuant` reference implementations, qonnx.custom_op.general):

    Quant(x, s, z, b)    = (Round(Clip(x / s + z, min_int, max_int)) - z) * s
                           Round: half to even (rounding_mode ROUND, ONNX Round's rule)
    BipolarQuant(x, s)   = Where(x >= 0, 1, -1) * s

Scales are powers of two in our graphs, so every division and product is exact in float32 and
the rewritten graph is bit-exact against qonnx execution (tests/test_export.py checks it).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.base import Transformation

from common.errors import UserError

QONNX_DOMAIN = "qonnx.custom_op.general"
MIN_OPSET = 13  # Round, Clip with min/max inputs, GreaterOrEqual


QONNX_SUFFIX = ".qonnx.onnx"


def standard_path(qonnx_path: str | Path) -> Path:
    """Where the standard-ONNX form of a graph lives: step.qonnx.onnx -> step.onnx (a UserError
    for a name without .qonnx.onnx, whose two forms would be one file)."""
    qonnx_path = Path(qonnx_path)
    if not qonnx_path.name.endswith(QONNX_SUFFIX):
        raise UserError(f"graph path {qonnx_path} must end in {QONNX_SUFFIX} (its standard-ONNX "
                        f"form is written beside it as .onnx)")
    return qonnx_path.with_name(qonnx_path.name.removesuffix(QONNX_SUFFIX) + ".onnx")


class LowerToStandardONNX(Transformation):
    """Every Quant / BipolarQuant node -> the standard operators that define it (above), in one
    pass; the default opset becomes at least MIN_OPSET and the QONNX opset import goes. The
    Quant nodes' bit-width constants are left unused (ModelWrapper.transform's cleanup removes
    them). Another QONNX operator, or a Quant without a standard form, is a UserError."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        graph = model.graph
        if not any(node.domain == QONNX_DOMAIN for node in graph.node):
            return model, False
        nodes: list[onnx.NodeProto] = []
        for index, node in enumerate(graph.node):
            if node.domain != QONNX_DOMAIN:
                nodes.append(node)
            elif node.op_type == "Quant":
                nodes += _quant(model, node, f"lowered{index}")
            elif node.op_type == "BipolarQuant":
                nodes += _bipolar(model, node, f"lowered{index}")
            else:
                raise UserError(f"no standard-ONNX form for QONNX operator {node.op_type}")
        del graph.node[:]
        graph.node.extend(nodes)
        opset_imports = model.model.opset_import
        standard = ("", "ai.onnx")
        others = [o for o in opset_imports if o.domain not in (QONNX_DOMAIN, *standard)]
        version = max([MIN_OPSET] + [o.version for o in opset_imports if o.domain in standard])
        del opset_imports[:]
        opset_imports.extend([helper.make_opsetid("", version), *others])
        onnx.checker.check_model(model.model)
        return model, True


def _quant(model: ModelWrapper, node: onnx.NodeProto, prefix: str) -> list[onnx.NodeProto]:
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    mode = attrs.get("rounding_mode", b"ROUND")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    x, scale, zero, bits = node.input
    width = model.get_initializer(bits)
    if mode.upper() not in ("ROUND", "HALF_EVEN") or width is None:
        raise UserError(f"Quant node {node.name}: only rounding_mode ROUND with a constant bit "
                        f"width has a standard-ONNX form (got {mode}, bit width {bits})")
    signed, narrow, width = attrs.get("signed", 1), attrs.get("narrow", 0), int(width)
    low = -(2 ** (width - 1)) + narrow if signed else 0
    high = 2 ** (width - 1) - 1 if signed else 2**width - 1 - narrow
    low_name = _constant(model, f"{prefix}_min", low)
    high_name = _constant(model, f"{prefix}_max", high)
    zero_value = model.get_initializer(zero)
    zero_is_0 = zero_value is not None and not np.any(zero_value)
    out = node.output[0]
    ops = [helper.make_node("Div", [x, scale], [f"{prefix}_scaled"])]
    shifted = f"{prefix}_scaled"
    if not zero_is_0:
        ops.append(helper.make_node("Add", [shifted, zero], [f"{prefix}_shifted"]))
        shifted = f"{prefix}_shifted"
    ops += [helper.make_node("Clip", [shifted, low_name, high_name], [f"{prefix}_clipped"]),
            helper.make_node("Round", [f"{prefix}_clipped"], [f"{prefix}_int"])]
    integer = f"{prefix}_int"
    if not zero_is_0:
        ops.append(helper.make_node("Sub", [integer, zero], [f"{prefix}_unshifted"]))
        integer = f"{prefix}_unshifted"
    ops.append(helper.make_node("Mul", [integer, scale], [out]))
    return ops


def _bipolar(model: ModelWrapper, node: onnx.NodeProto, prefix: str) -> list[onnx.NodeProto]:
    x, scale = node.input
    zero, one, minus_one = (_constant(model, f"{prefix}_{n}", v)
                            for n, v in (("zero", 0), ("one", 1), ("minus_one", -1)))
    return [helper.make_node("GreaterOrEqual", [x, zero], [f"{prefix}_fired"]),
            helper.make_node("Where", [f"{prefix}_fired", one, minus_one], [f"{prefix}_sign"]),
            helper.make_node("Mul", [f"{prefix}_sign", scale], [node.output[0]])]


def _constant(model: ModelWrapper, name: str, value: float) -> str:
    model.set_initializer(name, np.array(value, np.float32))
    return name

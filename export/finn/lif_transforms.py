"""Graph rewrites that turn the exported step graph into FINN hardware layers with LIF
neurons, written as qonnx transformations (`apply` returns (model, changed)).

    IntegerPixelInput     the 8-bit input quantizer of x = p / 256 becomes x = p (UINT8) and a
                          Mul(2^-8) that streamlining moves into the first layer's scale
    ReplaceLIFSubgraphs   each LIF sub-graph (leak, integrate, membrane grid, spike, reset, with
                          the membrane as graph input and output) becomes one LIF node whose
                          state memory is internal: the graph becomes x -> logits_t; under
                          direct encoding the first one holds its input (conv1 once per image)
    AbsorbScaleIntoLIF    a power-of-two Mul in front of a LIF node becomes its currentFrac:
                          the LIF is fed the MVAU's integer accumulator
    MoveTransposePastLIF  a LIF layer is elementwise, so a layout Transpose in front of it moves
                          behind it: the LIF runs channels last (NHWC), as FINN streams
    RemoveOutputScale     the readout's power-of-two scale leaves the graph (the design
                          outputs integers; the scale goes into the metadata)

A sub-graph that cannot be mapped (a float membrane, a leak that is not a shift, a scale
that is not a power of two) stops with one line naming the layer and the reason.
"""
from __future__ import annotations

import json
import math

import numpy as np
from onnx import helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.base import Transformation
from qonnx.transformation.general import SortGraph
from qonnx.transformation.infer_datatypes import InferDataTypes
from qonnx.transformation.infer_shapes import InferShapes

from common.errors import UserError
from export.finn.finn_lif import DOMAIN
from export.qonnx.step_graph import METADATA_KEY

STATE_INPUT = "in_membrane_"
STATE_OUTPUT = "out_membrane_"


def graph_metadata(model: ModelWrapper) -> dict:
    """The step graph's `qsnn` model metadata (export.qonnx.step_graph), {} if absent."""
    props = {p.key: p.value for p in model.model.metadata_props}
    return json.loads(props[METADATA_KEY]) if METADATA_KEY in props else {}


def power_of_two_exponent(value: float, what: str) -> int:
    """k with value = 2^k, or a UserError naming `what`."""
    exponent = math.log2(value) if value > 0 else float("nan")
    if not float(exponent).is_integer():
        raise UserError(f"{what}={value!r} is not a power of two; the FINN LIF layer needs "
                        f"shifts (retrain with the fixed-point quantizers)")
    return int(exponent)


class IntegerPixelInput(Transformation):
    """Quant(x, 2^-8, 0, 8 bits, unsigned) on the graph input -> x = p (UINT8), Mul(2^-8)."""

    def apply(self, model):
        x = model.graph.input[0].name
        quant = model.find_consumer(x)
        if quant is None or quant.op_type != "Quant" or len(model.find_consumers(x)) != 1:
            return model, False
        scale, zero, bits = (float(model.get_initializer(i)) for i in quant.input[1:4])
        attrs = {a.name: helper.get_attribute_value(a) for a in quant.attribute}
        if zero != 0 or attrs.get("signed", 1) or bits != 8:
            return model, False
        power_of_two_exponent(scale, "input scale")
        mul = helper.make_node("Mul", [x, quant.input[1]], [quant.output[0]],
                               name=f"{quant.name}_pixel_scale")
        model.graph.node.insert(list(model.graph.node).index(quant), mul)
        model.graph.node.remove(quant)
        model.set_tensor_datatype(x, DataType["UINT8"])
        return model, True


class ReplaceLIFSubgraphs(Transformation):
    """Each pair (in_membrane_k, out_membrane_k) of the step graph -> one LIF node."""

    def apply(self, model):
        meta = graph_metadata(model)
        states = [i.name for i in model.graph.input if i.name.startswith(STATE_INPUT)]
        for index, state in enumerate(states, start=1):
            _replace_one(model, state, index, meta)
        if states:
            model = model.transform(InferShapes()).transform(InferDataTypes())
        return model, False


def _replace_one(model: ModelWrapper, state: str, index: int, meta: dict) -> None:
    layer = f"LIF layer {index} ({state[3:]})"
    leak = _single_consumer(model, state, "Mul", layer, "the leak beta V'")
    beta = float(_constant_input(model, leak, layer))
    charge = _single_consumer(model, leak.output[0], "Add", layer, "beta V' + I")
    current = next(i for i in charge.input if i != leak.output[0])
    grid = model.find_consumer(charge.output[0])
    if grid is None or grid.op_type != "Quant":
        raise UserError(f"{layer}: float membrane (state_bits={meta.get('state_bits')}): the "
                        f"FINN LIF layer needs a fixed-point membrane; retrain with "
                        f"STATE_BITS=4, 8 or 16")
    step, _, bits = (float(model.get_initializer(i)) for i in grid.input[1:4])
    if bits > 16:
        raise UserError(f"{layer}: a {bits:g}-bit membrane; the FINN LIF layer supports 4 to 16")
    spikes = _spike_tensor(model, grid, layer)
    theta = float(_constant_input(model, model.find_producer(_spikes_source(model, spikes)),
                                  layer))
    output = STATE_OUTPUT + state[len(STATE_INPUT):]
    removed = {**_nodes_between(model, state, output),
               **_nodes_between(model, grid.output[0], spikes)}
    for node in removed.values():
        model.graph.node.remove(node)
    for io in (model.graph.input, model.graph.output):
        for tensor in [t for t in io if t.name in (state, output)]:
            io.remove(tensor)
    shape = model.get_tensor_shape(current)
    memory = f"lif{index}_membrane"
    model.set_initializer(memory, np.zeros(shape, dtype=np.float32))
    lif = helper.make_node(
        "LIF", [current, memory], [spikes], domain=DOMAIN, name=f"LIF_{index - 1}",
        backend="fpgadataflow", NumChannels=int(shape[-1]), numInputVectors=list(shape[:-1]),
        inputDataType="FLOAT32", numSteps=int(meta.get("timesteps", 1)), stateBits=int(bits),
        stateFrac=-power_of_two_exponent(step, f"{layer}: membrane step"),
        leakShift=-power_of_two_exponent(beta, f"{layer}: beta"),
        thetaCode=_theta_code(theta, step, layer), resetMode=meta.get("reset", "subtract"),
        heldInput=int(index == 1 and bool(meta.get("first_layer_computed_once"))))
    position = min(i for i, n in enumerate(model.graph.node) if spikes in n.input)
    model.graph.node.insert(position, lif)


def _single_consumer(model, tensor: str, op_type: str, layer: str, what: str):
    node = model.find_consumer(tensor)
    if node is None or node.op_type != op_type:
        raise UserError(f"{layer}: expected {what} ({op_type}) after {tensor}, found "
                        f"{node.op_type if node else 'nothing'}; not a LIF step graph")
    return node


def _constant_input(model, node, layer: str) -> float:
    value = next((model.get_initializer(i) for i in node.input
                  if model.get_initializer(i) is not None), None)
    if value is None or value.size != 1:
        raise UserError(f"{layer}: {node.name} has no scalar constant")
    return float(value)


def _spike_tensor(model, grid, layer: str) -> str:
    """S = 0.5 (BipolarQuant(V - theta) + 1): the Mul after the BipolarQuant's Add."""
    for node in model.find_consumers(grid.output[0]):
        bipolar = model.find_consumer(node.output[0]) if node.op_type == "Sub" else None
        if bipolar is not None and bipolar.op_type == "BipolarQuant":
            plus_one = model.find_consumer(bipolar.output[0])
            half = model.find_consumer(plus_one.output[0]) if plus_one else None
            if half is not None and half.op_type == "Mul":
                return half.output[0]
    raise UserError(f"{layer}: no spike 0.5 (BipolarQuant(V - theta) + 1) found")


def _spikes_source(model, spikes: str) -> str:
    """The V - theta tensor behind a spike tensor."""
    half = model.find_producer(spikes)
    plus_one = model.find_producer(half.input[0])
    bipolar = model.find_producer(plus_one.input[0])
    return bipolar.input[0]


def _theta_code(theta: float, step: float, layer: str) -> int:
    code = theta / step
    if not code.is_integer():
        raise UserError(f"{layer}: threshold {theta} is not a multiple of the membrane step")
    return int(code)


def _nodes_between(model, source: str, sink: str) -> dict:
    """Nodes on some path from tensor `source` to tensor `sink`, by name."""
    downstream, frontier = {}, [source]
    while frontier:
        for node in model.find_consumers(frontier.pop()) or []:
            if node.name not in downstream:
                downstream[node.name] = node
                frontier.extend(node.output)
    upstream, frontier = {}, [sink]
    while frontier:
        node = model.find_producer(frontier.pop())
        if node is not None and node.name not in upstream:
            upstream[node.name] = node
            frontier.extend(node.input)
    return {name: downstream[name] for name in downstream.keys() & upstream.keys()}


def set_lif_shape(node, shape) -> None:
    op = getCustomOp(node)
    op.set_nodeattr("NumChannels", int(shape[-1]))
    op.set_nodeattr("numInputVectors", [int(d) for d in shape[:-1]])


class AbsorbScaleIntoLIF(Transformation):
    """Mul(a, 2^-k) -> LIF  =>  a -> LIF with currentFrac += k."""

    def apply(self, model):
        changed = False
        for lif in model.get_nodes_by_op_type("LIF"):
            mul = model.find_producer(lif.input[0])
            scale = None if mul is None or mul.op_type != "Mul" else model.get_initializer(
                mul.input[1])
            if scale is None or scale.size != 1 or len(model.find_consumers(mul.output[0])) > 1:
                continue
            op = getCustomOp(lif)
            exponent = power_of_two_exponent(float(scale), f"{lif.name}: input current scale")
            op.set_nodeattr("currentFrac", op.get_nodeattr("currentFrac") - exponent)
            lif.input[0] = mul.input[0]
            model.graph.node.remove(mul)
            changed = True
        if changed:
            model = model.transform(InferDataTypes())
        return model, changed


class MoveTransposePastLIF(Transformation):
    """Transpose(perm) -> LIF  =>  LIF -> Transpose(perm) (the LIF is elementwise)."""

    def apply(self, model):
        changed = False
        for lif in model.get_nodes_by_op_type("LIF"):
            transpose = model.find_producer(lif.input[0])
            if transpose is None or transpose.op_type != "Transpose" or len(
                    model.find_consumers(transpose.output[0])) > 1:
                continue
            source, spikes = transpose.input[0], lif.output[0]
            shape = model.get_tensor_shape(source)
            moved = f"{spikes}_{transpose.name}"
            lif.input[0], lif.output[0] = source, moved
            transpose.input[0], transpose.output[0] = moved, spikes
            model.set_tensor_shape(moved, shape)
            model.set_tensor_datatype(moved, DataType["BINARY"])
            model.set_initializer(lif.input[1], np.zeros(shape, dtype=np.float32))
            set_lif_shape(lif, shape)
            changed = True
        if changed:
            model = model.transform(SortGraph())
        return model, changed


class RemoveOutputScale(Transformation):
    """A trailing scalar Mul on the graph output leaves the graph: the design outputs the
    integer accumulator, and the scale is recorded in the model's metadata under `key`."""

    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key

    def apply(self, model):
        output = model.graph.output[0]
        mul = model.find_producer(output.name)
        scale = None if mul is None or mul.op_type != "Mul" else model.get_initializer(
            mul.input[1])
        if scale is None or scale.size != 1:
            return model, False
        source = mul.input[0]
        model.graph.node.remove(mul)
        for node in model.find_consumers(source) or []:
            node.input[:] = [output.name if i == source else i for i in node.input]
        producer = model.find_producer(source)
        producer.output[:] = [output.name if o == source else o for o in producer.output]
        model.set_tensor_datatype(output.name, model.get_tensor_datatype(source))
        model.set_metadata_prop(self.key, repr(float(scale)))
        return model, True


class AveragePoolToSumPool(Transformation):
    """AveragePool(k, stride k) of spikes  =>  QuantAvgPool2d (FINN's pool of k^2 spikes with
    no shift: the count, 0..k^2) -> Mul(2^-2log2(k)), a power-of-two scale that streamlining
    moves past the next weight layer into its LIF. k must be a power of two (model.layers)."""

    def apply(self, model):
        changed = False
        for pool in model.get_nodes_by_op_type("AveragePool"):
            spikes = model.get_tensor_datatype(pool.input[0])
            attrs = {a.name: helper.get_attribute_value(a) for a in pool.attribute}
            size = int(attrs["kernel_shape"][0])
            if spikes != DataType["BINARY"] or list(attrs.get("strides", [])) != [size] * 2 \
                    or any(attrs.get("pads", [])):
                raise UserError(f"{pool.name}: an average pool the FINN graph builds takes "
                                f"spikes with stride = kernel and no padding, not {spikes.name} "
                                f"with {attrs}")
            count = f"{pool.output[0]}_spike_count"
            scale = f"{pool.output[0]}_inverse_area"
            sum_pool = helper.make_node(
                "QuantAvgPool2d", [pool.input[0]], [count], domain="qonnx.custom_op.general",
                name=f"{pool.name}_sum", kernel=size, stride=size, ibits=1,
                obits=(size * size).bit_length(), signed=0, data_layout="NCHW")
            model.set_initializer(scale, np.array(2.0 ** power_of_two_exponent(
                1 / size**2, f"{pool.name}: average pool 1/k^2"), dtype=np.float32))
            mul = helper.make_node("Mul", [count, scale], [pool.output[0]],
                                   name=f"{pool.name}_scale")
            index = list(model.graph.node).index(pool)
            model.graph.node.remove(pool)
            model.graph.node.insert(index, mul)
            model.graph.node.insert(index, sum_pool)
            changed = True
        if changed:
            model = model.transform(InferShapes()).transform(InferDataTypes())
        return model, False


class SumPoolsInHLS(Transformation):
    """FINN Pool layers that sum (Function QuantAvgPool, from AveragePoolToSumPool) prefer
    Pool_hls: the project's Pool_rtl is a max pool of spikes (an OR)."""

    def apply(self, model):
        for node in model.get_nodes_by_op_type("Pool"):
            if getCustomOp(node).get_nodeattr("Function") == "QuantAvgPool":
                getCustomOp(node).set_nodeattr("preferred_impl_style", "hls")
        return model, False

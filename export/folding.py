"""Folding a FINN hardware graph to a target rate where FINN's SetFolding cannot by itself.

    FoldLIF              PE of every LIF layer: the smallest divisor of its channels whose
                         neurons / PE cycles fit the target cycles per frame (SetFolding skips
                         ops it does not know); run before SetFolding, so that its bottleneck
                         pass sees the LIF layers folded
    EmbedWideWeights     an HLS MVAU whose weight stream would have to be wider than FINN's
                         ap_int limit to meet the target (SIMD x PE x weight bits >
                         MAX_ALLOWED_AP_INT_W; SetFolding would then stop PE short of the
                         target) keeps its weights inside the layer (mem_mode
                         internal_embedded) instead of streaming them
    weight_width_limit   `mvau_wwidth_max` for SetFolding: the widest weight row of a graph
                         file (SIMD may grow to a full row), within FINN's ap_int limit
"""
from __future__ import annotations

import math

from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.base import Transformation

from finn.custom_op.fpgadataflow.hlsbackend import MAX_ALLOWED_AP_INT_W

MVAU_TYPES = ("MVAU", "MVAU_hls", "MVAU_rtl")


class FoldLIF(Transformation):
    def __init__(self, target_cycles: float) -> None:
        super().__init__()
        self.target_cycles = target_cycles

    def apply(self, model):
        for node in model.graph.node:
            if node.op_type not in ("LIF", "LIF_hls"):
                continue
            op = getCustomOp(node)
            channels = op.get_nodeattr("NumChannels")
            divisors = [d for d in range(1, channels + 1) if channels % d == 0]
            op.set_nodeattr("PE", next((d for d in divisors
                                        if op.neurons() / d <= self.target_cycles), channels))
        return model, False


class EmbedWideWeights(Transformation):
    def __init__(self, target_cycles: float) -> None:
        super().__init__()
        self.target_cycles = target_cycles

    def apply(self, model):
        for node in model.get_nodes_by_op_type("MVAU_hls"):
            op = getCustomOp(node)
            vectors = math.prod(op.get_nodeattr("numInputVectors"))
            macs_per_cycle = math.ceil(
                vectors * op.get_nodeattr("MW") * op.get_nodeattr("MH") / self.target_cycles)
            if macs_per_cycle * op.get_input_datatype(1).bitwidth() > MAX_ALLOWED_AP_INT_W:
                op.set_nodeattr("mem_mode", "internal_embedded")
        return model, False


def weight_width_limit(graph_path) -> int:
    from qonnx.core.modelwrapper import ModelWrapper

    model = ModelWrapper(str(graph_path))
    rows = [getCustomOp(n).get_nodeattr("MW") * getCustomOp(n).get_input_datatype(1).bitwidth()
            for n in model.graph.node if n.op_type in MVAU_TYPES]
    return min(max(rows, default=36), MAX_ALLOWED_AP_INT_W)

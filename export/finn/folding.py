"""Folding a FINN hardware graph with LIF layers to a target rate (`step_fold_for_target`,
which replaces FINN's step_target_fps_parallelization).

Frames: one FINN frame is one timestep, T frames per inference, except for the layers in
front of a LIF layer with a held input (conv1 under direct encoding: its input is the same
image at every timestep), which run once per image (`once_per_image`). A layer's cycles per
inference are its cycles per frame times its frames per inference; the slowest layer sets
the throughput.

    fold_to_target       the LIF layers get the smallest PE that meets the target (FoldLIF:
                         SetFolding skips ops it does not know); HLS MVAUs whose weight stream
                         would exceed FINN's ap_int limit keep their weights inside the layer
                         (EmbedWideWeights; SetFolding would stop their PE short); FINN's
                         SetFolding folds the rest (one pass); the once-per-image layers are
                         folded again on their own for T times the cycles per frame
    step_fold_for_target fold_to_target; if the target is out of reach, fold again to the
                         reachable rate (as FINN's second pass: no layer faster than needed)
    weight_width_limit   `mvau_wwidth_max` for SetFolding: the widest weight row of a graph
                         file (SIMD may grow to a full row), within FINN's ap_int limit
"""
from __future__ import annotations

import copy
import math
from pathlib import Path

from finn.custom_op.fpgadataflow.hlsbackend import MAX_ALLOWED_AP_INT_W
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.base import Transformation

from hw_model.fpga import fold_lif

MVAU_TYPES = ("MVAU", "MVAU_hls", "MVAU_rtl")
LIF_TYPES = ("LIF", "LIF_hls", "LIF_rtl")
FOLDING_ATTRIBUTES = ("PE", "SIMD", "parallel_window", "mem_mode", "ram_style", "resType")


class FoldLIF(Transformation):
    """PE of each LIF layer: the smallest divisor of NumChannels whose neurons / PE cycles
    per frame fit `target_cycles` (or NumChannels, the most a layer can have): the rule of
    hw_model.fpga.fold_lif, which the analytic model uses too."""

    def __init__(self, target_cycles: float) -> None:
        super().__init__()
        self.target_cycles = target_cycles

    def apply(self, model):
        for node in model.graph.node:
            if node.op_type not in LIF_TYPES:
                continue
            op = getCustomOp(node)
            op.set_nodeattr("PE", fold_lif(op.neurons(), op.get_nodeattr("NumChannels"),
                                           self.target_cycles))
        return model, False


class EmbedWideWeights(Transformation):
    """mem_mode internal_embedded for HLS MVAUs that need SIMD x PE x weight bits >
    MAX_ALLOWED_AP_INT_W to meet `target_cycles`."""

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


def once_per_image(model) -> set[str]:
    """Names of the layers in front of a held-input LIF layer: they run once per image."""
    names: set[str] = set()
    for lif in model.graph.node:
        if lif.op_type in LIF_TYPES and getCustomOp(lif).get_nodeattr("heldInput"):
            frontier = [lif.input[0]]
            while frontier:
                producer = model.find_producer(frontier.pop())
                if producer is not None and producer.name not in names:
                    names.add(producer.name)
                    frontier.extend(producer.input)
    return names


def timesteps_of(model) -> int:
    lifs = [n for n in model.graph.node if n.op_type in LIF_TYPES]
    return getCustomOp(lifs[0]).get_nodeattr("numSteps") if lifs else 1


def frames_per_inference(model) -> dict[str, int]:
    once, steps = once_per_image(model), timesteps_of(model)
    return {node.name: 1 if node.name in once else steps for node in model.graph.node}


def inference_cycles(model) -> dict[str, int]:
    """Cycles per inference of every layer: cycles per frame x frames per inference."""
    frames = frames_per_inference(model)
    return {node.name: int(getCustomOp(node).get_exp_cycles()) * frames[node.name]
            for node in model.graph.node}


def fold_to_target(model, target_cycles: float, mvau_wwidth_max: int):
    from finn.transformation.fpgadataflow.set_folding import SetFolding

    for transformation in (FoldLIF(target_cycles), EmbedWideWeights(target_cycles),
                           SetFolding(target_cycles, mvau_wwidth_max=mvau_wwidth_max,
                                      two_pass_relaxation=False)):
        model = model.transform(transformation)
    once = once_per_image(model)
    if not once:
        return model
    front = copy.deepcopy(model)
    for node in [n for n in front.graph.node if n.name not in once]:
        front.graph.node.remove(node)
    front = fold_to_target(front, target_cycles * timesteps_of(model), mvau_wwidth_max)
    for folded in front.graph.node:
        node = getCustomOp(next(n for n in model.graph.node if n.name == folded.name))
        for attribute in folded.attribute:
            if attribute.name in FOLDING_ATTRIBUTES:
                node.set_nodeattr(attribute.name, getCustomOp(folded).get_nodeattr(attribute.name))
    return model


def step_fold_for_target(model, cfg):
    """Fold to cfg.target_fps frames per second (FINN's own target), relax if unreachable,
    and write FINN's auto_folding_config.json."""
    from finn.util.config import extract_model_config_to_json

    if cfg.target_fps is None:
        return model
    steps = timesteps_of(model)
    target = 1e9 / cfg.synth_clk_period_ns / cfg.target_fps  # cycles per frame
    model = fold_to_target(model, target, cfg.mvau_wwidth_max)
    reachable = max(inference_cycles(model).values()) / steps
    if reachable > target:
        model = fold_to_target(model, reachable, cfg.mvau_wwidth_max)
    extract_model_config_to_json(model, Path(cfg.output_dir) / "report" /
                                 "auto_folding_config.json", FOLDING_ATTRIBUTES)
    return model


def weight_width_limit(graph_path) -> int:
    from qonnx.core.modelwrapper import ModelWrapper

    model = ModelWrapper(str(graph_path))
    rows = [getCustomOp(n).get_nodeattr("MW") * getCustomOp(n).get_input_datatype(1).bitwidth()
            for n in model.graph.node if n.op_type in MVAU_TYPES]
    return min(max(rows, default=36), MAX_ALLOWED_AP_INT_W)

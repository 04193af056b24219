"""FIFOs between the layers of the RTL design, sized by simulation as FINN sizes them.

FINN's StreamingFIFO_rtl under the FINN_SIMULATION define is fifo_gauge: an unbounded queue
that never stalls its producer and records its peak fill (`maxcount`). The design is
simulated with a gauge between every two layers (and at its input and output), the input
fed at the design's own rate, and every FIFO is then built as deep as its gauge's peak:

    interval_cycles = max over layers of cycles per frame x frames per inference
                      (export.finn.folding.inference_cycles: FINN's expected cycles)
    input           = SIZING_IMAGES random images, one every interval_cycles
    depth           = max(2, peak fill)          (2: fifo.sv's smallest FIFO)

Fed faster than the design's slowest layer, the gauges in front of it would grow without
bound; fed at its rate, each gauge holds what the rate mismatch between its neighbours
needs (e.g. one image's conv1 output while the first LIF layer, holding its input, runs its
remaining T - 1 steps). fifo.sv picks SRL, LUTRAM or BRAM by depth and width; a FIFO
that fifo.sv would put in UltraRAM (deeper than 2,028 words) is built in block RAM instead:
7-series parts have no URAM and yosys does not infer it (export.rtl.synth).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.base import Transformation

from export.rtl.stitch import FIFO_OP

SIZING_IMAGES = 3
MIN_DEPTH = 2  # fifo.sv refuses a shallower FIFO
URAM_DEPTH = 2028  # fifo.sv's "auto": deeper than this -> UltraRAM
SIZING_DEFINES = {"FINN_SIMULATION": "1"}  # fifo_template.v: fifo_gauge instead of fifo


@dataclass(frozen=True)
class Sizing:
    """How the FIFOs were sized (their depths are the nodes' `depth`: fifo_table)."""

    interval_cycles: int
    images: int


class InsertFIFOs(Transformation):
    """A StreamingFIFO_rtl (depth 2 until sized) between every two layers and at the
    design's input and output (FINN's InsertFIFO, then SpecializeLayers to RTL)."""

    def __init__(self, part: str) -> None:
        super().__init__()
        self.part = part

    def apply(self, model):
        from finn.transformation.fpgadataflow.insert_fifo import InsertFIFO
        from finn.transformation.fpgadataflow.specialize_layers import SpecializeLayers

        model = model.transform(InsertFIFO(create_shallow_fifos=True))
        for node in model.graph.node:
            if node.op_type == "StreamingFIFO":
                getCustomOp(node).set_nodeattr("preferred_impl_style", "rtl")
        return model.transform(SpecializeLayers(self.part)), False


class SizeFIFOs(Transformation):
    """Every StreamingFIFO_rtl as deep as its gauge's peak fill (module docstring); the
    FIFOs' HDL regenerated. The model's HDL must exist (FINN's PrepareIP); `self.sizing`
    holds what was measured."""

    def __init__(self, part: str, clock_ns: float, out_dir: Path) -> None:
        super().__init__()
        self.part, self.clock_ns, self.out_dir = part, clock_ns, Path(out_dir)
        self.sizing: Sizing | None = None

    def apply(self, model):
        peaks, interval = gauge_peaks(model, self.out_dir)
        for node in model.graph.node:
            if node.op_type == FIFO_OP:
                op = getCustomOp(node)
                depth = max(MIN_DEPTH, peaks[node.name])
                op.set_nodeattr("depth", depth)
                if depth > URAM_DEPTH:
                    op.set_nodeattr("ram_style", "block")
                op.generate_hdl(model, self.part, self.clock_ns)
        self.sizing = Sizing(interval, SIZING_IMAGES)
        return model, False


def gauge_peaks(model, out_dir: Path) -> tuple[dict[str, int], int]:
    """Peak fill of every FIFO's gauge with the input fed at the design's rate, and that
    rate's interval in cycles per image."""
    from export.finn.folding import frames_per_inference, inference_cycles
    from export.rtl.rtlsim import compile_design, pack, stream
    from export.rtl.stitch import stitch

    fifos = [n.name for n in model.graph.node if n.op_type == FIFO_OP]
    interval = max(cycles for name, cycles in inference_cycles(model).items()
                   if name not in fifos)
    first = model.graph.node[0]
    op = getCustomOp(first)
    frames = frames_per_inference(model)[first.name] * SIZING_IMAGES
    rng = np.random.default_rng(0)
    words = [w for _ in range(frames) for w in pack(_random_frame(op, rng), op)]
    last = getCustomOp(model.graph.node[-1])
    outputs = int(np.prod(last.get_folded_output_shape()[:-1])) * (
        frames_per_inference(model)[model.graph.node[-1].name] * SIZING_IMAGES)
    stitched = stitch(model, out_dir, taps=[])
    sim = compile_design(stitched, defines=SIZING_DEFINES)
    stream(sim, words, outputs, [], timeout=max(200_000, 4 * interval),
           throttle=(len(words) // SIZING_IMAGES, interval))
    peaks = {name: sim.top.getPort(f"{name}_maxcount").read().as_unsigned() for name in fifos}
    return peaks, interval


def _random_frame(op, rng: np.random.Generator) -> np.ndarray:
    """A frame of the layer's input datatype and shape (the design's timing does not depend
    on the values)."""
    dtype = op.get_input_datatype()
    shape = op.get_normal_input_shape()
    return rng.integers(int(dtype.min()), int(dtype.max()) + 1, size=shape).astype(np.float32)


def fifo_table(model) -> list[dict]:
    """Depth, width and memory style of every FIFO of a sized design."""
    rows = []
    for node in model.graph.node:
        if node.op_type == FIFO_OP:
            op = getCustomOp(node)
            rows.append({"node": node.name, "depth": int(op.get_nodeattr("depth")),
                         "width_bits": int(op.get_instream_width_padded()),
                         "ram_style": op.resolve_ram_style()})
    return rows

"""The folded hardware graph with every layer in RTL: what `make fpga-rtlsim` simulates and
`make fpga-synth` synthesizes.

    rtl_model(hw_graph, part, clock_ns, target_fps, out_dir)
        FINN's estimate steps as `make fpga-estimate` runs them (the same folding and the
        same layers: FINN chooses LIF_rtl and Pool_rtl, the project's, where it may), then
        ToRTL: a spike-fed MVAU_hls -> SpikeMVAU_rtl (accumulate-only); FINN's RTL layers
        (FMPadding_rtl, ConvolutionInputGenerator_rtl, MVAU_rtl for conv1's 8-bit pixels) stay;
        FINN's InsertDWC adds width converters (StreamingDataWidthConverter_rtl) where a
        layer's output word differs from the next one's input word, FINN's InsertFIFO a
        StreamingFIFO_rtl between every two layers; FINN's PrepareIP writes every layer's
        HDL; SizeFIFOs sizes the FIFOs by simulation (export.rtl.fifos; what it measured is
        the model's metadata "fifo_sizing").
        A layer with no RTL implementation stops with one line naming it.
"""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.base import Transformation

from common.errors import UserError
from common.runs import EXPORT_DIR
from export.rtl.wrapped import RTL_DOMAIN


def register_rtl_layers() -> None:
    """Import the project's FINN layers (each registers itself with FINN and qonnx): the LIF
    layer, its RTL backend, the spike max pool and accumulate-only MVU in RTL, and the HLS
    MVAU that generates code for spike inputs. FINN's SpecializeLayers then chooses LIF_rtl
    and Pool_rtl (it prefers an RTL variant wherever one exists)."""
    import export.finn.finn_lif
    import export.finn.spike_mvau_hls  # MVAU_hls / VVAU_hls code for spike inputs
    import export.rtl.lif_rtl
    import export.rtl.pool_rtl
    import export.rtl.spike_mvau  # noqa: F401 (each import registers its ops)


class ToRTL(Transformation):
    """The spike-fed MVAUs -> SpikeMVAU_rtl (export.rtl.spike_mvau.SpikeMVAUToRTL), renamed
    MVAU_hls_<i> -> SpikeMVAU_rtl_<i>; a layer left in HLS stops with one line naming it (FINN
    chose the RTL variant of every other layer that has one)."""

    def apply(self, model):
        from export.rtl.spike_mvau import SpikeMVAUToRTL

        model = model.transform(SpikeMVAUToRTL())
        for node in model.graph.node:
            if node.op_type == "SpikeMVAU_rtl":
                node.name = node.name.replace("MVAU_hls_", "SpikeMVAU_rtl_")
            elif node.op_type.endswith("_hls"):
                raise UserError(f"layer {node.name} ({node.op_type}, input "
                                f"{model.get_tensor_datatype(node.input[0]).name}) has no RTL "
                                f"implementation; RTL layers: FINN's, LIF_rtl, Pool_rtl (max "
                                f"pool on spikes), SpikeMVAU_rtl (spike-fed, no thresholds)")
        return model, False


def estimate_layer(estimate: dict, rtl_name: str) -> dict | None:
    """The `make fpga-estimate` summary's row of an RTL design's layer (SpikeMVAU_rtl_<i> was
    MVAU_hls_<i> there; the other layers keep their names), None for a layer the estimate
    has not (the width converters)."""
    name = rtl_name.replace("SpikeMVAU_rtl_", "MVAU_hls_")
    return next((layer for layer in estimate["layers"] if layer["node"] == name), None)


class NameNewNodes(Transformation):
    """Unnamed nodes (FINN's InsertDWC leaves its converters unnamed) get <op_type>_<i>."""

    def apply(self, model):
        for index, node in enumerate(model.graph.node):
            if not node.name:
                node.name = f"{node.op_type}_{index}"
        return model, False


def rtl_model(hw_graph: Path, part: str, clock_ns: float, target_fps: float, timesteps: int,
              out_dir: Path):
    """The RTL design of the hardware graph, folded as `make fpga-estimate` folds it, with
    every layer's HDL generated under out_dir."""
    from export.finn.finn_flow import finn_build_dir

    with finn_build_dir(out_dir / "hdl"):  # every layer's generated HDL lands here
        return _build_rtl(hw_graph, part, clock_ns, target_fps, timesteps, out_dir)


def _build_rtl(hw_graph: Path, part: str, clock_ns: float, target_fps: float, timesteps: int,
               out_dir: Path):
    import copy

    from export.finn.finn_flow import ESTIMATE_STEPS, run_build
    from export.finn.folding import weight_width_limit
    from export.rtl.fifos import InsertFIFOs, SizeFIFOs

    register_rtl_layers()
    folded = run_build(hw_graph, out_dir / "estimate", ESTIMATE_STEPS, part, clock_ns,
                       target_fps * timesteps, weight_width_limit(hw_graph))
    from finn.transformation.fpgadataflow.insert_dwc import InsertDWC
    from finn.transformation.fpgadataflow.prepare_ip import PrepareIP
    from finn.transformation.fpgadataflow.specialize_layers import SpecializeLayers

    model = copy.deepcopy(folded).transform(ToRTL()).transform(InsertDWC())
    for node in model.graph.node:
        if node.domain == "finn.custom_op.fpgadataflow":
            getCustomOp(node).set_nodeattr("preferred_impl_style", "rtl")
    model = model.transform(SpecializeLayers(part)).transform(InsertFIFOs(part))
    model = model.transform(NameNewNodes())
    not_rtl = [n.name for n in model.graph.node if n.domain != RTL_DOMAIN]
    if not_rtl:
        raise UserError(f"layers left without RTL: {', '.join(not_rtl)}")
    model = model.transform(PrepareIP(part, clock_ns))
    sizing = SizeFIFOs(part, clock_ns, out_dir / "fifo_sizing")
    model = model.transform(sizing)
    assert sizing.sizing is not None, "SizeFIFOs sets its sizing when it runs"
    model.set_metadata_prop("fifo_sizing", json.dumps(asdict(sizing.sizing)))
    return model


def estimate_summary(run_dir: Path, part: str | None) -> Path:
    """The fpga-estimate summary this simulation folds as (one line if there is none)."""
    fpga = run_dir / "fpga"
    found = sorted(fpga.glob("*/summary.json")) if fpga.exists() else []
    if part is not None:
        found = [path for path in found if path.parent.name == part]
    if not found:
        raise UserError(f"no `make fpga-estimate` summary for part {part or '(any)'} under "
                        f"{fpga}; run `make export` and `make fpga-estimate` first")
    if len(found) > 1:
        raise UserError(f"estimates for several parts under {fpga} "
                        f"({', '.join(p.parent.name for p in found)}): choose one with FPGA_PART")
    return found[0]


def hw_graph_of(run_dir: Path, kind: str) -> Path:
    """The run's FINN hardware graph (make export), checked readable: one line if not."""
    from export.finn.finn_graph import hw_graph_path
    from export.qonnx.qonnx_export import graph_name
    from export.qonnx.step_graph import read_metadata

    if kind != "snn":
        raise UserError(f"the RTL design is built for spiking networks; {run_dir} is an {kind}")
    path = hw_graph_path(run_dir / EXPORT_DIR / graph_name("snn"))
    if not path.exists():
        raise UserError(f"{path} does not exist; run `make export` first")
    read_metadata(path)
    return path


def design_of_run(run_dir: Path, kind: str, timesteps: int, estimate: dict, out_dir: Path):
    """The RTL design of a run, folded as its `make fpga-estimate` summary `estimate` was."""
    return rtl_model(hw_graph_of(run_dir, kind), estimate["part"], estimate["clock_ns"],
                     estimate["target_fps"], timesteps, out_dir)

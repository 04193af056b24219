"""FINN (finn-plus) dataflow builds of a step graph, as lists of steps read top to bottom.

HW_GRAPH_STEPS (run by `make export`) turn the QONNX step graph into FINN hardware layers:
project steps around FINN's own map every LIF sub-graph to one LIF layer (export/finn/finn_lif.py)
fed by an MVAU's integer accumulator, channels last, with the membranes on chip (the graph
becomes x -> logits_t, one frame per timestep) and the readout's power-of-two scale left to
the host (the design outputs integers). ESTIMATE_STEPS (run by `make fpga-estimate`) fold
that graph to a target rate and write FINN's estimate reports; the folding step is the
project's (export/finn/folding.py: LIF layers, too-wide weight streams, layers that run once per
image around FINN's SetFolding).

Without Vivado only these steps run. Two guards make finn-plus 1.6.1 usable here:
`finn.xsi.SimEngine` is imported by the build steps as a type hint only, but its lazy lookup
demands XILINX_VIVADO, so a placeholder is bound when Vivado is absent; and the build is driven
step by step instead of through `build_dataflow_cfg`, whose exit handler asks for the Vivado
root.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from common.errors import UserError

HW_GRAPH_STEPS = [
    "step_lif_subgraphs",  # project step, below
    "step_qonnx_to_finn",
    "step_tidy_up",
    "step_streamline",
    "step_lif_streamline",  # project step
    "step_extract_threshold_scale",  # project step
    "step_convert_to_hw",
    "step_sum_pools_in_hls",  # project step
]
ESTIMATE_STEPS = [
    "step_minimize_bit_width_initial",
    "step_create_dataflow_partition",
    "step_specialize_layers",
    "step_fold_for_target",  # project step (export/finn/folding.py), for FINN's SetFolding step
    "step_apply_folding_config",
    "step_minimize_bit_width",
    "step_generate_estimate_reports",
]
SYNTHESIS_STEPS = ["step_hw_codegen", "step_create_stitched_ip", "step_synthesize_bitfile"]
OUTPUT_SCALE_KEY = "qsnn_output_scale"


def vivado_available() -> bool:
    return bool(os.environ.get("XILINX_VIVADO"))


def prepare_finn(build_dir: Path) -> None:
    """Settings finn-plus needs before its build steps can be imported; FINN's build folder
    (where its transformations make their folders) becomes build_dir."""
    build_dir.mkdir(parents=True, exist_ok=True)
    os.environ["FINN_BUILD_DIR"] = str(build_dir)
    from finn.util.settings import initialize_dummy_settings

    initialize_dummy_settings()
    if not vivado_available():
        import finn.xsi

        vars(finn.xsi).setdefault("SimEngine", object)


def step_lif_subgraphs(model, cfg):
    """Integer pixels at the input; every LIF sub-graph -> one LIF node (membrane inside);
    average pools of spikes -> FINN's sum pool and a power-of-two scale."""
    from export.finn.lif_transforms import (
        AveragePoolToSumPool,
        IntegerPixelInput,
        ReplaceLIFSubgraphs,
    )

    for transformation in (IntegerPixelInput(), ReplaceLIFSubgraphs(), AveragePoolToSumPool()):
        model = model.transform(transformation)
    return model


def step_lif_streamline(model, cfg):
    """The scales in front of each LIF become shifts, the LIF runs channels last (its layout
    Transposes move behind it and cancel), and the output scale leaves the graph."""
    from finn.transformation.streamline.absorb import AbsorbConsecutiveTransposes
    from finn.transformation.streamline.reorder import MakeMaxPoolNHWC
    from qonnx.transformation.infer_data_layouts import InferDataLayouts

    from export.finn.lif_transforms import (
        AbsorbScaleIntoLIF,
        MoveTransposePastLIF,
        RemoveOutputScale,
    )

    for transformation in (AbsorbScaleIntoLIF(), MoveTransposePastLIF(), MakeMaxPoolNHWC(),
                           AbsorbConsecutiveTransposes(), RemoveOutputScale(OUTPUT_SCALE_KEY),
                           InferDataLayouts()):
        model = model.transform(transformation)
    return model


def step_extract_threshold_scale(model, cfg):
    """A MultiThreshold with an output scale (a quantized ReLU of the ANN) is refused by
    `step_convert_to_hw`; extract the scale and bias and streamline again."""
    from finn.transformation.streamline import Streamline
    from finn.transformation.streamline.extract_multithreshold_scale_bias import (
        ExtractMultiThresholdScaleBias,
    )

    return model.transform(ExtractMultiThresholdScaleBias()).transform(Streamline())


def step_sum_pools_in_hls(model, cfg):
    """The sum pools of average pools are built by FINN's Pool_hls (no RTL sum pool yet)."""
    from export.finn.lif_transforms import SumPoolsInHLS

    return model.transform(SumPoolsInHLS())


def project_steps() -> dict:
    from export.finn.folding import step_fold_for_target

    return {step.__name__: step for step in (step_lif_subgraphs, step_lif_streamline,
                                             step_extract_threshold_scale,
                                             step_sum_pools_in_hls, step_fold_for_target)}


@contextmanager
def finn_build_dir(build_dir: Path):
    """FINN's build folder is build_dir inside the block, and the one before it afterwards
    (a temporary one if there was none): build_dir may be removed after the block, and FINN
    reads the folder from settings it snapshots once."""
    previous = os.environ.get("FINN_BUILD_DIR")
    prepare_finn(build_dir)
    try:
        yield build_dir
    finally:
        prepare_finn(Path(previous or Path(tempfile.gettempdir()) / "qsnn_finn_build"))


def run_build(graph: Path, out_dir: Path, steps: list[str], part: str = "xc7z020clg400-1",
              clock_ns: float = 10.0, target_fps: float | None = None,
              mvau_wwidth_max: int = 36):
    """Run `steps` on the graph file; reports land in out_dir/report. Returns the model."""
    with finn_build_dir(out_dir / "build"):
        model = _run_steps(graph, out_dir, steps, part, clock_ns, target_fps, mvau_wwidth_max)
    shutil.rmtree(out_dir / "build", ignore_errors=True)
    return model


def _run_steps(graph: Path, out_dir: Path, steps: list[str], part: str, clock_ns: float,
               target_fps: float | None, mvau_wwidth_max: int):
    import finn.builder.build_dataflow_steps as finn_steps
    from finn.builder.build_dataflow_config import DataflowBuildConfig, DataflowOutputType
    from qonnx.core.modelwrapper import ModelWrapper

    from export.rtl.design import register_rtl_layers

    register_rtl_layers()  # FINN picks an RTL layer where one exists: the design rtlsim runs

    cfg = DataflowBuildConfig(
        output_dir=str(out_dir), synth_clk_period_ns=clock_ns, fpga_part=part,
        target_fps=target_fps, mvau_wwidth_max=mvau_wwidth_max,
        generate_outputs=[DataflowOutputType.ESTIMATE_REPORTS], steps=[])
    (out_dir / "report").mkdir(parents=True, exist_ok=True)
    model = ModelWrapper(str(graph))
    for name in steps:
        step = project_steps().get(name) or getattr(finn_steps, name)
        try:
            model = step(model, cfg)
        except UserError:
            raise
        except Exception as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else ""
            raise UserError(f"FINN step {name} failed: {type(err).__name__}: {first}") from err
    return model

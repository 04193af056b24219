"""FINN (finn-plus) dataflow builds of a step graph, as a list of steps read top to bottom.

Without Vivado only the estimate steps run. Two guards make finn-plus 1.6.1 usable here:
`finn.xsi.SimEngine` is imported by the build steps as a type hint only, but its lazy lookup
demands XILINX_VIVADO, so a placeholder is bound when Vivado is absent; and the build is driven
step by step instead of through `build_dataflow_cfg`, whose exit handler asks for the Vivado
root. One project step is added after streamlining: a spike leaves a MultiThreshold with an
output scale (0.5 (BipolarQuant + 1)), which `step_convert_to_hw` refuses, so the scale and
bias are extracted and the graph streamlined again.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from common.errors import UserError

ESTIMATE_STEPS = [
    "step_qonnx_to_finn",
    "step_tidy_up",
    "step_streamline",
    "step_extract_spike_scale",  # project step, below
    "step_convert_to_hw",
    "step_minimize_bit_width_initial",
    "step_create_dataflow_partition",
    "step_specialize_layers",
    "step_target_fps_parallelization",
    "step_apply_folding_config",
    "step_minimize_bit_width",
    "step_generate_estimate_reports",
]
SYNTHESIS_STEPS = ["step_hw_codegen", "step_create_stitched_ip", "step_synthesize_bitfile"]


def vivado_available() -> bool:
    return bool(os.environ.get("XILINX_VIVADO"))


def prepare_finn(build_dir: Path) -> None:
    """Settings finn-plus needs before its build steps can be imported."""
    build_dir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("FINN_BUILD_DIR", str(build_dir))
    from finn.util.settings import initialize_dummy_settings

    initialize_dummy_settings()
    if not vivado_available():
        import finn.xsi

        vars(finn.xsi).setdefault("SimEngine", object)


def step_extract_spike_scale(model, cfg):
    from finn.transformation.streamline import Streamline
    from finn.transformation.streamline.extract_multithreshold_scale_bias import (
        ExtractMultiThresholdScaleBias,
    )

    return model.transform(ExtractMultiThresholdScaleBias()).transform(Streamline())


def run_build(graph: Path, out_dir: Path, part: str, clock_ns: float, target_fps: float,
              steps: list[str] = ESTIMATE_STEPS):
    """Run `steps` on the QONNX `graph`; reports land in out_dir/report. Returns the model."""
    prepare_finn(out_dir / "build")
    import finn.builder.build_dataflow_steps as finn_steps
    from finn.builder.build_dataflow_config import DataflowBuildConfig, DataflowOutputType
    from qonnx.core.modelwrapper import ModelWrapper

    cfg = DataflowBuildConfig(
        output_dir=str(out_dir), synth_clk_period_ns=clock_ns, fpga_part=part,
        target_fps=target_fps, generate_outputs=[DataflowOutputType.ESTIMATE_REPORTS],
        steps=[])
    (out_dir / "report").mkdir(parents=True, exist_ok=True)
    model = ModelWrapper(str(graph))
    for name in steps:
        step = step_extract_spike_scale if name == "step_extract_spike_scale" else getattr(
            finn_steps, name)
        try:
            model = step(model, cfg)
        except Exception as err:
            raise UserError(f"FINN step {name} failed: {type(err).__name__}: "
                            f"{str(err).strip().splitlines()[0] if str(err).strip() else ''}"
                            ) from err
    shutil.rmtree(out_dir / "build", ignore_errors=True)
    return model

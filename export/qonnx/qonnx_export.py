"""Export a trained run to QONNX and verify it against PyTorch (`make export`).

    python -m export.qonnx.qonnx_export [runs/<name>] [--images 100]

Writes runs/<name>/export/: step.qonnx.onnx (SNN: one timestep, membranes as I/O) or
ann.qonnx.onnx, the same graph in standard ONNX operators for onnxruntime (step.onnx /
ann.onnx), the FINN hardware graph (step_hw.onnx: LIF layers with on-chip membranes,
export/finn/finn_graph.py; what `make fpga-estimate` folds and estimates) and verification.json:
the step graph in qonnx against PyTorch, in onnxruntime against qonnx and (SNN) the hardware
graph against PyTorch (export.lockstep's report each). Exits with status 1 if a check fails.
"""
from __future__ import annotations

import argparse
import sys

import torch

from common.atomic import write_json
from common.errors import UserError, run_cli
from common.runs import EXPORT_DIR, VERIFICATION
from export.finn.finn_graph import check_hw_graph, write_hw_graph
from export.lockstep import summary
from export.qonnx.standard_onnx import standard_path
from export.qonnx.step_graph import export_graph
from export.qonnx.verify import VerificationError, verify_graph
from model.layers import (
    WITH_POWER_OF_TWO_AVERAGE_POOL,
    refuse_unbuildable,
    with_power_of_two_average_pool,
)
from quant_training.trained_run import TrainedRun, add_run_arguments


def graph_name(kind: str) -> str:
    return "step.qonnx.onnx" if kind == "snn" else "ann.qonnx.onnx"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m export.qonnx.qonnx_export", description=__doc__)
    add_run_arguments(p)
    p.add_argument("--images", type=int, default=100, help="test images to verify on")
    args = p.parse_args(argv)
    if args.images < 1:
        raise UserError(f"images={args.images} must be >= 1")
    run = TrainedRun.open(args)
    model, spec, data = run.model, run.spec, run.dataset(args.data_dir)
    out = run.path / EXPORT_DIR
    graph = out / graph_name(spec.kind)
    export_graph(model, spec, graph)
    index = torch.arange(min(args.images, len(data.test)))
    images = data.test.images[index]
    report = verify_graph(graph, model, spec, images, data.test.labels[index])
    write_json(out / VERIFICATION, {"graph": graph.name, **report})
    refuse_unbuildable(spec.weight_layers, f"{graph} is written and verified "
                       f"(verification.json), but the FINN hardware graph",
                       with_power_of_two_average_pool, WITH_POWER_OF_TWO_AVERAGE_POOL)
    hw_graph = write_hw_graph(graph)
    hw = spec.kind == "snn"
    if hw:
        report["hw_graph"] = {"graph": hw_graph.name,
                              **check_hw_graph(hw_graph, model, spec, images)}
    write_json(out / VERIFICATION, {"graph": graph.name, **report})
    checks = {"qonnx_vs_pytorch": graph, "onnxruntime_vs_qonnx": standard_path(graph)}
    if hw:
        checks["hw_graph"] = hw_graph
    for key, path in checks.items():
        print(f"{path}: {summary(report[key])}", file=sys.stderr)
    failed = next((report[key] for key in checks if not report[key]["passed"]), None)
    if failed:
        raise VerificationError(f"verification FAILED ({failed['engine']} vs "
                                f"{failed['reference']}): {failed['first_mismatch']}; "
                                f"see {out / 'verification.json'}")


if __name__ == "__main__":
    run_cli(main)

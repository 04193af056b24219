"""Generate the HLS C++ project of a run and check its C simulation bit for bit (`make hls`).

    python -m hls.build [runs/<name>] [--images 20] [--part xc7z020clg400-1] [--clock-ns 10]

Writes runs/<name>/hls/: params.h (constants, widths, weights), network.h and stages.h (the
layer list's membranes and stages), lif.h, layers.h, snn.h, snn.cpp, tb.cpp, run_hls.tcl (for
Vitis HLS, not runnable here) and csim_report.json. The C simulation (g++ + ap_types) runs T
timesteps on N test images and must match PyTorch and, when `make export` has written it, the
QONNX step graph: membranes bit-exact at every step, identical readout outputs. Exits with
status 1 when they differ.
"""
from __future__ import annotations

import argparse
import sys
import time

import torch

from common.atomic import atomic_dir, write_json
from common.errors import UserError, run_cli
from common.runs import EXPORT_DIR
from export.lockstep import PyTorchEngine, lockstep
from export.qonnx.qonnx_export import graph_name
from export.qonnx.step_graph import state_shapes
from export.qonnx.verify import LOGIT_TOLERANCE, StepGraph, VerificationError
from hls.csim import CSim, compile_csim
from hls.generate import integer_net, required_widths, write_project
from quant_training.trained_run import TrainedRun, add_run_arguments


def build_and_check(model, spec, images, out, part: str = "xc7z020clg400-1",
                    clock_ns: float = 10.0, graph=None, widths: dict | None = None) -> dict:
    """Write the project into `out` (atomically), run the C simulation, compare; the report."""
    net = integer_net(model, spec)
    widths = widths or required_widths(net)
    start = time.perf_counter()
    with atomic_dir(out) as scratch:
        write_project(net, widths, scratch, part, clock_ns)
        csim = CSim(compile_csim(scratch), spec, state_shapes(model), net.readout.current_frac)
        engines = [PyTorchEngine(model), csim]
        if graph is not None and graph.exists():
            engines.append(StepGraph(graph, spec, "qonnx", LOGIT_TOLERANCE))
        pairs = [("csim", engine.name) for engine in engines if engine is not csim]
        checks = lockstep(spec, images, engines, pairs)
        report = {"images": len(images), "timesteps": spec.timesteps, "widths": widths,
                  **{f"vs_{check['reference']}": check for check in checks}}
        report["passed"] = all(check["passed"] for check in checks)
        report["seconds"] = time.perf_counter() - start
        for name in ("frames.bin", "csim_out.bin", "csim"):
            (scratch / name).unlink(missing_ok=True)
        write_json(scratch / "csim_report.json", report)
    return report


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m hls.build", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_arguments(p)
    p.add_argument("--images", type=int, default=20)
    p.add_argument("--part", default="xc7z020clg400-1")
    p.add_argument("--clock-ns", type=float, default=10.0)
    args = p.parse_args(argv)
    if args.images < 1:
        raise UserError(f"images={args.images} must be >= 1")
    run = TrainedRun.open(args)
    run_dir, model, spec = run.path, run.model, run.spec
    test = run.dataset(args.data_dir).test
    images = test.images[torch.arange(min(args.images, len(test)))]
    report = build_and_check(model, spec, images, run_dir / "hls", args.part, args.clock_ns,
                             graph=run_dir / EXPORT_DIR / graph_name("snn"))
    compared = [k[3:] for k in report if k.startswith("vs_")]
    print(f"{run_dir / 'hls'}: C simulation of {report['images']} test images x "
          f"T={report['timesteps']} vs {' and '.join(compared)}: "
          f"{'bit-exact' if report['passed'] else 'MISMATCH'} ({report['seconds']:.0f} s)",
          file=sys.stderr)
    if not report["passed"]:
        first = next(r["first_mismatch"] for k, r in report.items() if k.startswith("vs_")
                     and not r["passed"])
        raise VerificationError(f"HLS C simulation differs: {first or 'logits'}; see "
                                f"{run_dir / 'hls' / 'csim_report.json'}")


if __name__ == "__main__":
    run_cli(main)

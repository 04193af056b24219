"""Inference of the exported step graph: onnxruntime vs qonnx execution vs PyTorch.

    python -m benchmarks.step_graph [--timesteps 10] [--weight-bits 8] [--seconds 3]
                                    [--out reports/bench]

A freshly initialised network (ModelSpec defaults otherwise, seed 0) is exported with
`make export`'s code; dense runtimes take the same time whatever the weights. One image at a
time (the graph's batch is 1), T steps per image with the membranes fed back. Engines:
  pytorch-step     StepModule, the module the graph was exported from: T calls per image
  pytorch-forward  the network's layer-by-layer forward (all T steps in one call), batch 1
  qonnx            qonnx.core.onnx_exec.execute_onnx, node by node in numpy
  onnxruntime      the graph in standard ONNX operators (step.onnx), CPU provider
Each engine runs images until `--seconds` have passed (at least one): images/s = images /
seconds. Every engine's read-out logits are compared with qonnx's, exactly, on the images
both ran (export.lockstep.Comparison).
Writes step_graph.json.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.speed import machine
from common.atomic import write_json
from common.errors import UserError, check_choice, run_cli
from export.lockstep import (
    Comparison,
    Engine,
    PyTorchEngine,
    Trace,
    input_frames,
    network_input,
)
from export.qonnx.step_graph import export_graph
from export.qonnx.verify import StepGraph
from model.network import QuantCNN, SpikingCNN, build_model
from model.spec import WEIGHT_BITS, ModelSpec

SEED = 0
ENGINES = ("pytorch-step", "pytorch-forward", "qonnx", "onnxruntime")


class Forward(Engine):
    """The network's layer-by-layer forward, all T steps in one call: only the read-out."""

    name = "pytorch-forward"

    def __init__(self, model: SpikingCNN | QuantCNN) -> None:
        self.model = model

    @torch.no_grad()
    def run(self, frames: np.ndarray) -> Trace:
        logits = self.model(network_input(self.model.spec, frames[:, 0]))
        return Trace(logits.numpy().astype(np.float64)[:, None])


def engines(model, spec: ModelSpec, graph_path: Path) -> list[Engine]:
    return [PyTorchEngine(model, "pytorch-step"), Forward(model),
            StepGraph(graph_path, spec, "qonnx"), StepGraph(graph_path, spec, "onnxruntime")]


def time_engine(engine: Engine, frames: np.ndarray, seconds: float) -> tuple[float, Trace]:
    """Images per second, one image at a time, over at least `seconds` (and one image) after
    a warm-up image; the logits of the images it ran."""
    engine.run(frames[:1])
    traces: list[Trace] = []
    start = time.perf_counter()
    while not traces or (time.perf_counter() - start < seconds and len(traces) < len(frames)):
        traces.append(engine.run(frames[len(traces):len(traces) + 1]))
    return len(traces) / (time.perf_counter() - start), Trace(
        np.concatenate([trace.logits for trace in traces]))


def compare_read_outs(name: str, trace: Trace, reference: Trace, spec: ModelSpec) -> dict:
    """The engine's read-out logits against qonnx's on the images both ran, exactly."""
    images = min(len(trace.logits), len(reference.logits))
    comparison = Comparison(name, "qonnx", [], spec.timesteps)
    comparison.add(Trace(reference.logits[:images]).read_out(spec),
                   Trace(trace.logits[:images]).read_out(spec)
                   if trace.logits.shape[1] > 1 else Trace(trace.logits[:images]))
    return comparison.report()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.step_graph", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--timesteps", type=int, default=10)
    p.add_argument("--weight-bits", type=int, default=8)
    p.add_argument("--seconds", type=float, default=3.0, help="timed seconds per engine")
    p.add_argument("--max-images", type=int, default=1000)
    p.add_argument("--out", default="reports/bench")
    args = p.parse_args(argv)
    check_choice("weight_bits", args.weight_bits, [b for b in WEIGHT_BITS if b != 32])
    if not args.seconds > 0 or args.max_images < 1:
        raise UserError(f"seconds={args.seconds} must be > 0 and max_images="
                        f"{args.max_images} >= 1")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    spec = ModelSpec(timesteps=args.timesteps, weight_bits=args.weight_bits)
    torch.manual_seed(SEED)
    model = build_model(spec).eval()
    generator = torch.Generator().manual_seed(SEED)
    frames = input_frames(spec, torch.randint(0, 256, (args.max_images, 1, 28, 28),
                                              dtype=torch.uint8, generator=generator))
    with tempfile.TemporaryDirectory() as tmp:
        graph_path = Path(tmp) / "step.qonnx.onnx"
        export_graph(model, spec, graph_path)
        runs = {engine.name: time_engine(engine, frames, args.seconds)
                for engine in engines(model, spec, graph_path)}
    results = []
    for name, (images_per_s, trace) in runs.items():
        check = compare_read_outs(name, trace, runs["qonnx"][1], spec)
        results.append({"engine": name, "images_per_s": images_per_s,
                        "images": len(trace.logits), "logits_identical_to_qonnx": check["passed"],
                        "images_compared": check["images"]})
    report = {"benchmark": "exported step graph inference, batch 1, T steps per image",
              "estimator": f"images / wall seconds over >= {args.seconds} s, after one "
                           "warm-up image", "spec": spec.to_dict(),
              "machine": machine("cpu", ("onnxruntime", "qonnx")), "results": results}
    write_json(Path(args.out) / "step_graph.json", report)
    print(f"step graph, T={spec.timesteps}, {spec.weight_bits}-bit, batch 1 (images/s):")
    for r in results:
        print(f"  {r['engine']:16s} {r['images_per_s']:10.1f}   logits identical to qonnx: "
              f"{r['logits_identical_to_qonnx']} ({r['images_compared']} images)")


if __name__ == "__main__":
    run_cli(main)

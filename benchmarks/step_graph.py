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
seconds. Every engine's logits are compared with qonnx's on the images qonnx ran.
Writes step_graph.json.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from benchmarks.speed import machine
from common.atomic import write_json
from common.errors import UserError, check_choice, run_cli
from export.standard_onnx import standard_path
from export.step_graph import StepModule, export_graph, state_names
from model.network import build_model
from model.quantizers import pixels
from model.spec import WEIGHT_BITS, ModelSpec
from model.timesteps import run_timesteps

SEED = 0
ENGINES = ("pytorch-step", "pytorch-forward", "qonnx", "onnxruntime")
Engine = Callable[[torch.Tensor], np.ndarray]  # one image [1, C, H, W] -> logits [classes]


def engines(model, spec: ModelSpec, graph_path: Path) -> dict[str, Engine]:
    import onnxruntime as ort
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx

    step_module = StepModule(model)
    graph = ModelWrapper(str(graph_path))
    session = ort.InferenceSession(str(standard_path(graph_path)),
                                   providers=["CPUExecutionProvider"])
    membranes = state_names(spec)
    shapes = [graph.get_tensor_shape(f"in_{name}") for name in membranes]

    def step_module_step(x: torch.Tensor, states: list) -> tuple[torch.Tensor, list]:
        logits, *states = step_module(x, *states)
        return logits, states

    @torch.no_grad()
    def pytorch_step(x: torch.Tensor) -> np.ndarray:
        states = [torch.zeros(shape) for shape in shapes]
        logits, _ = run_timesteps(step_module_step, [x] * spec.timesteps, states, spec)
        return logits.numpy()[0]

    @torch.no_grad()
    def pytorch_forward(x: torch.Tensor) -> np.ndarray:
        return model(x).numpy()[0]

    def graph_steps(run_step: Callable[[dict], dict]) -> Engine:
        def step(x: np.ndarray, states: list) -> tuple[np.ndarray, list]:
            feed = dict(zip((f"in_{n}" for n in membranes), states, strict=True))
            out = run_step({"x": x, **feed})
            return out["logits_t"], [out[f"out_{n}"] for n in membranes]

        def run(x: torch.Tensor) -> np.ndarray:
            states = [np.zeros(s, np.float32) for s in shapes]
            logits, _ = run_timesteps(step, [x.numpy()] * spec.timesteps, states, spec)
            return logits[0]
        return run

    names = [o.name for o in session.get_outputs()]
    return {"pytorch-step": pytorch_step, "pytorch-forward": pytorch_forward,
            "qonnx": graph_steps(lambda feed: execute_onnx(graph, feed)),
            "onnxruntime": graph_steps(
                lambda feed: dict(zip(names, session.run(None, feed), strict=True)))}


def time_engine(engine: Engine, images: torch.Tensor, seconds: float) -> tuple[float, list]:
    """Images per second over at least `seconds` (and one image), and the logits."""
    engine(images[:1])  # warm-up
    outputs, start = [], time.perf_counter()
    while not outputs or (time.perf_counter() - start < seconds and len(outputs) < len(images)):
        outputs.append(engine(images[len(outputs):len(outputs) + 1]))
    return len(outputs) / (time.perf_counter() - start), outputs


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
    images = pixels(torch.randint(0, 256, (args.max_images, 1, 28, 28), dtype=torch.uint8,
                                  generator=generator))
    with tempfile.TemporaryDirectory() as tmp:
        graph_path = Path(tmp) / "step.qonnx.onnx"
        export_graph(model, spec, graph_path)
        runs = {name: time_engine(engine, images, args.seconds)
                for name, engine in engines(model, spec, graph_path).items()}
    reference = runs["qonnx"][1]
    results = []
    for name, (images_per_s, outputs) in runs.items():
        compared = min(len(outputs), len(reference))
        same = all(np.array_equal(a, b) for a, b in zip(outputs[:compared], reference, strict=True))
        results.append({"engine": name, "images_per_s": images_per_s, "images": len(outputs),
                        "logits_identical_to_qonnx": same, "images_compared": compared})
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

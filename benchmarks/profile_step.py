"""Where a training step of `make qat` spends its time: torch.profiler over eager steps and, on a
GPU, over CUDA-graph replays (quant_training.step.TrainStep).

    python -m benchmarks.profile_step [--device cpu|cuda] [--timesteps 4] [--weight-bits 4]
                                      [--batch 256] [--steps 20] [--out reports/bench]

Per mode: the median wall time of one step (synchronised, without the profiler) and the
operators and kernels with the most self time over `--steps` profiled steps (device time on a
GPU, CPU time on a CPU). Writes profile_step_<device>.md.
"""
from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from benchmarks.speed import check_device, sync, time_steps
from common.atomic import write_text
from common.errors import UserError, run_cli
from model.network import build_model
from model.quantizers import pixels
from model.spec import ModelSpec
from quant_training.step import TrainStep, optimizer_for

ROWS = 15


def profile_mode(spec: ModelSpec, device: torch.device, batch: int, steps: int,
                 graph: bool) -> tuple[float, str]:
    """(median ms per step, the profiler's table of the top operators by self time)."""
    torch.manual_seed(0)
    model = build_model(spec).to(device).train()
    step = TrainStep(model, optimizer_for(model, 1e-3), graph=graph)
    images = pixels(torch.randint(0, 256, (batch, 1, 28, 28), dtype=torch.uint8)).to(device)
    labels = torch.randint(0, 10, (batch,)).to(device)
    step_s = time_steps(lambda: step(images, labels), device, seconds=0.0, min_steps=steps)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda"
                                           else [])
    with profile(activities=activities) as prof:
        for _ in range(steps):
            step(images, labels)
        sync(device)
    key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    return 1e3 * statistics.median(step_s), prof.key_averages().table(sort_by=key, row_limit=ROWS)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.profile_step", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--timesteps", type=int, default=4)
    p.add_argument("--weight-bits", type=int, default=4)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--out", default="reports/bench")
    args = p.parse_args(argv)
    check_device(args.device)
    if args.batch < 1 or args.steps < 1:
        raise UserError(f"batch={args.batch} and steps={args.steps} must be >= 1")
    spec = ModelSpec(timesteps=args.timesteps, weight_bits=args.weight_bits)
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    sections = [f"# Training step profile: {name}, T={spec.timesteps}, {spec.weight_bits}-bit "
                f"weights, {spec.state_bits}-bit membranes, batch {args.batch}\n"]
    for graph in ((False, True) if device.type == "cuda" else (False,)):
        mode = "CUDA graph (make qat)" if graph else "eager"
        step_ms, table = profile_mode(spec, device, args.batch, args.steps, graph)
        sections.append(f"## {mode}: {step_ms:.2f} ms per step (median of {args.steps}), "
                        f"{1e3 * args.batch / step_ms:,.0f} images/s\n\n"
                        f"Top {ROWS} by self time over {args.steps} steps:\n\n```\n{table}\n```\n")
    text = "\n".join(sections)
    write_text(Path(args.out) / f"profile_step_{args.device}.md", text)
    print(text)


if __name__ == "__main__":
    run_cli(main)

"""Training and inference throughput and peak memory: ours against snnTorch and SpikingJelly.

    python -m benchmarks.speed [--timesteps 1 2 4 10] [--batch 64 256] [--device cpu|cuda]
                               [--seconds 3] [--out reports/bench]

Every (library, T, batch) runs in its own fresh process, so peak memory is that library's
alone and no library warms the caches of another. One measurement: build the network
(benchmarks.nets, float weights and membranes, same seed), then
  inference: `model.eval()`, `torch.no_grad()`, forward passes;
  training:  `model.train()`, forward + cross-entropy + backward + Adam step, each library
             the way it trains (`training_step`: ours as `make qat`, a CUDA graph on a GPU);
each phase runs WARMUP_STEPS untimed, then steps until `--seconds` have passed (at least
MIN_STEPS); throughput = batch / median step time, in images per second. Peak memory: the
process's peak resident set (VmHWM) after the phase on a CPU, torch.cuda.max_memory_allocated
on a GPU. Every CPU process applies common.cpu_memory.keep_freed_memory, as `make qat` does.
Writes speed_<device>.json and speed_<device>.md (tables of ratios ours / theirs).
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm import tqdm

from benchmarks.nets import BASELINES, LIBRARIES, OURS, SJ_CUDA_GRAPH, bench_spec, build
from common.atomic import write_json, write_text
from common.cpu_memory import keep_freed_memory
from common.errors import CheckFailed, UserError, check_choice, run_cli
from model.quantizers import exact_float32_sums, pixels
from quant_training.step import WARMUP_STEPS as STEP_WARMUP
from quant_training.step import TrainStep, optimizer_for

WARMUP_STEPS = STEP_WARMUP + 2  # untimed: past the eager warm-up and the capture of a graph
MIN_STEPS = 3
SEED = 0
LR = 1e-3
WORKER_TIMEOUT_S = 300  # one (library, T, batch) process
PACKAGES = ("brevitas", "snntorch", "spikingjelly", "triton")  # versions recorded
TRAINING_STEPS = {
    "qsnn, qsnn-int8": "quant_training.step.TrainStep as make qat runs it: one CUDA graph of "
                       "forward, backward and Adam on a GPU, eager on a CPU",
    "snntorch, spikingjelly": "eager, torch.optim.Adam",
    SJ_CUDA_GRAPH: "SpikingJelly's StaticCudaGraph around forward, loss and backward (its "
                   "train_classify.py execution_mode='cuda_graph'), Adam eager",
}


def measure(library: str, timesteps: int, batch: int, device: str, seconds: float) -> dict:
    """One library at one (T, batch): inference and training throughput and peak memory."""
    torch.manual_seed(SEED)
    dev = torch.device(device)
    exact_float32_sums()  # every library computes in IEEE float32 (no TF32)
    model = build(library, bench_spec(timesteps)).to(dev)
    images = pixels(torch.randint(0, 256, (batch, 1, 28, 28), dtype=torch.uint8)).to(dev)
    labels = torch.randint(0, 10, (batch,)).to(dev)
    train_step = training_step(library, model)

    def infer() -> None:
        with torch.no_grad():
            model(images)

    result = {"library": library, "timesteps": timesteps, "batch": batch,
              "baseline_memory_mib": _memory_mib(dev, peak=False)}
    for phase, run in (("inference", infer), ("training", lambda: train_step(images, labels))):
        model.train(phase == "training")
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
        step_s = time_steps(run, dev, seconds)
        result[phase] = {"images_per_s": batch / statistics.median(step_s),
                         "median_step_ms": 1e3 * statistics.median(step_s),
                         "steps": len(step_s), "peak_memory_mib": _memory_mib(dev, peak=True)}
    return result


def training_step(library: str, model: torch.nn.Module) -> Callable[[Tensor, Tensor], object]:
    """How each library trains: ours through quant_training.step.TrainStep exactly as `make qat`
    does (a CUDA graph of the whole step on a GPU), the baselines eagerly with a plain Adam, and
    SJ_CUDA_GRAPH as SpikingJelly's own reference training script does in its
    execution_mode="cuda_graph" (spikingjelly/activation_based/examples/common/
    train_classify.py: its StaticCudaGraph around forward, loss and backward after 3 warm-up
    steps; gradients zeroed and Adam stepped eagerly)."""
    if library in OURS:
        return TrainStep(model, optimizer_for(model, LR))
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    if library != SJ_CUDA_GRAPH:
        return TrainStep(model, optimizer, graph=False)
    from spikingjelly.activation_based._cuda_graph import StaticCudaGraph

    def forward_backward(images: Tensor, labels: Tensor) -> Tensor:
        loss = F.cross_entropy(model(images), labels)
        loss.backward()
        return loss

    graph = StaticCudaGraph(forward_backward, warmup_steps=3)

    def step(images: Tensor, labels: Tensor) -> Tensor:
        optimizer.zero_grad(set_to_none=False)
        loss = graph(images, labels)
        optimizer.step()
        return loss

    return step


def time_steps(run, device: torch.device, seconds: float,
               min_steps: int = MIN_STEPS) -> list[float]:
    """Seconds of each synchronised call of `run` after WARMUP_STEPS untimed calls: at least
    `min_steps` calls and until `seconds` have passed."""
    for _ in range(WARMUP_STEPS):
        run()
    sync(device)
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_steps or time.perf_counter() - start < seconds:
        tick = time.perf_counter()
        run()
        sync(device)
        times.append(time.perf_counter() - tick)
    return times


def check_device(device: str) -> None:
    """A one-line UserError unless `device` is cpu, or cuda with a CUDA device present."""
    check_choice("device", device, ("cpu", "cuda"))
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("device='cuda' asked for, but torch sees no CUDA device; use --device cpu")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _memory_mib(device: torch.device, peak: bool) -> float:
    """Peak (or current) GPU memory allocated by torch, or the process's peak (or current)
    resident set size on a CPU, in MiB."""
    if device.type == "cuda":
        allocated = torch.cuda.max_memory_allocated if peak else torch.cuda.memory_allocated
        return allocated(device) / 2**20
    field = "VmHWM" if peak else "VmRSS"
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024  # kB
    return float("nan")


def run_worker(library: str, timesteps: int, batch: int, device: str, seconds: float) -> dict:
    """`measure` in a fresh Python process; its JSON comes back on stdout."""
    cmd = [sys.executable, "-m", "benchmarks.speed", "--worker", library, "--timesteps",
           str(timesteps), "--batch", str(batch), "--device", device, "--seconds", str(seconds)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=WORKER_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise UserError(f"benchmark of {library} T={timesteps} batch={batch} did not finish "
                        f"in {WORKER_TIMEOUT_S} s") from None
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
        raise UserError(f"benchmark of {library} T={timesteps} batch={batch} failed: {tail[0]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _by_config(results: list[dict]) -> list[tuple[dict, dict[str, dict]]]:
    """Results grouped per (T, batch): ({"T", "batch"}, {library: result})."""
    configs = sorted({(r["timesteps"], r["batch"]) for r in results})
    return [({"T": t, "batch": b}, {r["library"]: r for r in results
                                    if (r["timesteps"], r["batch"]) == (t, b)})
            for t, b in configs]


def ratios(results: list[dict], phase: str) -> list[dict]:
    """Per (T, batch): every library's images/s and ours over each baseline's."""
    rows = []
    for config, here in _by_config(results):
        speed = {lib: result[phase]["images_per_s"] for lib, result in here.items()}
        row = {**config, **{f"{lib} img/s": value for lib, value in speed.items()}}
        row.update({f"{ours} / {lib}": speed[ours] / speed[lib] for ours in OURS
                    for lib in BASELINES if ours in speed and lib in speed})
        rows.append(row)
    return rows


def memory(results: list[dict]) -> list[dict]:
    """Per (T, batch): each library's peak memory in training, MiB."""
    return [{**config, **{f"{lib} MiB": result["training"]["peak_memory_mib"]
                          for lib, result in here.items()}}
            for config, here in _by_config(results)]


def markdown(rows: list[dict]) -> str:
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [f"{v:.2f}" if "/" in k and "img/s" not in k else
                 (f"{v:.0f}" if isinstance(v, float) else str(v)) for k, v in row.items()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def machine(device: str, packages: tuple[str, ...] = PACKAGES) -> dict:
    """The device, CPU, thread count and the versions of python, torch and `packages`."""
    info = {"device": device, "cpu": _cpu_name(), "cpu_threads": torch.get_num_threads(),
            "python": platform.python_version(), "torch": torch.__version__}
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name()
    for name in packages:
        info[name] = _version(name)
    return info


def _cpu_name() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.speed", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--timesteps", type=int, nargs="+", default=[1, 2, 4, 10],
                   help="default: the study's T")
    p.add_argument("--batch", type=int, nargs="+", default=[64, 256])
    p.add_argument("--libraries", nargs="+", default=None,
                   help=f"default: all ({', '.join(LIBRARIES)}; {SJ_CUDA_GRAPH} on cuda only)")
    p.add_argument("--device", default="cpu", help="cpu | cuda")
    p.add_argument("--seconds", type=float, default=3.0, help="timed seconds per phase")
    p.add_argument("--out", default="reports/bench")
    p.add_argument("--worker", metavar="LIBRARY", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    check_device(args.device)
    if args.libraries is None:
        args.libraries = [lib for lib in LIBRARIES if args.device == "cuda" or lib != SJ_CUDA_GRAPH]
    for library in [args.worker] if args.worker else args.libraries:
        check_choice("library", library, LIBRARIES)
        if library == SJ_CUDA_GRAPH and args.device != "cuda":
            raise UserError(f"library={library!r} is a CUDA-graph mode: use it with --device cuda")
    for name in ("timesteps", "batch"):
        bad = [v for v in getattr(args, name) if v < 1]
        if bad:
            raise UserError(f"{name}={bad[0]} must be an integer >= 1")
    if not args.seconds > 0:
        raise UserError(f"seconds={args.seconds} must be > 0")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker:
        keep_freed_memory(args.device)
        result = measure(args.worker, args.timesteps[0], args.batch[0], args.device, args.seconds)
        print(json.dumps(result))
        return
    jobs = [(lib, t, b) for t in args.timesteps for b in args.batch for lib in args.libraries]
    results, failed = [], []
    for lib, t, b in tqdm(jobs, desc="benchmark", unit="run"):
        try:
            results.append(run_worker(lib, t, b, args.device, args.seconds))
        except UserError as err:  # one library failing leaves the others' results
            failed.append(str(err))
            tqdm.write(f"warning: {err}", file=sys.stderr)
            continue
        tqdm.write(_summary(results[-1]), file=sys.stderr)
        text = write_report(results, args)  # after every run: a cut-off run keeps what it has
    if not results:
        raise UserError(f"every benchmark run failed; the first: {failed[0]}")
    print(text)
    if failed:
        raise CheckFailed(f"{len(failed)} of {len(jobs)} benchmark runs failed (above); "
                          f"the others are in {args.out}")


def _summary(result: dict) -> str:
    return (f"{result['library']} T={result['timesteps']} batch={result['batch']}: training "
            f"{result['training']['images_per_s']:,.0f} img/s, inference "
            f"{result['inference']['images_per_s']:,.0f} img/s")


def write_report(results: list[dict], args: argparse.Namespace) -> str:
    """Write speed_<device>.json and .md from the finished runs; return the tables' text."""
    tables = {phase: ratios(results, phase) for phase in ("training", "inference")}
    peak = "peak resident memory" if args.device == "cpu" else "peak torch.cuda allocation"
    report = {"benchmark": "speed: images/s and peak memory, ours vs snnTorch and SpikingJelly",
              "estimator": f"batch / median step time over >= {args.seconds} s after "
                           f"{WARMUP_STEPS} warm-up steps; one fresh process per run",
              "training_step": TRAINING_STEPS,
              "machine": machine(args.device), "network": bench_spec(1).to_dict() | {
                  "timesteps": "per run"}, "baselines": list(BASELINES),
              "results": results, "ratios": tables, "training_memory_mib": memory(results)}
    out = Path(args.out)
    write_json(out / f"speed_{args.device}.json", report)
    text = "\n\n".join([*(f"{phase} (images/s; ratio = ours / other)\n\n{markdown(rows)}"
                         for phase, rows in tables.items()),
                       f"training, {peak} (MiB)\n\n{markdown(memory(results))}"])
    write_text(out / f"speed_{args.device}.md", text + "\n")
    return text

if __name__ == "__main__":
    run_cli(main)

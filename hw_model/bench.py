"""Benchmark: seconds to evaluate 1,000 IMC hardware configurations over one profile.

    python -m hw_model.bench [--profile reports/profiles/<run>.json] [--out reports/bench]

Writes hw_sweep.json (configurations, seconds, configurations per second, machine).
"""
from __future__ import annotations

import argparse
import itertools
import platform
import time
from pathlib import Path

from common.atomic import write_json
from common.errors import run_cli
from hw_model import imc
from hw_model.estimate import estimate
from hw_model.targets import load_target_table
from hw_model.workload import EXAMPLES, load_workloads

CONFIGS = 1000
DEFAULT_PROFILE = EXAMPLES / "snn_mnist_T10_w4_s8_direct_seed0.json"


def imc_grid(count: int) -> list[imc.Config]:
    grid = itertools.product((32, 64, 128, 256), (3, 4, 5, 6, 7, 8), imc.MODES,
                             (100.0, 250.0, 500.0, 1000.0), (1, 2, 4), (4, 8))
    return [imc.Config(x, b, m, f, c, p) for x, b, m, f, c, p in itertools.islice(grid, count)]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m hw_model.bench", description=__doc__)
    p.add_argument("--profile", default=str(DEFAULT_PROFILE))
    p.add_argument("--out", default="reports/bench")
    args = p.parse_args(argv)
    workloads = load_workloads([Path(args.profile)])
    table = load_target_table("imc")
    configs = imc_grid(CONFIGS)
    start = time.perf_counter()
    summary, _ = estimate(workloads, ["imc"], {"imc": table}, {"imc": configs})
    seconds = time.perf_counter() - start
    result = {"benchmark": "hw_model sweep", "profile": args.profile,
              "configurations": len(summary),
              "seconds": seconds, "configurations_per_s": len(summary) / seconds,
              "goal_seconds": 2.0, "machine": f"{platform.machine()}, {platform.processor()}",
              "python": platform.python_version()}
    write_json(Path(args.out) / "hw_sweep.json", result)
    print(f"{len(summary)} IMC configurations over {Path(args.profile).name}: {seconds:.3f} s "
          f"({result['configurations_per_s']:.0f}/s; goal < 2 s)")


if __name__ == "__main__":
    run_cli(main)

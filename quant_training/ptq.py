"""Post-training quantization of a float run (an imported NIR graph, or any run with float
weights) to the project's fixed point, with a table of what it costs in accuracy.

    python -m quant_training.ptq runs/<name> [--weight-bits 4] [--state-bits 8] [--images 1000]

What is rounded (`quantized_spec`, `rounding`), the same rules `make qat FROM=runs/<name>` starts
its fine-tuning from:
- weights: signed w-bit integers times one power-of-two scale per tensor, by default the power
  of two with the least squared rounding error (`--weight-scale mse`; `max`: Brevitas'
  2^ceil(log2 max|w|) / 2^(bits-1); model.quantizers.weight_quant_kwargs). Measured on the
  README's snnTorch network at 4 bits: max 51.00 %, mse 96.40 % (float 97.20 %); fc1's scale
  2^-2 (max) rounds with a relative RMS error of 64 %, 2^-4 (mse) with 35 %;
- leak: beta -> 2^-K, K = round(log2(1/beta)) (the nearest power of two on a log scale; our
  integer LIF leaks by a shift, common/integer_lif.py);
- membrane grid: state_max = 2^ceil(log2(4 theta)) unless given (the seed network's ratio,
  theta = 0.5 in +-2), step = 2 state_max / 2^state_bits, V rounded to it and saturated every
  step (model.fixed_point);
- threshold: theta -> step x round(theta / step).
Writes <run>/ptq.json and prints the table (float vs quantized accuracy on the first --images
test images, and each rounding).
"""
from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from common.atomic import write_json
from common.errors import UserError, run_cli
from model.network import QuantCNN, SpikingCNN, build_model
from model.spec import FLOAT_BITS, STATE_BITS, WEIGHT_BITS, WEIGHT_SCALES, ModelSpec
from quant_training.engine import evaluate
from quant_training.trained_run import TrainedRun, add_run_arguments

REPORT_FILE = "ptq.json"
DEFAULTS = {"weight_bits": 4, "state_bits": 8, "weight_scale": "mse"}  # 4-bit w, 8-bit V


def leak_shift(beta: float) -> float:
    """beta rounded to 2^-K, K = round(log2(1/beta)) >= 0 (a shift)."""
    return 2.0 ** -max(0, round(math.log2(1 / beta)))


def grid_max(threshold: float) -> float:
    """The membrane range +-state_max around theta: 2^ceil(log2(4 theta))."""
    return 2.0 ** math.ceil(math.log2(4 * threshold))


def quantized_spec(spec: ModelSpec, **changes: Any) -> ModelSpec:
    """`spec` on the fixed point (module docstring); `changes` (ModelSpec fields such as
    weight_bits, state_bits, state_max, timesteps) override, weight_bits and state_bits default
    to DEFAULTS. Layers, T, reset and readout stay."""
    changes = {**DEFAULTS, **changes}
    beta = changes.pop("beta", leak_shift(spec.beta))
    theta = changes.pop("threshold", spec.threshold)
    state_max = changes.pop("state_max", grid_max(theta))
    bits = changes["state_bits"]
    if bits != FLOAT_BITS:
        step = 2 * state_max / 2**bits
        theta = step * max(1, round(theta / step))
    try:
        return replace(spec, beta=beta, threshold=theta, state_max=state_max, **changes)
    except TypeError as err:
        raise UserError(f"cannot quantize the run: {err}") from None


def rounding(float_spec: ModelSpec, quantized: ModelSpec, model: SpikingCNN | QuantCNN
             ) -> dict[str, str]:
    """What the quantized network rounds, one line each."""
    rows = {"beta": f"{float_spec.beta:.6g} -> {quantized.beta:g} (2^-"
                    f"{round(-math.log2(quantized.beta))}, a shift)",
            "threshold": f"{float_spec.threshold:.6g} -> {quantized.threshold:g}"}
    if quantized.quantized_state:
        rows["membrane"] = (f"float -> {quantized.state_bits}-bit grid, step "
                            f"{quantized.state_step:g}, saturating at +-{quantized.state_max:g}")
    if quantized.weight_bits != FLOAT_BITS:
        for stage in model.stages():
            quant = stage.synapse.quant_weight()
            weight = stage.synapse.weight.detach()
            error = (quant.value.detach() - weight).norm() / weight.norm()
            scale = float(quant.scale.detach().flatten()[0])
            rows[f"{stage.name} weights"] = (
                f"float -> {quantized.weight_bits}-bit x 2^{round(math.log2(scale))}, relative "
                f"RMS error {100 * float(error):.2f} %")
    return rows


def quantize(run: TrainedRun, **changes: Any) -> tuple[ModelSpec, SpikingCNN | QuantCNN]:
    """The run's network on the fixed point, with its float weights loaded."""
    if run.spec.kind != "snn":
        raise UserError(f"run {run.path} is kind={run.spec.kind!r}; PTQ here needs a spiking "
                        f"network")
    spec = quantized_spec(run.spec, **changes)
    model = build_model(spec)
    model.load_state_dict(run.model.state_dict())
    return spec, model.eval()


@dataclass
class Row:
    network: str
    spec: ModelSpec
    accuracy_pct: float

    def cells(self) -> list[str]:
        spec = self.spec
        weights = ("float32" if spec.weight_bits == FLOAT_BITS
                   else f"{spec.weight_bits}-bit ({spec.weight_scale} scales)")
        state = ("float32" if not spec.quantized_state
                 else f"{spec.state_bits}-bit (+-{spec.state_max:g})")
        return [self.network, weights, state, f"{spec.beta:.6g}", f"{spec.threshold:.6g}",
                f"{self.accuracy_pct:.2f} %"]


def table(rows: list[Row], images: int) -> str:
    head = ["network", "weights", "membrane", "beta", "theta", f"accuracy ({images} test images)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row.cells()) + " |" for row in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m quant_training.ptq", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_arguments(p)
    p.add_argument("--weight-bits", type=int, default=DEFAULTS["weight_bits"],
                   choices=[b for b in WEIGHT_BITS if b != FLOAT_BITS])
    p.add_argument("--state-bits", type=int, default=DEFAULTS["state_bits"],
                   choices=[b for b in STATE_BITS if b != FLOAT_BITS])
    p.add_argument("--weight-scale", default=DEFAULTS["weight_scale"], choices=WEIGHT_SCALES,
                   help="each weight tensor's power-of-two scale: least squared error | max |w|")
    p.add_argument("--state-max", type=float, default=None,
                   help="membrane range +-state_max (default 2^ceil(log2(4 theta)))")
    p.add_argument("--images", type=int, default=1000, help="first n test images")
    args = p.parse_args(argv)
    if args.images < 1:
        raise UserError(f"images={args.images} must be >= 1")
    run = TrainedRun.open(args)
    changes: dict[str, Any] = {"weight_bits": args.weight_bits, "state_bits": args.state_bits,
                               "weight_scale": args.weight_scale}
    if args.state_max is not None:
        changes["state_max"] = args.state_max
    spec, model = quantize(run, **changes)
    test = run.dataset(args.data_dir).test
    test = test.subset(torch.arange(min(args.images, len(test))))
    device = torch.device("cpu")
    rows = [Row(name, net_spec, evaluate(net, test, 256, device, desc=name).accuracy_pct)
            for name, net_spec, net in (("float", run.spec, run.model), ("PTQ", spec, model))]
    rounded = rounding(run.spec, spec, model)
    shown = table(rows, len(test))
    report = {"run": run.path.name, "images": len(test), "split": "test",
              "float_accuracy_pct": rows[0].accuracy_pct,
              "quantized_accuracy_pct": rows[1].accuracy_pct, "quantized_spec": spec.to_dict(),
              "rounded": rounded, "table": shown}
    write_json(Path(run.path) / REPORT_FILE, report)
    print(shown)
    print("rounded:\n" + "\n".join(f"  {k}: {v}" for k, v in rounded.items()))
    print(f"report: {run.path / REPORT_FILE}", file=sys.stderr)


if __name__ == "__main__":
    run_cli(main)

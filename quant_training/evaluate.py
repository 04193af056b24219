"""Evaluate a trained run's best checkpoint (`make eval RUN=runs/<name>`).

Prints accuracy, loss and spikes per image on the validation and test sets and writes
runs/<name>/eval.json. The network is rebuilt from the spec stored in the checkpoint.
"""
from __future__ import annotations

import argparse

from common.atomic import write_json
from common.cpu_memory import keep_freed_memory
from common.errors import run_cli
from quant_training.config import TrainConfig
from quant_training.engine import evaluate, spike_summary
from quant_training.trained_run import TrainedRun, add_run_arguments


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m quant_training.evaluate", description=__doc__)
    add_run_arguments(p)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    args = p.parse_args(argv)

    run = TrainedRun.open(args)
    run_dir, model, spec = run.path, run.model, run.spec
    device = TrainConfig(device=args.device).torch_device()
    keep_freed_memory(device.type)
    data = run.dataset(args.data_dir)
    model.to(device)
    report: dict[str, object] = {"run": run_dir.name,
                                 "checkpoint_epoch": run.checkpoint.get("epoch")}
    print(f"{run_dir}  ({spec.kind}, T={spec.timesteps}, {spec.weight_bits}-bit weights, "
          f"{spec.state_bits}-bit membrane, {spec.encoding} encoding)")
    for name, split in (("val", data.val), ("test", data.test)):
        result = evaluate(model, split, args.batch_size, device, desc=name)
        metrics = {"images": result.images, "accuracy_pct": result.accuracy_pct,
                   "loss": result.loss, **spike_summary(result, spec.timesteps)}
        report[name] = metrics
        spikes = metrics.get("spikes_per_image_total")
        print(f"  {name:4s} {result.images:6d} images  accuracy {result.accuracy_pct:6.2f} %  "
              f"loss {result.loss:.4f}"
              + (f"  spikes/image {spikes:,.0f}" if spikes is not None else ""))
    write_json(run_dir / "eval.json", report)


if __name__ == "__main__":
    run_cli(main)

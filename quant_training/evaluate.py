"""Evaluate a trained run's best checkpoint (`make eval RUN=runs/<name>`).

Prints accuracy, loss and spikes per image on the validation and test sets and writes
runs/<name>/eval.json. The network is rebuilt from the spec stored in the checkpoint.
"""
from __future__ import annotations

import argparse

from common.atomic import write_json
from common.errors import run_cli
from common.runs import CHECKPOINT, resolve_run
from quant_training.checkpoint import load_model
from quant_training.config import TrainConfig
from quant_training.data import load_dataset, resolve_data_dir
from quant_training.engine import evaluate, spike_summary


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m quant_training.evaluate", description=__doc__)
    p.add_argument("run", nargs="?", default=None, help="run folder (default: the latest)")
    p.add_argument("--runs-dir", default="runs")
    p.add_argument("--data-dir", default=None, help="dataset root (default $QSNN_DATA_DIR or data/)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    args = p.parse_args(argv)

    run_dir = resolve_run(args.run, args.runs_dir)
    model, spec, payload = load_model(run_dir / CHECKPOINT)
    trained = TrainConfig(**payload["train_config"])
    config = TrainConfig(dataset=trained.dataset, val_size=trained.val_size,
                         batch_size=args.batch_size, device=args.device)
    device = config.torch_device()
    data = load_dataset(config.dataset, resolve_data_dir(args.data_dir), config.val_size)
    model.to(device)
    report = {"run": run_dir.name, "checkpoint_epoch": payload.get("epoch")}
    print(f"{run_dir}  ({spec.kind}, T={spec.timesteps}, {spec.weight_bits}-bit weights, "
          f"{spec.state_bits}-bit membrane, {spec.encoding} encoding)")
    for name, split in (("val", data.val), ("test", data.test)):
        result = evaluate(model, split, config.batch_size, device, desc=name)
        report[name] = {"images": result.images, "accuracy_pct": result.accuracy_pct,
                        "loss": result.loss, **spike_summary(result, spec.timesteps)}
        spikes = report[name].get("spikes_per_image_total")
        print(f"  {name:4s} {result.images:6d} images  accuracy {result.accuracy_pct:6.2f} %  "
              f"loss {result.loss:.4f}"
              + (f"  spikes/image {spikes:,.0f}" if spikes is not None else ""))
    write_json(run_dir / "eval.json", report)


if __name__ == "__main__":
    run_cli(main)

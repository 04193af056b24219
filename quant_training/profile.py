"""Workload profile of a trained run (`make profile RUN=runs/<name>`); schema: common/profile.py.

Runs the best checkpoint over the test set (or `--limit` images of it, or the validation set)
with a WorkloadProbe and writes runs/<name>/profile.json and profile.csv. `make qat` writes the
profile from its single final test pass, so training never evaluates the test set twice.
"""
from __future__ import annotations

import argparse
import math

import torch
from torch import nn

from common.atomic import write_json, write_with
from common.cpu_memory import keep_freed_memory
from common.errors import UserError, run_cli
from common.profile import (
    COUNT_FIELDS,
    POOL_FIELDS,
    SCHEMA,
    STD_FIELDS,
    profile_table,
    validate_profile,
)
from common.runs import PROFILE_CSV, PROFILE_JSON
from model.hooks import WorkloadProbe
from model.network import QuantCNN, SpikingCNN, Stage
from model.spec import FLOAT_BITS, ModelSpec
from quant_training.data import Split
from quant_training.engine import Result, evaluate
from quant_training.trained_run import TrainedRun, add_run_arguments

READOUT_BITS = FLOAT_BITS  # the readout accumulates its layer's outputs over T in float


def build_profile(spec: ModelSpec, probe: WorkloadProbe, result: Result, run: str,
                  dataset: str, split: str) -> dict:
    """Assemble the schema's JSON from a probe that watched `result`'s evaluation pass."""
    measured = probe.summary()
    layers = [_layer(spec, stage, probe, measured.get(stage.name, {})) for stage in probe.stages]
    profile = {
        "schema": SCHEMA, "run": run, "spec": spec.to_dict(), "dataset": dataset, "split": split,
        "images": result.images, "accuracy_pct": result.accuracy_pct,
        "timesteps": spec.timesteps, "layers": layers,
        "totals": {k: sum(layer["totals"][k] for layer in layers) for k in COUNT_FIELDS},
        "estimator": "measured: PyTorch forward hooks (model.hooks.WorkloadProbe), mean per image",
    }
    return validate_profile(profile)


def _layer(spec: ModelSpec, stage: Stage, probe: WorkloadProbe, measured: dict) -> dict:
    snn = spec.kind == "snn"
    shapes = probe.shapes[stage.name]
    conv = isinstance(stage.synapse, nn.Conv2d)
    neuron = "readout" if stage.neuron is None else ("lif" if snn else "relu")
    neuron_shape = shapes.get("neuron", shapes["output"])
    neurons = math.prod(neuron_shape)
    layer = {
        "name": stage.name, "kind": "conv" if conv else "linear", "neuron": neuron,
        "input_shape": shapes["input"], "output_shape": shapes["output"],
        "neuron_shape": neuron_shape,
        "kernel": stage.synapse.kernel_size[0] if conv else None,
        "stride": stage.synapse.stride[0] if conv else None,
        "padding": stage.synapse.padding[0] if conv else None,
        "pool": (spec.pool if snn else "after_neuron") if stage.pooled else None,
        "pool_kind": stage.layer.pool.kind if stage.layer.pool else None,
        "pool_size": stage.layer.pool.size if stage.layer.pool else None,
        "binary_input": stage.binary_input, "computed_once": stage.layer.computed_once,
        "neurons": neurons,
        "weight_count": stage.synapse.weight.numel(), "weight_bits": spec.weight_bits,
        "bias_count": stage.synapse.bias.numel() if stage.synapse.bias is not None else 0,
        "state_count": neurons if snn else 0,
        "state_bits": (spec.state_bits if neuron == "lif" else READOUT_BITS) if snn else 0,
        "input_bits": stage.layer.input_bits,
        "output_bits": {"lif": 1, "relu": spec.weight_bits, "readout": READOUT_BITS}[neuron],
        "max_fanout": float(probe.fanouts[stage.name].max()),
        "connections": float(probe.fanouts[stage.name].expand(shapes["input"]).sum()),
    }
    steps = [_step(t, layer, measured, snn, spec.timesteps) for t in range(1, spec.timesteps + 1)]
    layer["per_timestep"] = steps
    layer["totals"] = {k: sum(step[k] for step in steps) for k in COUNT_FIELDS}
    return layer


def _step(t: int, layer: dict, measured: dict, snn: bool, timesteps: int) -> dict:
    def mean_std(metric: str) -> tuple[float, float]:
        return measured.get(metric, {}).get(t - 1, (0.0, 0.0))

    n = layer["neurons"]
    step: dict = {"t": t}
    for metric in (*STD_FIELDS, "dense_macs", *POOL_FIELDS):
        step[metric], std = mean_std(metric)
        if metric in STD_FIELDS:
            step[f"{metric}_std"] = std
    lif = layer["neuron"] == "lif"
    step["firing_rate"] = step["output_events"] / n
    step["neuron_updates"] = n
    step["resets"] = step["output_events"] if lif else 0.0
    step["weight_reads"] = step["synops"] + step["dense_macs"]
    step["input_reads"] = (step["input_events"] if layer["binary_input"] else step["dense_macs"])
    step["input_reads"] += n if layer["computed_once"] else 0
    step["potential_reads"] = step["synops"] + n if snn else 0.0
    step["potential_writes"] = step["potential_reads"]
    if not snn:
        step["output_writes"] = n
    elif lif:
        step["output_writes"] = step["output_events"]
    else:  # the readout's logits are written once, after the last step
        step["output_writes"] = n if t == timesteps else 0
    return step


def write_profile(run_dir, profile: dict) -> None:
    write_json(run_dir / PROFILE_JSON, profile)
    table = profile_table(profile)
    write_with(run_dir / PROFILE_CSV, lambda tmp: table.to_csv(tmp, index=False))


def profile_model(model: SpikingCNN | QuantCNN, spec: ModelSpec, split_data: Split, batch_size: int,
                  device: torch.device, run: str, dataset: str,
                  split: str) -> tuple[Result, dict]:
    """Evaluate with a WorkloadProbe attached; return the evaluation and the profile."""
    probe = WorkloadProbe(model)
    result = evaluate(model, split_data, batch_size, device, desc=split, probe=probe)
    return result, build_profile(spec, probe, result, run, dataset, split)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m quant_training.profile", description=__doc__)
    add_run_arguments(p)
    p.add_argument("--split", default="test", choices=("test", "val"))
    p.add_argument("--limit", type=int, default=None, help="profile the first n images")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--device", default="cpu", help="cpu | cuda")
    args = p.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        raise UserError(f"limit={args.limit} must be a positive number of images")
    run = TrainedRun.open(args)
    data = run.dataset(args.data_dir)
    split = data.test if args.split == "test" else data.val
    if args.limit:
        split = split.subset(torch.arange(min(args.limit, len(split))))
    device = torch.device(args.device)
    keep_freed_memory(device.type)
    _, profile = profile_model(run.model.to(device), run.spec, split, args.batch_size, device,
                               run.path.name, run.dataset_name, args.split)
    run_dir = run.path
    write_profile(run_dir, profile)
    totals = profile["totals"]
    print(f"{run_dir / PROFILE_JSON}: {profile['images']} images, accuracy "
          f"{profile['accuracy_pct']:.2f} %, per image: "
          f"{totals['output_events']:,.0f} output events, "
          f"{totals['synops']:,.0f} ACs, {totals['dense_macs']:,.0f} MACs")


if __name__ == "__main__":
    run_cli(main)

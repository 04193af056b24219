"""Hand-made workload profiles for cost-model tests (no torch, no training)."""
from __future__ import annotations

import copy

from common.profile import COUNT_FIELDS, SCHEMA, STD_FIELDS, validate_profile

SPEC = {"kind": "snn", "timesteps": 1, "weight_bits": 4, "state_bits": 8, "beta": 0.5}


def conv_layer(name="conv1", c_in=3, c_out=64, size=32, k=3, **static) -> dict:
    layer = {
        "name": name, "kind": "conv", "neuron": "lif", "input_shape": [c_in, size, size],
        "output_shape": [c_out, size, size], "neuron_shape": [c_out, size, size], "kernel": k,
        "stride": 1, "padding": k // 2, "pool": None, "binary_input": True,
        "computed_once": False, "neurons": c_out * size * size,
        "weight_count": c_in * c_out * k * k, "weight_bits": 4, "bias_count": c_out,
        "state_count": c_out * size * size, "state_bits": 8, "input_bits": 1, "output_bits": 1,
        "max_fanout": c_out * k * k, "connections": c_out * c_in * (size * k - 2) ** 2}
    layer.update(static)
    return layer


def linear_layer(name="fc1", f_in=100, f_out=10, **static) -> dict:
    layer = {
        "name": name, "kind": "linear", "neuron": "lif", "input_shape": [f_in],
        "output_shape": [f_out], "neuron_shape": [f_out], "kernel": None, "stride": None,
        "padding": None, "pool": None, "binary_input": True, "computed_once": False,
        "neurons": f_out, "weight_count": f_in * f_out, "weight_bits": 4, "bias_count": f_out,
        "state_count": f_out, "state_bits": 8, "input_bits": 1, "output_bits": 1,
        "max_fanout": f_out, "connections": f_in * f_out}
    layer.update(static)
    return layer


def step(**counts) -> dict:
    values = {key: 0.0 for key in COUNT_FIELDS}
    values.update({f"{key}_std": 0.0 for key in STD_FIELDS})
    values["firing_rate"] = 0.0
    values.update(counts)
    return values


def profile(layers: list[dict], steps: list[list[dict]], kind: str = "snn",
            accuracy_pct: float = 99.0, run: str = "hand") -> dict:
    """A valid profile: `steps[i]` are layer i's per-timestep counts (t filled in)."""
    layers = copy.deepcopy(layers)
    timesteps = len(steps[0])
    for layer, per_t in zip(layers, steps, strict=True):
        layer["per_timestep"] = [{**s, "t": t + 1} for t, s in enumerate(per_t)]
        layer["totals"] = {k: sum(s[k] for s in per_t) for k in COUNT_FIELDS}
    return validate_profile({
        "schema": SCHEMA, "run": run, "spec": {**SPEC, "kind": kind, "timesteps": timesteps},
        "dataset": "mnist", "split": "test", "images": 1, "accuracy_pct": accuracy_pct,
        "timesteps": timesteps, "layers": layers,
        "totals": {k: sum(layer["totals"][k] for layer in layers) for k in COUNT_FIELDS}})

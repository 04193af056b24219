"""The workload profile: the only thing hw_model reads about a network (schema qsnn-profile/1).

A profile is plain JSON, written by `python -m quant_training.profile` (and at the end of
`make qat`) as runs/<name>/profile.json with a flat CSV twin, profile.csv. All counts are
means per image over the profiled images (standard deviation across images in `*_std`).

Top level: schema, run, spec (the ModelSpec dict), dataset, split, images, accuracy_pct,
timesteps, layers (data-flow order). Each layer is a weight layer plus the neuron after it:

    LAYER_FIELDS (static, per layer)        STEP_FIELDS (per timestep t = 1..T)

Derivations (per image, per timestep; N = neurons of the layer, f_i = fan-out of input i):
- synops = sum_i s_i f_i over binary input events s_i: accumulate-only operations (ACs), with
  the exact fan-out (a padded 3x3 conv's corner pixel drives 4 of 9 positions).
- dense_macs = sum_i f_i for a layer whose input is not binary (every connection computed);
  under direct encoding conv1 is computed once per image, so its MACs sit at t = 1 only.
- neuron_updates = N (each LIF neuron leaks, integrates and compares every step; each ReLU
  of the ANN is evaluated once); resets = output_events for a LIF layer.
- Memory traffic, in the style of Lemaire et al. (ICONIP 2022), counted in accesses of the
  bit widths given in the layer record (no reuse assumed: an upper bound for a buffered design):
  weight_reads = synops + dense_macs; input_reads = input_events for binary input, dense_macs
  otherwise, plus N per step for a layer computed once (its stored current is read);
  potential_reads = potential_writes = synops + neuron_updates for spiking layers (read-modify-
  write of the target membrane per AC, one leak/fire pass per neuron), 0 for the ANN;
  output_writes = output_events for spiking layers, N for the ANN.
- The layer's pool (k x k window, stride k, no padding, on a C x H x W map: P = C floor(H / k)
  floor(W / k) pooled outputs), each timestep it runs (every step, but at t = 1 only for a
  pool before the neuron of a layer computed once):
  pool_ops = P (k^2 - 1), a dense pool's two-input operations: an average pool's additions
  (the 1 / k^2 is a shift or folds into the next layer), a max pool's compares (ORs on spikes);
  pool_events = nonzero pool inputs inside the windows (spikes for a pool after a LIF), an
  event-driven pool's operations: one increment of its window's count (average) or one OR into
  its window's output (max of spikes) per event.
  A profile written before these counts reads them from its shapes and counts: pool_ops as
  above, pool_events = output_events for a pool after the neuron (exact when k divides H and W,
  as in every seed network; an upper bound otherwise), P k^2 for a pool of currents.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from common.errors import UserError

SCHEMA = "qsnn-profile/1"

TOP_FIELDS = ("schema", "run", "spec", "dataset", "split", "images", "accuracy_pct",
              "timesteps", "layers")

LAYER_FIELDS: dict[str, str] = {
    "name": "layer name (conv1, conv2, ..., fc1, ...; the readout is the last fc)",
    "kind": "conv | linear",
    "neuron": "lif | relu | readout (the output layer, accumulated over T)",
    "input_shape": "[C, H, W] or [F] of the weight layer's input",
    "output_shape": "[C, H, W] or [F] of the weight layer's output",
    "neuron_shape": "shape of the neuron array (after pooling if pool == before_neuron)",
    "kernel": "kernel size (conv) or null", "stride": "stride or null",
    "padding": "padding or null",
    "pool": "null | after_neuron | before_neuron: where the layer's pool sits",
    "pool_kind": "null | max | avg", "pool_size": "k of the k x k pool (stride k), or null",
    "binary_input": "true when the input is spikes in {0, 1}",
    "computed_once": "true when the layer runs once per image (conv1, direct encoding)",
    "neurons": "count N of neurons (or readout accumulators)",
    "weight_count": "weights", "weight_bits": "bits per weight (32 = float)",
    "bias_count": "biases",
    "state_count": "membrane potentials kept between timesteps (0 for the ANN)",
    "state_bits": "bits per membrane potential (32 = float)",
    "input_bits": "bits per input value (1 for spikes)",
    "output_bits": "bits per output value (1 for spikes)",
    "max_fanout": "largest fan-out of one input element",
    "connections": "synapses used by one full input (sum of all fan-outs) = dense MACs per pass",
    "totals": "sum over t of every STEP_FIELDS count (per inference)",
}

STEP_FIELDS: dict[str, str] = {
    "t": "timestep, 1..T",
    "input_events": "nonzero inputs (spikes into the layer) per image",
    "synops": "accumulate-only synaptic operations (ACs) per image",
    "dense_macs": "multiply-accumulates per image for non-binary input",
    "output_events": "spikes (LIF) or nonzero activations (ReLU) per image",
    "firing_rate": "output_events / neurons",
    "neuron_updates": "neuron state updates per image",
    "resets": "membrane resets per image (= spikes)",
    "weight_reads": "weight memory reads per image",
    "input_reads": "input (event or activation) reads per image",
    "potential_reads": "membrane potential reads per image",
    "potential_writes": "membrane potential writes per image",
    "output_writes": "output (event or activation) writes per image",
    "pool_ops": "dense pool operations per image: (k^2 - 1) per pooled output",
    "pool_events": "nonzero pool inputs inside the windows per image (event-driven pool ops)",
}
STD_FIELDS = ("input_events", "synops", "output_events")
POOL_FIELDS = ("pool_ops", "pool_events")
COUNT_FIELDS = tuple(k for k in STEP_FIELDS if k not in ("t", "firing_rate"))
LAYER_NUMBERS = ("neurons", "weight_count", "weight_bits", "bias_count", "state_count",
                 "state_bits", "input_bits", "output_bits", "max_fanout", "connections")


def validate_profile(profile: Any, source: str = "profile") -> dict:
    """Return `profile` if it follows the schema, else raise a one-line UserError."""
    if not isinstance(profile, dict):
        raise UserError(f"{source} is not a JSON object")
    if profile.get("schema") != SCHEMA:
        raise UserError(f"{source} has schema {profile.get('schema')!r}; expected {SCHEMA!r}")
    missing = [k for k in TOP_FIELDS if k not in profile]
    if missing:
        raise UserError(f"{source} lacks field(s) {missing}")
    timesteps = profile["timesteps"]
    if not isinstance(timesteps, int) or timesteps < 1 or not profile["layers"]:
        raise UserError(f"{source} needs timesteps >= 1 and at least one layer")
    for layer in profile["layers"]:
        if isinstance(layer, dict):
            _with_pool_kind(layer)
        _validate_layer(layer, timesteps, source)
    _with_totals(profile, [layer["totals"] for layer in profile["layers"]])
    return profile


def _with_pool_kind(layer: dict) -> None:
    """A layer written before pools had kinds and sizes (all were 2x2 max pools) gets them."""
    if "pool" in layer and "pool_kind" not in layer:
        layer["pool_kind"] = "max" if layer["pool"] else None
        layer["pool_size"] = 2 if layer["pool"] else None


def _with_pool_counts(layer: dict, where: str) -> None:
    """A layer written before pool_ops and pool_events gets them from its shapes and counts
    (module docstring); 0 for a layer without a pool."""
    steps = layer["per_timestep"]
    if all(not isinstance(step, dict) or all(k in step for k in POOL_FIELDS) for step in steps):
        return
    shape, k = layer["output_shape"], layer["pool_size"] or 0
    if k and not (isinstance(k, int) and isinstance(shape, list) and len(shape) == 3
                  and all(isinstance(n, int) and n > 0 for n in shape)):
        raise UserError(f"{where}: pool_size={k!r}, output_shape={shape!r}: a pool needs an "
                        f"integer size and an output_shape [C, H, W]")
    pooled = shape[0] * (shape[1] // k) * (shape[2] // k) if k else 0
    after = layer["pool"] != "before_neuron"
    for step in steps:
        runs = k and (after or not layer["computed_once"] or step.get("t") == 1)
        step.setdefault("pool_ops", pooled * (k * k - 1) if runs else 0)
        step.setdefault("pool_events", (step.get("output_events") if after else pooled * k * k)
                        if runs else 0)


def _with_totals(record: dict, parts: list) -> None:
    """Totals of a record written before the pool counts: the sums of its parts' counts."""
    totals = record.get("totals")
    if isinstance(totals, dict):
        for key in POOL_FIELDS:
            totals.setdefault(key, sum(part.get(key, 0.0) for part in parts
                                       if isinstance(part, dict)))


def _validate_layer(layer: Any, timesteps: int, source: str) -> None:
    name = layer.get("name", "?") if isinstance(layer, dict) else "?"
    where = f"{source} layer {name}"
    if not isinstance(layer, dict):
        raise UserError(f"{where} is not a JSON object")
    missing = [k for k in LAYER_FIELDS if k not in layer]
    if missing:
        raise UserError(f"{where} lacks field(s) {missing}")
    steps = layer.get("per_timestep")
    if not isinstance(steps, list) or len(steps) != timesteps:
        raise UserError(f"{where} needs per_timestep with {timesteps} entries")
    for key in LAYER_NUMBERS:
        _check_count(layer[key], f"{where}: {key}")
    _with_pool_counts(layer, where)
    for step in steps:
        for key in (*COUNT_FIELDS, *(f"{k}_std" for k in STD_FIELDS)):
            value = step.get(key) if isinstance(step, dict) else None
            _check_count(value, f"{where} t={step.get('t') if isinstance(step, dict) else '?'}: "
                                f"{key}")
    _with_totals(layer, steps)


def _check_count(value: Any, where: str) -> None:
    """A count must be a finite number >= 0 (a NaN or inf would leave empty report cells)."""
    if (not isinstance(value, (int, float)) or isinstance(value, bool)
            or not math.isfinite(value) or value < 0):
        raise UserError(f"{where}={value!r} must be a finite number >= 0")


def load_profile(path: str | Path) -> dict:
    """Read and validate a profile.json file."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"profile {path} does not exist")
    try:
        profile = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(
            f"profile {path} is not valid JSON ({err.__class__.__name__}: {err})") from None
    return validate_profile(profile, source=f"profile {path}")


def profile_table(profile: dict) -> pd.DataFrame:
    """One row per (layer, timestep): the STEP_FIELDS plus the layer's static fields."""
    rows = []
    for layer in profile["layers"]:
        static = {k: v for k, v in layer.items()
                  if k not in ("per_timestep", "totals") and not isinstance(v, (list, dict))}
        for step in layer["per_timestep"]:
            rows.append({"run": profile["run"], "layer": layer["name"], **static, **step})
    return pd.DataFrame(rows).drop(columns="name").convert_dtypes()

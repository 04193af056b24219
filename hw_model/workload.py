"""Workload profiles as numpy arrays: the only view of a network the cost models get.

Rows are (layer, timestep) pairs in profile order; `layer_of_row` maps a row to its layer.
Per-row arrays hold the profile's per-timestep counts (means per image); per-layer arrays
hold the static facts (bits, shapes, memory sizes, the pool), among them two widths:

    acc_bits      = min(32, w + a + ceil(log2 fan_in))  the accumulator of a layer's current
    pool_op_bits  = b for a max pool, min(32, ceil(log2(k^2 (2^b - 1) + 1))) for an average
                    pool (its window's sum), with b = 1 for a pool of spikes (after a LIF),
                    acc_bits for a pool of currents (before the neuron), the output bits for
                    a pool of activations (the ANN); 0 without a pool
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.errors import UserError
from common.profile import COUNT_FIELDS, load_profile
from common.runs import PROFILE_JSON

EXAMPLES = Path(__file__).resolve().parents[1] / "reports" / "profiles"


@dataclass(frozen=True)
class Workload:
    run: str
    kind: str  # snn | ann
    timesteps: int
    weight_bits: int
    state_bits: int
    beta: float
    accuracy_pct: float
    layer_names: list[str]
    layer: dict[str, np.ndarray]  # per-layer static arrays
    step: dict[str, np.ndarray]  # per-row counts
    layer_of_row: np.ndarray
    t_of_row: np.ndarray
    source: str

    @property
    def rows(self) -> int:
        return len(self.layer_of_row)

    def per_row(self, name: str) -> np.ndarray:
        """A per-layer array repeated for each of the layer's rows."""
        return self.layer[name][self.layer_of_row]

    def event_pool_ops(self) -> np.ndarray:
        """Per row, the operations of an event-driven pool: pool_events (one per spike into
        a window) for a pool of spikes; pool_ops (k^2 - 1 per pooled output) for a pool of
        graded values, which has no events to skip."""
        return np.where(self.per_row("pool_on_spikes"), self.step["pool_events"],
                        self.step["pool_ops"])


def from_profile(profile: dict, source: str = "") -> Workload:
    layers = profile["layers"]
    spec = profile["spec"]
    layer = {key: np.array([float(item[key]) for item in layers]) for key in (
        "neurons", "weight_count", "weight_bits", "bias_count", "state_count", "state_bits",
        "input_bits", "output_bits", "max_fanout", "connections")}
    layer["out_channels"] = np.array([float(item["output_shape"][0]) for item in layers])
    layer["positions"] = np.array([float(math.prod(item["output_shape"][1:])) for item in layers])
    layer["kernel"] = np.array([float(item["kernel"] or 1) for item in layers])
    layer["fan_in"] = layer["weight_count"] / layer["out_channels"]
    layer["input_size"] = np.array([float(math.prod(item["input_shape"])) for item in layers])
    layer["input_width"] = np.array([float(item["input_shape"][-1]) for item in layers])
    layer["computed_once"] = np.array([bool(item["computed_once"]) for item in layers])
    layer["binary_input"] = np.array([bool(item["binary_input"]) for item in layers])
    layer["is_lif"] = np.array([item["neuron"] == "lif" for item in layers])
    layer["pooled"] = np.array([bool(item.get("pool")) for item in layers])
    layer["padding"] = np.array([float(item["padding"] or 0) for item in layers])
    layer["acc_bits"] = np.minimum(32.0, layer["weight_bits"] + layer["input_bits"]
                                   + np.ceil(np.log2(layer["fan_in"])))
    layer.update(_pool_arrays(layers, layer))
    steps = [(i, step) for i, item in enumerate(layers) for step in item["per_timestep"]]
    return Workload(
        run=profile["run"], kind=spec["kind"], timesteps=profile["timesteps"],
        weight_bits=spec["weight_bits"], state_bits=spec["state_bits"], beta=spec["beta"],
        accuracy_pct=profile["accuracy_pct"], layer_names=[item["name"] for item in layers],
        layer=layer,
        step={key: np.array([float(step[key]) for _, step in steps]) for key in COUNT_FIELDS},
        layer_of_row=np.array([i for i, _ in steps]),
        t_of_row=np.array([step["t"] for _, step in steps]),
        source=source)


def _pool_arrays(layers: list[dict], layer: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """pool_on_spikes and pool_op_bits (module docstring), from the k x k pool (k = 0: none)."""
    k = np.array([float(item.get("pool_size") or 0) for item in layers])
    on_spikes = np.array([item.get("pool") == "after_neuron" and item["neuron"] == "lif"
                          for item in layers])
    on_currents = np.array([item.get("pool") == "before_neuron" for item in layers])
    b = np.where(on_spikes, 1.0, np.where(on_currents, layer["acc_bits"], layer["output_bits"]))
    is_avg = np.array([item.get("pool_kind") == "avg" for item in layers])
    window_sum = np.minimum(32.0, np.ceil(np.log2(k * k * (2.0 ** np.minimum(b, 32.0) - 1) + 1)))
    bits = np.where(k > 0, np.where(is_avg, window_sum, b), 0.0)
    return {"pool_on_spikes": on_spikes, "pool_op_bits": bits}


def find_profiles(runs: list[str] | None, runs_dir: str | Path = "runs") -> tuple[list[Path], str]:
    """Profile files to report on, and a sentence saying where they came from.

    `runs` may name run folders or profile.json files; without it, every runs/*/profile.json,
    or, when there is none, the example profiles committed under reports/profiles/.
    """
    if runs:
        paths = [Path(r) / PROFILE_JSON if Path(r).is_dir() else Path(r) for r in runs]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise UserError(f"no profile at {', '.join(missing)}; run `make profile RUN=...` first")
        return paths, f"{len(paths)} profile(s) given with --runs"
    paths = sorted(Path(runs_dir).glob("*/profile.json"))
    if paths:
        return paths, f"{len(paths)} profile(s) of trained runs under {runs_dir}/"
    paths = sorted(EXAMPLES.glob("*.json"))
    if not paths:
        raise UserError(f"no profiles under {runs_dir}/ and no examples in {EXAMPLES}")
    return paths, (f"no trained runs under {runs_dir}/: using the {len(paths)} example profiles "
                   f"committed in reports/profiles/")


def load_workloads(paths: list[Path]) -> list[Workload]:
    return [from_profile(load_profile(path), source=str(path)) for path in paths]

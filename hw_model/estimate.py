"""Run cost models over workloads and collect tidy tables (units in the column names)."""
from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from common.errors import UserError
from hw_model import fpga
from hw_model.constants import Table
from hw_model.costs import Costs, NotMapped
from hw_model.targets import ESTIMATORS, TARGETS, TargetConfig
from hw_model.workload import Workload


def summary_row(w: Workload, target: str, config: TargetConfig, costs: Costs,
                table: Table) -> dict[str, Any]:
    """Totals per inference for one (run, target, config)."""
    row: dict[str, Any] = {
        "run": w.run, "kind": w.kind, "timesteps": w.timesteps, "weight_bits": w.weight_bits,
        "state_bits": w.state_bits, "accuracy_pct": w.accuracy_pct, "target": target,
        "config": config.label(), "estimator": ESTIMATORS[target],
        "energy_pj": float(costs.total_energy_pj.sum()),
        "latency_ns": costs.inference_latency_ns,
        "area_mm2": float(costs.area_mm2.sum()) + costs.shared_area_mm2}
    for part, values in costs.energy_pj.items():
        row[f"energy_{part}_pj"] = float(values.sum())
    row.update(costs.per_inference)
    for resource in ("lut", "bram18", "uram", "dsp"):
        if resource in costs.resources:
            row[resource] = float(costs.resources[resource].sum())
    if isinstance(config, fpga.Config):
        row["fits_part"] = fpga.fits(costs, table, config.part)
    return row


def layer_rows(w: Workload, target: str, config: TargetConfig, costs: Costs) -> pd.DataFrame:
    """One row per (layer, timestep) with energy by component, cycles and latency."""
    table = pd.DataFrame({
        "run": w.run, "target": target, "config": config.label(),
        "layer": np.array(w.layer_names)[w.layer_of_row], "t": w.t_of_row,
        "energy_pj": costs.total_energy_pj, "cycles": costs.cycles,
        "latency_ns": costs.latency_ns})
    for part, values in costs.energy_pj.items():
        table[f"energy_{part}_pj"] = values
    for resource, values in costs.resources.items():
        table[f"layer_{resource}"] = values[w.layer_of_row]
    table["layer_area_mm2"] = costs.area_mm2[w.layer_of_row]
    return table


def estimate(workloads: list[Workload], targets: list[str], tables: Mapping[str, Table],
             configs: Mapping[str, Sequence[TargetConfig]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(summary per run x target x config, per-layer rows for each target's first config).
    A target that cannot hold a network (NotMapped) is skipped for it, with one line on
    stderr saying why."""
    summaries, layers = [], []
    for w in workloads:
        for target in targets:
            for i, config in enumerate(configs[target]):
                try:
                    costs = TARGETS[target].evaluate(w, config, tables[target])
                except NotMapped as err:
                    print(f"{target}: not estimated: {err}", file=sys.stderr)
                    break
                summaries.append(summary_row(w, target, config, costs, tables[target]))
                if i == 0:
                    layers.append(layer_rows(w, target, config, costs))
    if not summaries:
        raise UserError(f"no run could be estimated on {', '.join(targets)} (see above)")
    return pd.DataFrame(summaries), pd.concat(layers, ignore_index=True)

"""In-memory-compute crossbars with SpikeSim's constants (Moitra et al., IEEE TCAD 2023).

Mapping (as SpikeSim): a PE holds k^2 crossbars of X x X cells, one per kernel position, for
one block of X input and X output channels; a layer needs
    PEs = ceil(C_in / X) * ceil(C_out / X) * ceil(w / cell_bits)      (FC: k = 1, C = features)
and one PE cycle computes one output position of one PE. Per PE cycle (c = X / 8 ADCs):
    E_PE = E_htree + E_fetch + E_lif + c (k^2 E_xbar(X) + c (E_adc(b) + E_mux))
           + 16 c E_shift_add + c E_temp + E_tile_buffer
with E_xbar(X) = E_xbar,64 (X/64)^2 and E_adc(b) = E_adc,ref 2^(b - b_ref) (Walden FoM).
Non-binary inputs (the image under direct encoding, ANN activations) are streamed bit-serially:
input_bits PE cycles per pass (as ISAAC, Shafiee et al., ISCA 2016).

Activity modes:
  dense: every PE cycle of every timestep is spent (SpikeSim): energy linear in T, blind to
         sparsity;
  event: crossbar, ADC and peripheral energy scale with the measured activity
         synops / connections (only rows that receive spikes are driven); the LIF update of
         every neuron is still paid each step: neuron_updates * E_lif / X.
A layer computed once per image (conv1, direct encoding) runs at t = 1 only.
Latency: PEs run in parallel, output positions in sequence, layers one after another:
    cycles = positions * pe_cycle_clocks (x input_bits if bit-serial) per active step.
Area: PEs * (k^2 A_xbar (X/64)^2 + c (A_adc(b) + A_mux)) per layer + membrane SRAM, and per
tile (PEs_per_tile PEs) the shift-add, buffers and H-tree.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from hw_model.constants import Table
from hw_model.costs import Costs, ns_per_cycle
from hw_model.workload import Workload

NAME = "imc"
REQUIRED = ("xbar_read", "adc_conversion", "adc_ref_bits", "adc_scaling_per_bit", "mux",
            "shift_add", "temp_buffer", "tile_buffer", "htree", "fetch", "lif_neuron",
            "xbar_area", "adc_area", "mux_area", "shift_add_area", "temp_buffer_area",
            "tile_buffer_area", "htree_area", "sram_bit_area", "columns_per_adc",
            "pe_cycle_clocks", "crossbar_size", "cell_bits", "pes_per_tile", "clock_mhz")
MODES = ("dense", "event")
REFERENCE_X = 64
UM2_PER_MM2 = 1e6


@dataclass(frozen=True)
class Config:
    crossbar: int
    adc_bits: int
    mode: str
    clock_mhz: float
    cell_bits: int = 4
    pes_per_tile: int = 8

    def label(self) -> str:
        return (f"X{self.crossbar}-adc{self.adc_bits}-{self.mode}-{self.clock_mhz:g}MHz"
                f"-cell{self.cell_bits}-pe{self.pes_per_tile}")


def default_config(table: Table) -> Config:
    return Config(int(table.v("crossbar_size")), int(table.v("adc_ref_bits")), "event",
                  table.v("clock_mhz"), int(table.v("cell_bits")), int(table.v("pes_per_tile")))


def sweep_configs(table: Table) -> list[Config]:
    base = default_config(table)
    return [replace(base, crossbar=x, adc_bits=b, mode=m, clock_mhz=f)
            for x in (64, 128, 256) for b in (4, 5, 6, 7, 8) for m in MODES
            for f in (100.0, 250.0, 500.0)]


def pe_cycle_energy_pj(table: Table, crossbar: int, kernel: np.ndarray | int,
                       adc_bits: int) -> dict[str, np.ndarray]:
    """E_PE split into array, adc, periphery and lif parts (see the module docstring)."""
    c = crossbar / table.v("columns_per_adc")
    xbar = table.v("xbar_read") * (crossbar / REFERENCE_X) ** 2
    adc = table.v("adc_conversion") * _adc_scale(table, adc_bits)
    kernel = np.asarray(kernel, dtype=float)
    return {
        "array": c * kernel**2 * xbar,
        "adc": np.full_like(kernel, c * c * (adc + table.v("mux"))),
        "periphery": np.full_like(kernel, table.v("htree") + table.v("fetch")
                                  + 16 * c * table.v("shift_add") + c * table.v("temp_buffer")
                                  + table.v("tile_buffer")),
        "lif": np.full_like(kernel, table.v("lif_neuron")),
    }


def pe_area_um2(table: Table, crossbar: int, kernel: np.ndarray | int, adc_bits: int):
    c = crossbar / table.v("columns_per_adc")
    xbar = table.v("xbar_area") * (crossbar / REFERENCE_X) ** 2
    adc = table.v("adc_area") * _adc_scale(table, adc_bits)
    return np.asarray(kernel, dtype=float) ** 2 * xbar + c * (adc + table.v("mux_area"))


def _adc_scale(table: Table, adc_bits: int) -> float:
    return table.v("adc_scaling_per_bit") ** (adc_bits - table.v("adc_ref_bits"))


def layer_pes(w: Workload, config: Config) -> np.ndarray:
    layer = w.layer
    c_in = layer["fan_in"] / layer["kernel"] ** 2
    cells = np.ceil(layer["weight_bits"] / config.cell_bits)
    return np.ceil(c_in / config.crossbar) * np.ceil(layer["out_channels"] / config.crossbar) * cells


def evaluate(w: Workload, config: Config, table: Table) -> Costs:
    if config.mode not in MODES:
        raise ValueError(f"mode {config.mode!r} not in {MODES}")
    rows = w.layer_of_row
    active = ~w.per_row("computed_once") | (w.t_of_row == 1)
    serial = np.where(w.per_row("binary_input"), 1.0, w.per_row("input_bits"))
    pe_cycles = active * layer_pes(w, config)[rows] * w.per_row("positions") * serial
    per_cycle = {k: v[rows] for k, v in pe_cycle_energy_pj(table, config.crossbar,
                                                             w.layer["kernel"],
                                                             config.adc_bits).items()}
    if config.mode == "dense":
        energy = {k: pe_cycles * v for k, v in per_cycle.items()}
    else:
        connections = w.per_row("connections")
        activity = np.where(w.per_row("binary_input"), w.step["synops"] / connections, 1.0)
        energy = {k: pe_cycles * activity * per_cycle[k] for k in ("array", "adc", "periphery")}
        energy["lif"] = w.step["neuron_updates"] * w.per_row("is_lif") * (
            table.v("lif_neuron") / config.crossbar)
    cycles = active * w.per_row("positions") * serial * table.v("pe_cycle_clocks")
    latency = cycles * ns_per_cycle(config.clock_mhz)
    pes = layer_pes(w, config)
    membrane_um2 = w.layer["state_count"] * w.layer["state_bits"] * table.v("sram_bit_area")
    tiles = np.ceil(pes.sum() / config.pes_per_tile)
    tile_um2 = (config.crossbar / table.v("columns_per_adc") * table.v("shift_add_area")
                + table.v("temp_buffer_area") + table.v("tile_buffer_area") + table.v("htree_area"))
    return Costs(
        energy_pj=energy, cycles=cycles, latency_ns=latency,
        inference_latency_ns=float(latency.sum()),
        area_mm2=(pes * pe_area_um2(table, config.crossbar, w.layer["kernel"], config.adc_bits)
                  + membrane_um2) / UM2_PER_MM2,
        shared_area_mm2=float(tiles * tile_um2) / UM2_PER_MM2)

"""In-memory-compute RRAM crossbars, anchored on SpikeSim (Moitra et al., IEEE TCAD 2023).

As the anchor (SpikeSim's energy model, Intelligent-Computing-Lab-Yale/SpikeSim at commit
a83c4511a00e4abeb4b326acee08c07c66b4bbea, SNN_train_infer_quantization_ela/ela_spikesim.py,
compute_energy, lines 38-70; its constants in tables/imc.toml): a PE holds k^2 crossbars of
X x X cells, one per kernel position, for one block of X input and X output channels; one PE
cycle computes one output position of one PE; with c = X / 8 ADCs,
    E_PE = E_htree + E_fetch + E_lif + c (k^2 E_xbar + c (E_adc + E_mux))
           + 16 c E_shift_add + c E_temp + E_tile_buffer
and a layer spends ceil(C_in / X) ceil(C_out / X) positions PE cycles in every timestep
(`dense` mode). At SpikeSim's operating point (X = 64, 4-bit ADC, weights in one cell,
binary inputs, dense) the energies equal SpikeSim's (828.4861472 pJ per PE cycle; tested).

Ours (DEPARTURES below, each with its factor, pinned by tests): the crossbar read energy
scales with the cell count, E_xbar(X) = E_xbar,64 (X / 64)^2 (SpikeSim keeps it fixed); the
ADC energy with its resolution, E_adc(b) = E_adc,4 2^(b - 4) (Walden; SpikeSim's energy model
has no ADC-bit parameter); a weight of w bits takes ceil(w / cell_bits) cells, so
PEs x ceil(w / cell_bits); a non-binary input (the image under direct encoding, ANN
activations) is streamed bit-serially, input_bits PE cycles per pass (ISAAC, Shafiee et al.,
ISCA 2016), and a layer computed once per image (conv1, direct encoding) runs at t = 1 only;
the activity modes beyond `dense`; output positions are counted before pooling (our pool
follows the neuron); the pool's own work, in the digital periphery (SpikeSim charges none), at
Horowitz's 45 nm adder energies (tables/imc.toml), as the digital model's pool:
    E_pool = ops E_add(pool_op_bits),  ops = pool_ops (k^2 - 1 per pooled output, every step
             the pool runs) in `dense` and `event-array`, where the periphery works every PE
             cycle, and the event-driven count (one per spike into a window) in `event`;
no latency (the pool streams beside the PE cycles) and no area of its own; area and latency
are our models, not SpikeSim's.

Activity modes, from SpikeSim's bound to the optimistic one:
  dense        every PE cycle of every timestep (SpikeSim): linear in T, blind to sparsity;
  event-array  only the crossbar arrays scale with the measured activity synops / connections
               (a row that receives no spike is not driven); ADC conversions, buffers, H-tree
               and the LIF update are paid per PE cycle as in SpikeSim (the default);
  event        OPTIMISTIC: array, ADC and periphery all scale with the activity, and the LIF
               update is paid once per neuron update (neuron_updates E_lif / X) instead of
               per PE cycle: it assumes a design that also skips conversions and buffer
               traffic of silent rows, which no cited design shows.
Latency: PEs run in parallel, output positions in sequence, layers one after another:
    cycles = positions * pe_cycle_clocks (x input_bits if bit-serial) per active step.
Area: PEs * (k^2 A_xbar (X/64)^2 + c (A_adc(b) + A_mux)) per layer + membrane SRAM, and per
tile (PEs_per_tile PEs) the shift-add, buffers and H-tree.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from hw_model.constants import Table
from hw_model.costs import UM2_PER_MM2, Costs, Departure, ns_per_cycle
from hw_model.digital import FLOAT, add_energy
from hw_model.workload import Workload

NAME = "imc"
REQUIRED = ("xbar_read", "adc_conversion", "adc_ref_bits", "adc_scaling_per_bit", "mux",
            "shift_add", "temp_buffer", "tile_buffer", "htree", "fetch", "lif_neuron",
            "xbar_area", "adc_area", "mux_area", "shift_add_area", "temp_buffer_area",
            "tile_buffer_area", "htree_area", "sram_bit_area", "columns_per_adc",
            "pe_cycle_clocks", "crossbar_size", "cell_bits", "pes_per_tile", "clock_mhz",
            "add_int8", "add_int32", "add_fp32")
MODES = ("dense", "event-array", "event")
ANCHOR = ("SpikeSim (Moitra et al., TCAD 2023), ela_spikesim.py compute_energy, "
          "Intelligent-Computing-Lab-Yale/SpikeSim@a83c4511, lines 38-70")
DEPARTURES = (
    Departure("crossbar read energy x (X / 64)^2", "a read drives X^2 cells; SpikeSim fixes it "
              "at its 64 x 64 value", "cell count (ours)",
              "E_PE x1.558 at X = 128, x3.342 at X = 256 (vs SpikeSim's formula at that X)"),
    Departure("ADC energy x 2^(b - 4)", "resolution costs energy; SpikeSim's energy model has no "
              "ADC-bit parameter (that 2.03084 pJ is a 4-bit figure is inferred from its "
              "NICE default of 4 bits)", "Walden, IEEE JSAC 1999 (FoM x 2^ENOB)",
              "ADC part x4 at 6 bits"),
    Departure("PEs x ceil(w / cell_bits)", "a weight wider than a cell is split over cells; "
              "SpikeSim maps one weight to one cell", "ours", "8-bit weights, 4-bit cells: x2"),
    Departure("bit-serial non-binary input, a layer computed once per image runs at t = 1 only",
              "SpikeSim charges every layer every step with binary inputs",
              "ISAAC (Shafiee et al., ISCA 2016)",
              "conv1 (8-bit image, direct encoding) at T = 5: 8 / 5 = x1.6 of SpikeSim's charge"),
    Departure("`event-array` mode: the crossbar arrays scale with synops / connections",
              "a row that receives no spike is not driven", "ours (mechanism stated)",
              "at 10 % activity: 1 - 0.9 x the array share of E_PE (0.862 x dense at X = 64, "
              "3x3)"),
    Departure("`event` mode (OPTIMISTIC): array, ADC and periphery scale with activity, LIF once "
              "per neuron update", "assumes silent rows also skip ADC conversions and buffer "
              "traffic; no cited design shows this", "ours (upper bound on the savings)",
              "at 10 % activity with X neuron updates per PE cycle (one per column): "
              "0.106 x dense"),
    Departure("output positions before pooling", "our pool follows the neuron, so the crossbar "
              "computes every pre-pool position; SpikeSim's example counts them after pooling",
              "ours", "x4 PE cycles on a 2x2-pooled layer"),
    Departure("the pool in digital periphery at Horowitz's 45 nm add energies (the digital "
              "model's E_pool)", "SpikeSim's compute_energy charges no pooling; a pool of "
              "spikes needs adders or ORs beside the crossbars", "Horowitz, ISSCC 2014",
              "a 2x2 max pool of spikes, dense: 3 x 0.00375 pJ per pooled output and step, "
              "vs 828.5 pJ per PE cycle"),
    Departure("area and latency models", "SpikeSim's area and latency functions are not used",
              "ours (module docstring)", "not comparable with SpikeSim's area and latency"),
)
REFERENCE_X = 64


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


def default_configs(table: Table) -> list[Config]:
    """SpikeSim's operating point in each activity mode: the report shows the range."""
    return [Config(int(table.v("crossbar_size")), int(table.v("adc_ref_bits")), mode,
                   table.v("clock_mhz"), int(table.v("cell_bits")), int(table.v("pes_per_tile")))
            for mode in ("event-array", "dense", "event")]


def sweep_configs(table: Table) -> list[Config]:
    base = default_configs(table)[0]
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


def pe_area_um2(table: Table, crossbar: int, kernel: np.ndarray | int,
                adc_bits: int) -> np.ndarray:
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
    tiles = np.ceil(c_in / config.crossbar) * np.ceil(layer["out_channels"] / config.crossbar)
    return tiles * cells


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
    activity = np.where(w.per_row("binary_input"),
                        w.step["synops"] / w.per_row("connections"), 1.0)
    scaled = {"dense": (), "event-array": ("array",),
              "event": ("array", "adc", "periphery")}[config.mode]
    energy = {k: pe_cycles * v * (activity if k in scaled else 1.0)
              for k, v in per_cycle.items()}
    if config.mode == "event":
        energy["lif"] = w.step["neuron_updates"] * w.per_row("is_lif") * (
            table.v("lif_neuron") / config.crossbar)
    pool_ops = w.event_pool_ops() if config.mode == "event" else w.step["pool_ops"]
    pool_bits = w.per_row("pool_op_bits")
    energy["pool"] = pool_ops * add_energy(pool_bits, table, pool_bits >= FLOAT)
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

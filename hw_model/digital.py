"""Digital neuromorphic / ASIC accelerator: operation and SRAM energies from Horowitz (2014).

As the anchor (ANCHOR): Horowitz's energies at his points (int8 / int32 / fp32 add and
multiply; 8 KB / 32 KB / 1 MB SRAM reads); memory traffic counted as Lemaire et al. Ours
(DEPARTURES, each with its factor): the interpolations between his points, no operand reuse,
a free leak for a power-of-two beta; the formulas:

Per (layer, timestep), with a = input bits, w = weight bits, s = state bits and
acc = min(32, w + a + ceil(log2 fan_in)) accumulator bits:

    E_compute = synops * E_add(acc) + dense_macs * (E_mul(a, w) + E_add(acc))
    E_neuron  = neuron_updates * (E_leak + 2 E_add(s)) + resets * E_add(s)     (LIF: integrate,
                compare, subtractive reset; E_leak = 0 when beta is a power of two: a fixed
                shift is wiring, else E_mul(s, s)); a ReLU or the readout's accumulator:
                neuron_updates * E_add(out bits)
    E_memory  = sum over the profile's memory traffic of accesses * E_sram(memory size, bits)
    E_pool    = pool_ops_event * E_add(pool_op_bits)    (the layer's pool, event-driven as the
                synapses: one op per spike into a window of a pool of spikes (an increment of
                the window's count for an average pool, an OR for a max pool), k^2 - 1 per
                pooled output for a pool of graded values (hw_model/workload.py); a compare
                charged as an add of its width (a comparator is a subtractor), a 1-bit OR as
                E_add(1) = E_add(8) / 8; the pool acts on the neuron's output stream: no memory
                traffic of its own)

E_add is linear in width through Horowitz's 8- and 32-bit points (ripple-carry adder);
E_mul is linear in the partial-product count a*w through the 8x8 and 32x32 points (array
multiplier); 32-bit weights or states mean float (fp32 add / multiply).
E_sram(size, bits) = bits/64 * E64(size), E64 piecewise linear in log2(size) through the
8 KB / 32 KB / 1 MB points, held at the 8 KB value below 8 KB (no credit for tiny memories).

Latency: `parallel_units` ACs/MACs and `neuron_units` neuron updates per cycle, layers one
after another: cycles = (synops + dense_macs) / P + (neuron_updates + pool_ops_event) / N
(expected values; the neuron units pool their outputs). Area: SRAM bits (weights, membranes,
input and output buffers) * cell area, plus the P arithmetic units (an adder, and a multiplier
when a layer is dense) and N neuron units (their adders also pool).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from hw_model.constants import Table
from hw_model.costs import UM2_PER_MM2, Costs, Departure, linear_in_bits, ns_per_cycle
from hw_model.workload import Workload

NAME = "digital"
REQUIRED = ("add_int8", "add_int32", "add_fp32", "mult_int8", "mult_int32", "mult_fp32",
            "sram_8kb_read64", "sram_32kb_read64", "sram_1mb_read64", "area_add_int8",
            "area_add_int32", "area_add_fp32", "area_mult_int8", "area_mult_int32",
            "area_mult_fp32", "sram_bit_area", "parallel_units", "neuron_units", "clock_mhz")
FLOAT = 32
ANCHOR = ("Horowitz, ISSCC 2014, 45 nm: int8/int32/fp32 add and multiply, 8 KB / 32 KB / 1 MB "
          "SRAM 64-bit reads (tables/digital.toml); memory traffic counted as Lemaire et al., "
          "ICONIP 2022")
DEPARTURES = (
    Departure("adder energy linear in width between Horowitz's 8- and 32-bit points",
              "a ripple-carry adder's energy grows with its bits", "ours (interpolation)",
              "E_add(16) = E_add(8) + (E_add(32) - E_add(8)) / 3"),
    Departure("multiplier energy linear in the partial-product count a x w",
              "an array multiplier has a x w cells", "ours (interpolation)",
              "E_mul(4 x 8) = E_mul(8 x 8) / 2"),
    Departure("SRAM energy per access piecewise linear in log2(size), held at 8 KB below",
              "Horowitz gives three sizes", "ours (interpolation)",
              "no credit for memories under 8 KB"),
    Departure("no operand reuse: every operation reads its operands",
              "buffer reuse depends on a dataflow we do not model",
              "ours (Lemaire et al.-style traffic counts, without a reuse model)",
              "an upper bound on memory energy"),
    Departure("leak free when beta is a power of two", "a fixed shift is wiring", "ours",
              "beta = 0.5: E_leak = 0"),
    Departure("pool ops as adds of the operand width, a 1-bit OR as E_add(8) / 8, on the "
              "neuron units", "Horowitz gives no compare or OR energy; a comparator is a "
              "subtractor", "ours (interpolation of Horowitz's add)",
              "2x2 max pool of spikes: 0.00375 pJ per spike; 2x2 average pool of spikes: "
              "E_add(3) = 0.01125 pJ per spike"),
)


@dataclass(frozen=True)
class Config:
    parallel_units: int
    neuron_units: int
    clock_mhz: float

    def label(self) -> str:
        return f"P{self.parallel_units}-N{self.neuron_units}-{self.clock_mhz:g}MHz"


def default_configs(table: Table) -> list[Config]:
    return [Config(int(table.v("parallel_units")), int(table.v("neuron_units")),
                   table.v("clock_mhz"))]


def sweep_configs(table: Table) -> list[Config]:
    base = default_configs(table)[0]
    return [replace(base, parallel_units=p, clock_mhz=f)
            for p in (16, 32, 64, 128, 256, 512) for f in (100.0, 200.0, 400.0, 800.0)]


def add_energy(bits: np.ndarray, table: Table, is_float: np.ndarray | bool = False) -> np.ndarray:
    fixed = linear_in_bits(bits, (8, table.v("add_int8")), (32, table.v("add_int32")))
    return np.where(is_float, table.v("add_fp32"), fixed)


def mult_energy(a_bits: np.ndarray, w_bits: np.ndarray, table: Table,
                is_float: np.ndarray | bool = False) -> np.ndarray:
    fixed = linear_in_bits(a_bits * w_bits, (64, table.v("mult_int8")),
                           (1024, table.v("mult_int32")))
    return np.where(is_float, table.v("mult_fp32"), fixed)


def sram_energy(size_bits: np.ndarray, access_bits: np.ndarray, table: Table) -> np.ndarray:
    """Energy of one `access_bits`-wide access to an SRAM of `size_bits` (see module doc)."""
    kib = np.array([8.0, 32.0, 1024.0]) * 8192  # 8 KB, 32 KB, 1 MB in bits
    e64 = np.array([table.v("sram_8kb_read64"), table.v("sram_32kb_read64"),
                    table.v("sram_1mb_read64")])
    x = np.log2(np.maximum(size_bits, kib[0]))
    slope_last = (e64[2] - e64[1]) / (np.log2(kib[2]) - np.log2(kib[1]))
    inside = np.interp(x, np.log2(kib), e64)
    per64 = np.where(x > np.log2(kib[2]), e64[2] + (x - np.log2(kib[2])) * slope_last, inside)
    return per64 * access_bits / 64.0


def evaluate(w: Workload, config: Config, table: Table) -> Costs:
    a, wb = w.per_row("input_bits"), w.per_row("weight_bits")
    s, out_bits, acc = w.per_row("state_bits"), w.per_row("output_bits"), w.per_row("acc_bits")
    float_ops, float_state = np.maximum(wb, a) >= FLOAT, s >= FLOAT
    step = w.step
    e_acc = add_energy(acc, table, float_ops)
    compute = step["synops"] * e_acc + step["dense_macs"] * (
        mult_energy(a, wb, table, float_ops) + e_acc)
    lif = w.per_row("is_lif")
    e_state = add_energy(s, table, float_state)
    leak = 0.0 if np.log2(w.beta).is_integer() else mult_energy(s, s, table, float_state)
    neuron = np.where(
        lif, step["neuron_updates"] * (leak + 2 * e_state) + step["resets"] * e_state,
        step["neuron_updates"] * add_energy(out_bits, table, out_bits >= FLOAT))
    memory = _memory_energy(w, table)
    pool_ops, pool_bits = w.event_pool_ops(), w.per_row("pool_op_bits")
    pool = pool_ops * add_energy(pool_bits, table, pool_bits >= FLOAT)
    cycles = ((step["synops"] + step["dense_macs"]) / config.parallel_units
              + (step["neuron_updates"] + pool_ops) / config.neuron_units)
    latency = cycles * ns_per_cycle(config.clock_mhz)
    return Costs(
        energy_pj={"compute": compute, "neuron": neuron, "memory": memory, "pool": pool},
        cycles=cycles, latency_ns=latency, inference_latency_ns=float(latency.sum()),
        area_mm2=_memory_bits(w)["all"] * table.v("sram_bit_area") / UM2_PER_MM2,
        shared_area_mm2=_arithmetic_area_um2(w, config, table) / UM2_PER_MM2)


def _memory_bits(w: Workload) -> dict[str, np.ndarray]:
    layer = w.layer
    bits = {"weights": layer["weight_count"] * layer["weight_bits"],
            "state": layer["state_count"] * layer["state_bits"],
            "input": layer["input_size"] * layer["input_bits"],
            "output": layer["neurons"] * layer["output_bits"]}
    bits["all"] = sum(bits.values())
    return bits


def _memory_energy(w: Workload, table: Table) -> np.ndarray:
    size = {k: v[w.layer_of_row] for k, v in _memory_bits(w).items()}
    step = w.step
    return (step["weight_reads"] * sram_energy(size["weights"], w.per_row("weight_bits"), table)
            + step["input_reads"] * sram_energy(size["input"], w.per_row("input_bits"), table)
            + (step["potential_reads"] + step["potential_writes"])
            * sram_energy(size["state"], w.per_row("state_bits"), table)
            + step["output_writes"] * sram_energy(size["output"], w.per_row("output_bits"), table))


def _arithmetic_area_um2(w: Workload, config: Config, table: Table) -> float:
    """P accumulators of the widest accumulator (+ multipliers if any layer is dense), N
    neuron units (an adder and a comparator of the state width each)."""
    layer = w.layer
    acc = float(np.max(layer["acc_bits"]))
    is_float = max(w.weight_bits, w.state_bits) >= FLOAT
    adder = table.v("area_add_fp32") if is_float else float(
        linear_in_bits(acc, (8, table.v("area_add_int8")), (32, table.v("area_add_int32"))))
    dense = ~layer["binary_input"]
    mult = 0.0
    if dense.any():
        a, wb = layer["input_bits"][dense].max(), layer["weight_bits"][dense].max()
        mult = table.v("area_mult_fp32") if max(a, wb) >= FLOAT else float(linear_in_bits(
            a * wb, (64, table.v("area_mult_int8")), (1024, table.v("area_mult_int32"))))
    s = float(w.state_bits)
    neuron_adder = table.v("area_add_fp32") if s >= FLOAT else float(
        linear_in_bits(s, (8, table.v("area_add_int8")), (32, table.v("area_add_int32"))))
    return config.parallel_units * (adder + mult) + config.neuron_units * 2 * neuron_adder

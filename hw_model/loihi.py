"""Intel Loihi (first generation), a digital neuromorphic chip, analytic, per timestep.

As the anchor (ANCHOR): the per-event energies and times of Davies et al. (IEEE Micro 2018,
Table 2, pre-silicon SDF/SPICE simulation at 0.75 V) and the core limits it states (p. 89),
all in tables/loihi.toml with page and row. Ours (DEPARTURES, each with its factor): the
mapping, the routing and the treatment of non-binary inputs, below.

Mapping: each layer on cores of its own (neurons and synapses of one layer share no core),
    cores = max(ceil(N / N_core), ceil(connections w / M_core))
with N_core = 1,024 compartments, M_core = 128 KB of synaptic state and w the weight bits
(Loihi's compressed formats store 1-9-bit weights; index bits are not counted, so the core
count is a lower bound). Refused in one line: weights wider than 9 bits, a neuron's fan-in
above the 4,096 input axons of a core, a network needing more than one chip's 128 cores.
Per (layer, timestep), with s = input spikes into the layer (after the previous layer's pool):
    E_syn    = synops E_sop                      (one op per synapse a spike reaches)
    E_neuron = spikes E_active + (updates - spikes) E_inactive
               (every compartment is updated every step; "active" read as a neuron that
               fires, "inactive" as one that only leaks: the paper does not define them)
    E_pool   = pool_ops_event E_sop
               (the layer's pool as compartments of weight-1 synapses: each spike into a window
               is one synaptic op, an average pool's compartment sums its window's count, a max
               pool's fires at threshold 1 (an OR); a pool of graded values (the ANN, a pool of
               currents) charged k^2 - 1 ops per pooled output, an idealization as the rest of
               graded handling; the pool compartments' updates and routing are not charged)
    E_route  = s d (E_tile + h (E_EW + E_NS) / 2)
               d = destination cores per spike = ceil(max_fanout cores / N), at most cores;
               h = tile hops per message (the configuration; ASSUMPTION)
A non-binary input value (the image under direct encoding, ANN activations) is sent as
input_bits spike planes on axons weighted 2^j, so its nonzero inputs cost input_bits
messages and input_bits x fan-out synaptic ops (an upper bound: every bit set); a layer
computed once per image (conv1, direct encoding) receives its input at t = 1 only and holds
the current (Loihi's CUBA current with no decay). The ANN is evaluated the same way, an
idealization: Loihi 1 has no graded spikes. Pools: the next layer's synapses read the pooled
output (E_pool above; an average pool's count reaches them as bit planes, its non-binary input).
Time per step: the slowest core, ((synops + pool_ops_event) t_sop + spikes t_active + inactive
t_inactive) / cores of its layer, plus the mesh barrier, linear in tiles between Table 2's 1-
and 32-tile values (4 cores per tile, inferred); an inference takes T + L - 1 steps (a layer
integrates in step t + 1 the spikes of step t). Area: each core's share of the 60 mm2 die
(x86 cores and I/O included: an upper bound). No static or leakage power: Table 2 gives none.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hw_model.constants import Table
from hw_model.costs import Costs, Departure, NotMapped
from hw_model.workload import Workload

NAME = "loihi"
REQUIRED = ("synaptic_op", "synaptic_op_time", "neuron_update_active", "neuron_update_inactive",
            "neuron_update_active_time", "neuron_update_inactive_time", "within_tile_spike",
            "tile_hop_east_west", "tile_hop_north_south", "barrier_one_tile", "barrier_32_tiles",
            "neurons_per_core", "synapse_memory_per_core", "input_axons_per_core",
            "cores_per_chip", "cores_per_tile", "max_weight_bits", "die_area", "mean_hops")
ANCHOR = ("Davies et al., IEEE Micro 2018, Loihi: Table 2 pre-silicon per-event energies and "
          "times at 0.75 V, core limits p. 89 (tables/loihi.toml)")
DEPARTURES = (
    Departure("layer-per-core mapping, cores from neurons and weight bits (no index bits)",
              "Loihi's compilers pack layers onto cores; the paper gives the limits, not a "
              "mapping", "ours (limits: Davies 2018 p. 89)",
              "a lower bound on cores; conv2 of the seed network: 13 cores"),
    Departure("active update = a neuron that fires, inactive = one that only leaks",
              "Table 2 gives both energies without defining them", "ours",
              "at a 1 % firing rate the neuron energy is 0.65 x its all-active value"),
    Departure("routing: destination cores per spike from the fan-out, h hops per message",
              "placement decides the hops; Table 2 gives the per-hop energy", "ours",
              "h = 1: 5.2 pJ per message; h = 4: 15.7 pJ"),
    Departure("non-binary inputs as input_bits spike planes (upper bound: every bit set)",
              "Loihi 1 carries binary spikes only", "ours (bit-serial, as ISAAC)",
              "8-bit image: x8 messages and synaptic ops on conv1's nonzero pixels"),
    Departure("a pool as weight-1 synaptic ops into compartments (one per spike into a window)",
              "Loihi has no pooling unit; a compartment summing its window (average) or firing "
              "at threshold 1 (max: an OR) is the mapping of a pool of spikes", "ours",
              "a 2x2 pool of spikes: 23.6 pJ and 3.5 ns per spike into it"),
    Departure("barrier time linear in tiles between the 1- and 32-tile values, 4 cores per "
              "tile", "Table 2 gives the range only", "ours (interpolation; inferred tiles)",
              "11 tiles: 227 ns per step"),
    Departure("no static power; area = die share per core",
              "Table 2 has no leakage figure; the die holds x86 cores and I/O too", "ours",
              "energy is dynamic only (a lower bound); area an upper bound"),
)


@dataclass(frozen=True)
class Config:
    mean_hops: float

    def label(self) -> str:
        return f"loihi-{self.mean_hops:g}hop"


def default_configs(table: Table) -> list[Config]:
    return [Config(table.v("mean_hops"))]


def sweep_configs(table: Table) -> list[Config]:
    return [Config(hops) for hops in (1.0, 2.0, 4.0)]


def layer_cores(w: Workload, table: Table) -> np.ndarray:
    """Cores per layer (module docstring), after the one-line refusals (NotMapped)."""
    layer = w.layer
    for i, name in enumerate(w.layer_names):
        if layer["weight_bits"][i] > table.v("max_weight_bits"):
            raise NotMapped(f"run {w.run}: layer {name} has {layer['weight_bits'][i]:g}-bit "
                            f"weights; Loihi holds 1-{table.v('max_weight_bits'):g}-bit weights")
        if layer["fan_in"][i] > table.v("input_axons_per_core"):
            raise NotMapped(f"run {w.run}: layer {name} has fan-in {layer['fan_in'][i]:g} > "
                            f"the {table.v('input_axons_per_core'):g} input axons of a Loihi core")
    cores = np.maximum(np.ceil(layer["neurons"] / table.v("neurons_per_core")),
                       np.ceil(layer["connections"] * layer["weight_bits"]
                               / table.v("synapse_memory_per_core")))
    if cores.sum() > table.v("cores_per_chip"):
        per_layer = ", ".join(f"{n} {c:g}" for n, c in zip(w.layer_names, cores, strict=True))
        raise NotMapped(f"run {w.run} needs {cores.sum():g} Loihi cores ({per_layer}); one chip "
                        f"has {table.v('cores_per_chip'):g}, multi-chip systems are not modelled")
    return cores


def barrier_ns(tiles: float, table: Table) -> float:
    """Table 2's mesh barrier, linear in tiles between its 1- and 32-tile values."""
    low, high = table.v("barrier_one_tile"), table.v("barrier_32_tiles")
    return low + (tiles - 1) * (high - low) / 31


def evaluate(w: Workload, config: Config, table: Table) -> Costs:
    cores = layer_cores(w, table)
    rows, step = w.layer_of_row, w.step
    receives = ~w.per_row("computed_once") | (w.t_of_row == 1)
    planes = np.where(w.per_row("binary_input"), 1.0, w.per_row("input_bits"))
    mean_fanout = w.per_row("connections") / w.per_row("input_size")
    graded_ops = step["input_events"] * mean_fanout * planes  # non-binary inputs, bit-serial
    synops = receives * np.where(w.per_row("binary_input"), step["synops"], graded_ops)
    messages = receives * step["input_events"] * planes * np.minimum(
        cores, np.ceil(w.layer["max_fanout"] * cores / w.layer["neurons"]))[rows]
    spikes = np.minimum(step["output_events"], step["neuron_updates"])
    idle = step["neuron_updates"] - spikes
    hop_pj = (table.v("tile_hop_east_west") + table.v("tile_hop_north_south")) / 2
    pool_ops = w.event_pool_ops()
    energy = {
        "synaptic": synops * table.v("synaptic_op"),
        "pool": pool_ops * table.v("synaptic_op"),
        "neuron": (spikes * table.v("neuron_update_active")
                   + idle * table.v("neuron_update_inactive")),
        "routing": messages * (table.v("within_tile_spike") + config.mean_hops * hop_pj)}
    core_ns = ((synops + pool_ops) * table.v("synaptic_op_time")
               + spikes * table.v("neuron_update_active_time")
               + idle * table.v("neuron_update_inactive_time")) / cores[rows]
    tiles = math.ceil(cores.sum() / table.v("cores_per_tile"))
    step_ns = float(core_ns.max()) + barrier_ns(tiles, table)
    core_mm2 = table.v("die_area") / table.v("cores_per_chip")
    return Costs(
        energy_pj=energy, cycles=np.zeros(w.rows),  # asynchronous: no clock (Davies 2018 p. 87)
        latency_ns=core_ns, inference_latency_ns=step_ns * (w.timesteps + len(cores) - 1),
        area_mm2=cores * core_mm2,
        resources={"cores": cores},
        per_inference={"cores": float(cores.sum()), "tiles": float(tiles),
                       "step_ns": step_ns})

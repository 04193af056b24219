"""FPGA dataflow accelerator (FINN-style), analytic, T timesteps per inference.

As the anchor (ANCHOR): FINN-R's MVAU formulas as finn-plus implements them (below). Ours
(DEPARTURES, each with its factor): the LIF layer, the window and pool stages, conv1 once per
image, the power constants (ASSUMPTIONS), energy at a fixed rate and least-energy folding.

Each weight layer is an MVAU with MW = fan-in (C_in k^2 or F_in) columns, MH = outputs
(C_out or F_out) rows, numInputVectors = output positions, folded by PE (rows) and SIMD
(columns). Formulas as finn-plus 1.6.1 implements FINN-R (Blott et al., TRETS 2018) for
MVAU_hls with resType "lut", weights in BRAM (ram_style auto), no fused activation:

    cycles = (MH / PE) (MW / SIMD) vectors
    LUT    = int(300 + 1.1 PE (mult + adder + acc))
             mult  = SIMD (2 ceil((W + A) / 6) - 1) (W + A),  adder = (W + A)(2 SIMD - 1)
             alpha = log2 MW + W + A - 1 - signed(A)
             acc   = min(32, ceil(alpha + log2(1 + 2^-alpha) + 1))
    BRAM18 = FINN's step table over depth MW MH / (PE SIMD) and width PE SIMD W

A spiking layer adds the project's LIF layer (export/finn/finn_lif.py), with the formulas below
that FINN's estimates of it use too (lif_luts, lif_bram18), folded on its own (FINN's rule:
the smallest PE dividing its channels, as export/finn/folding.FoldLIF; see Folding). The profile
does not hold the accumulator's binary point, so the LIF datapath width is taken as the
accumulator width + 2 bits and the rounding shift as 3 bits: ASSUMPTIONS, the middle of the
seed network's cases (conv1 under direct encoding: + 1 bit and 6; spike-fed layers: + 3 and 1).
For convolutions the sliding-window unit adds swu_base_luts and a (k - 1) rows + k pixel
line buffer.
Folding (Config.folding): the candidates are FINN's SetFolding's: SIMD then PE grow over
divisors (fold_path), the LIF PE over divisors of the channels, and a candidate meets the
target when a layer's cycles per timestep fit clock / (target_fps T). "finn" takes, as
SetFolding, the least parallel candidate of every stage. "least-energy" (the default, the
analytic rows of every report) takes the combination of MVAU and LIF candidates with the
least energy per inference at the fixed rate among those that fit the part (FINN's where
none fits), the padding, window and pool stages (no modeled resources) folded just enough to
keep up with the layer's MVAU and LIF. FINN's minimal folding is not the least-energy one:
a more parallel MVAU finishes the same work in fewer busy cycles, which pay its fixed
300 LUTs, its LIF and window logic and its BRAM reads fewer times. A design that meets the
target and fits the part at T does so at every smaller T (same layer shapes) with no more
resources (the LIF's timestep counter is no wider) and fewer busy frames, so the least energy
at a fixed rate never rises as T falls wherever a design fits. Without a target, every fold
is 1. The highest throughput that fits the part (fastest_fitting) is the highest target at
which the least-energy rule finds a design within the part's budget that sustains it.
Latency: layers stream as a pipeline of stages (padding, sliding window, MVAU: input_stages;
LIF; pool window, pool: pool_stages), so an inference takes the fill (one frame through every stage)
+ (T - 1) x the slowest stage that runs every timestep (a layer computed once per image,
conv1 under direct encoding, runs only in the first pass and is folded for T times the
cycles; its LIF layer holds the current). Power: static + clock x
(LUT, BRAM18, DSP) x per-resource constants (ASSUMPTIONS, see tables/fpga.toml).
Energy per inference at a fixed rate R (the configuration's target, or the design's own
sustained rate when it has none or cannot reach it):
    E = P_static / R + E_dyn,   E_dyn = sum over layers of busy cycles x
                                        (LUT c_lut + BRAM18 read c_bram + DSP c_dsp)
with busy cycles = the layer's cycles per frame x its frames per inference: the fabric pays
its static power for every second and its dynamic energy for the work done (the per-resource
constants hold at XPE's default toggle rate, in every busy cycle; a read enables one RAMB18 of
each depth cascade, `bram18_per_read`; FINN's MVAU streams every input, zeros included, so
spike sparsity does not shorten its busy cycles). Two named figures stand beside it, with the
same E_dyn: P_static x the inference interval (the design flat out,
`sustained_rate_energy_pj`) and P_static x latency (one inference through an otherwise idle
pipeline, `single_inference_energy_pj`). These are fabric figures: measured
FINN designs on a PYNQ-Z2 board (xc7z020) draw 1.67-1.75 W in all (MLPerf Tiny v0.7, FINN
submissions, EEMBC EnergyRunner).

Measured against the RTL design (2026-12-02; `make fpga-rtlsim` / `make fpga-synth` of the
T=4, 4-bit seed network on the xczu7ev at 250 MHz, 50,000 inferences/s, folding "finn", the
design FINN built; reports/runs/
snn_mnist_T4_w4_s8_direct_seed0/rtl_fifos_2026-12-02/): cycles per inference 4,096 here, in
FINN's estimate and in the Verilator simulation with sized FIFOs (1.00 x); LUTs 101,417 here,
116,923 in FINN's estimate, 36,463 in yosys's technology mapping of the same layers (2.78 x
and 3.21 x): FINN-R's MVAU formula counts multipliers that an accumulate-only spike layer does
not have. hw_model.finn_reports sets all three side by side for any run that has them.
"""
from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

import numpy as np

from common.errors import UserError, check_choice
from hw_model.constants import Table
from hw_model.costs import Costs, Departure, ns_per_cycle
from hw_model.workload import Workload

NAME = "fpga"
PARTS = ("xc7z020", "xczu7ev")
REQUIRED = (*(f"{p}_{r}" for p in PARTS for r in ("lut", "bram18", "uram", "dsp", "static_power")),
            "clock_mhz", "lut_power", "bram18_power", "dsp_power", "swu_base_luts")
LIF_EXTRA_X_BITS, LIF_ROUND_SHIFT = 2, 3  # ASSUMPTIONS, see the module docstring
# Widest weight stream FINN's HLS MVAU takes (finn-plus MAX_ALLOWED_AP_INT_W); a wider one
# keeps its weights inside the layer (internal_embedded), in LUTs when <= 128 words deep.
MAX_WEIGHT_STREAM_BITS = 8191
MAX_ACC_BITS = 32
RATE_ROUNDING = 1e-9  # fastest_fitting: a sustained rate taken this much low (rounding)
FOLDINGS = ("least-energy", "finn")  # layer_hardware's folding rules
ANCHOR = ("FINN-R (Blott et al., TRETS 2018) as finn-plus 1.6.1 implements it: MVAU LUT, "
          "BRAM18 and cycle formulas (equal to finn-plus's own estimates on a grid, tested)")
DEPARTURES = (
    Departure("the LIF layer (export/finn/finn_lif.py): datapath LUTs per carry-chain bit, state "
              "memory by FINN's BRAM/LUTRAM rules", "finn-plus has no LIF layer",
              "UG474/UG574 (carry chains, RAM64M), finn-plus MVAU memory rules",
              "LIF LUT/BRAM as FINN reports them for the op (same functions)"),
    Departure("LIF datapath width = accumulator + 2 bits, rounding shift 3 (ASSUMPTIONS)",
              "the profile does not carry the accumulator's binary point", "ours",
              "unmeasured per layer; total LUT analytic / FINN = 0.87 on the T=4 run"),
    Departure("padding / sliding-window / pool stage cycles = positions x channels / fold",
              "an approximation of finn-plus's FMPadding, ConvolutionInputGenerator and Pool "
              "estimates", "ours", "analytic / FINN latency 1.02 on the T=4 run"),
    Departure("conv1 once per image under direct encoding, folded for T x the cycles",
              "the first LIF layer holds its current (as the project's FINN design)", "ours",
              "conv1's cycles paid once, not T times"),
    Departure("power per LUT / BRAM18 / DSP and static power (ASSUMPTIONS)",
              "no citable per-resource figures were found", "tables/fpga.toml",
              "calibrate with Vivado report_power before quoting energy"),
    Departure("energy per inference at a fixed rate R = P_static / R + busy cycles x "
              "(resources x their constants), one RAMB18 per depth cascade per read",
              "at a required rate the fabric pays static power every second and dynamic "
              "energy for the work; static power x the inference interval (design flat out) "
              "and x latency are reported beside it", "ours",
              "xc7z020, 100 MHz, 100/s: T=1 1,515 uJ <= T=5 1,560 uJ (power x the design's "
              "own interval gave 6,103 > 5,555 uJ, issue 25)"),
    Departure("folding: the least-energy combination of FINN's candidate foldings that meets "
              "the rate and fits the part (the least parallel MVAU and LIF foldings where none "
              "fits; FINN's SetFolding with folding 'finn', as beside FINN's own estimates)",
              "minimal folding is not the least energy at a fixed rate: T=4 cost more than "
              "T=5 (xc7z020, 200 MHz, 100/s: 1,975 > 1,917 uJ)", "ours",
              "xc7z020, 200 MHz, 100/s, T=4: 1,549 uJ (least energy) vs 1,975 uJ (FINN's)"),
)


@dataclass(frozen=True)
class Config:
    part: str
    clock_mhz: float
    target_fps: float | None = None
    folding: str = "least-energy"  # or "finn" (FINN's SetFolding): see layer_hardware

    def label(self) -> str:
        fps = f"{self.target_fps:g}fps" if self.target_fps else "minfold"
        return f"{self.part}-{self.clock_mhz:g}MHz-{fps}"


def default_configs(table: Table) -> list[Config]:
    return [Config("xc7z020", table.v("clock_mhz"), 1000.0)]


def sweep_configs(table: Table) -> list[Config]:
    return [Config(part, clock, fps) for part in PARTS for clock in (100.0, 200.0)
            for fps in (None, 100.0, 1000.0, 10000.0, 100000.0)]


def mvau_cycles(mw: int, mh: int, pe: int, simd: int, vectors: int) -> int:
    return int((mh / pe) * (mw / simd) * vectors)


def mvau_luts(mw: int, mh: int, pe: int, simd: int, w_bits: int, a_bits: int,
              a_signed: bool = False, multipliers_in_luts: bool = True) -> int:
    """FINN-R's MVAU LUTs; the multipliers cost 0 LUT when they sit in DSPs (resType dsp)."""
    wa = w_bits + a_bits
    mult = simd * (2 * math.ceil(wa / 6) - 1) * wa if multipliers_in_luts else 0
    adder = wa * (2 * simd - 1)
    alpha = math.log2(mw) + w_bits + a_bits - 1 - int(a_signed)
    acc = min(MAX_ACC_BITS, math.ceil(alpha + math.log2(1 + 2**-alpha) + 1))
    return int(300 + 1.1 * pe * (mult + adder + acc))


def mvau_bram18(mw: int, mh: int, pe: int, simd: int, w_bits: int) -> int:
    return memory_bram18(mw * mh / (pe * simd), pe * simd * w_bits)


def memory_bram18(depth: float, width: int) -> int:
    """RAMB18s for a depth x width memory: finn-plus's MVAU table (simple dual port, the
    RAMB18 aspect ratios 16K x 1, 8K x 2, 4K x 4, 2K x 9, 1K x 18, 512 x 36; UG573)."""
    deep, wide = bram18_grid(depth, width)
    return deep * wide


def bram18_grid(depth: float, width: int) -> tuple[int, int]:
    """(RAMB18s cascaded in depth, RAMB18s side by side in width) of memory_bram18's table.
    One read enables one RAMB18 of each depth cascade: `wide` of them (UG573: the address
    decodes the cascade)."""
    if width == 1:
        return math.ceil(depth / 16384), 1
    if width == 2:
        return math.ceil(depth / 8192), 1
    if width <= 4:
        return math.ceil(depth / 4096), math.ceil(width / 4)
    if width <= 9:
        return math.ceil(depth / 2048), math.ceil(width / 9)
    if width <= 18 or depth > 512:
        return math.ceil(depth / 1024), math.ceil(width / 18)
    return math.ceil(depth / 512), math.ceil(width / 36)


def bram18_per_read(depth: float, width: int) -> int:
    """RAMB18s one read of the memory enables (0 for an empty memory)."""
    deep, wide = bram18_grid(depth, width)
    return wide if deep else 0


# The LIF layer (export/finn/finn_lif.py; the same formulas in FINN's estimates and here).
# State memory: neurons / PE words of PE x s bits (hls/templates/lif.h reshapes the PE banks
# into one word); a layer with a held input (the first layer under direct encoding) has a
# second memory of PE x current bits per word for the currents it replays. In BRAM18 by
# memory_bram18, or in LUTRAM when ram_style is "distributed", or "auto" with at most
# LUTRAM_MAX_DEPTH words: FINN's rule for its embedded memories (finn-plus
# MVAU.bram_estimation: internal_embedded with <= 128 words -> no BRAM).
LUTRAM_MAX_DEPTH = 128
# LUTRAM: a read-modify-write memory needs a simple-dual-port RAM; RAM64M holds 64 words x
# 3 bits in 4 LUT6 (UG474, 7 Series CLB User Guide, distributed RAM; the same in UG574).
RAM64M_WORDS, RAM64M_BITS, RAM64M_LUTS = 64, 3, 4


def lif_in_bram(neurons: int, pe: int, ram_style: str = "auto") -> bool:
    return ram_style == "block" or (ram_style == "auto" and neurons / pe > LUTRAM_MAX_DEPTH)


def lif_word_bits(pe: int, state_bits: int, held_bits: int) -> list[int]:
    """Word widths of the layer's memories: membranes, and held currents if any."""
    return [pe * state_bits] + ([pe * held_bits] if held_bits else [])


def lif_block_memories(neurons: int, pe: int, state_bits: int, held_bits: int = 0,
                       ram_style: str = "auto") -> list[tuple[float, int]]:
    """(depth, width) of each of the layer's memories that sits in BRAM (none in LUTRAM)."""
    if not lif_in_bram(neurons, pe, ram_style):
        return []
    return [(neurons / pe, width) for width in lif_word_bits(pe, state_bits, held_bits)]


def lif_bram18(neurons: int, pe: int, state_bits: int, held_bits: int = 0,
               ram_style: str = "auto") -> int:
    return sum(memory_bram18(*memory) for memory in lif_block_memories(
        neurons, pe, state_bits, held_bits, ram_style))


def lif_datapath_luts(state_bits: int, x_bits: int, round_shift: int) -> int:
    """LUT6 of one PE lane of the LIF update (common/integer_lif.py), one LUT per bit of every
    adder, subtractor and comparator on the carry chain (UG474/UG574: one LUT per bit of a
    CARRY4/CARRY8 chain), one per bit of a 2:1 multiplexer; shifts are wiring:
        integrate x = (v << sv) + (a << sa)        x_bits
        round half to even: increment, rest vs half  (x_bits - r) + r
        saturate: two compares, one multiplexer      2 (x_bits - r) + s
        fire (v >= theta), reset (subtract + mux), first-frame zero   s + 2 s + s"""
    kept = x_bits - round_shift
    return x_bits + kept + round_shift + 2 * kept + 5 * state_bits


def lif_luts(neurons: int, pe: int, state_bits: int, x_bits: int, round_shift: int,
             timesteps: int, held_bits: int = 0, ram_style: str = "auto") -> int:
    """PE datapath lanes (+ a current-select multiplexer per bit with a held input), the
    neuron-address and timestep counters (one LUT per bit), the memories in LUTRAM."""
    depth = math.ceil(neurons / pe)
    counters = math.ceil(math.log2(max(depth, 2))) + math.ceil(math.log2(max(timesteps, 2)))
    luts = pe * (lif_datapath_luts(state_bits, x_bits, round_shift) + held_bits) + counters
    if not lif_in_bram(neurons, pe, ram_style):
        luts += sum(math.ceil(depth / RAM64M_WORDS) * math.ceil(width / RAM64M_BITS)
                    * RAM64M_LUTS for width in lif_word_bits(pe, state_bits, held_bits))
    return luts


def fold_path(mw: int, mh: int) -> list[tuple[int, int]]:
    """(PE, SIMD) in the order FINN's SetFolding tries them: SIMD over the divisors of MW at
    PE = 1, then PE over the divisors of MH at SIMD = MW."""
    return [(1, simd) for simd in _divisors(mw)] + [(pe, mw) for pe in _divisors(mh)[1:]]


def fold_candidates(mw: int, mh: int, vectors: int,
                    target_cycles: float | None) -> list[tuple[int, int]]:
    """The foldings on fold_path that meet the target (cycles <= target), least parallel
    first; the fully parallel one alone when none does; PE = SIMD = 1 without a target."""
    if target_cycles is None:
        return [(1, 1)]
    path = fold_path(mw, mh)
    meeting = [(pe, simd) for pe, simd in path
               if mvau_cycles(mw, mh, pe, simd, vectors) <= target_cycles]
    return meeting or path[-1:]


def lif_candidates(neurons: int, channels: int, target_cycles: float | None) -> list[int]:
    """PEs of a LIF layer that meet the target (neurons / PE <= target), the divisors of its
    channels, least first; all channels alone when none does; 1 without a target."""
    if target_cycles is None:
        return [1]
    return [d for d in _divisors(channels) if neurons / d <= target_cycles] or [channels]


def fold_lif(neurons: int, channels: int, target_cycles: float | None) -> int:
    """PE of a LIF layer: the smallest divisor of its channels meeting the target."""
    return lif_candidates(neurons, channels, target_cycles)[0]


def stream_cycles(positions: float, channels: int, target_cycles: float | None) -> float:
    """A padding, sliding-window or pooling stage: `positions` pixels of `channels` values,
    the channels folded by the smallest divisor meeting the target (SIMD / PE, as FINN's
    SetFolding): positions x channels / fold. An approximation of finn-plus's FMPadding,
    ConvolutionInputGenerator and Pool cycle estimates (their exact forms add a few cycles
    and depend on the window mode)."""
    fold = 1 if target_cycles is None else next(
        (d for d in _divisors(channels) if positions * channels / d <= target_cycles), channels)
    return positions * channels / fold


def input_stages(layer: dict, i: int, target_cycles: float | None) -> list[float]:
    """Padding and sliding window in front of a k x k convolution: (W + 2 p)^2 pixels."""
    if layer["kernel"][i] <= 1:
        return []
    k, width = int(layer["kernel"][i]), int(layer["input_width"][i])
    padded = width + 2 * int(layer["padding"][i])
    return [stream_cycles(padded**2, int(layer["fan_in"][i]) // (k * k), target_cycles)] * 2


def pool_stages(layer: dict, i: int, target_cycles: float | None) -> list[float]:
    """A k x k pool after the neuron: its window and the pool, over the pre-pool map."""
    if not layer["pooled"][i]:
        return []
    return [stream_cycles(layer["positions"][i], int(layer["out_channels"][i]),
                          target_cycles)] * 2


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


@dataclass(frozen=True)
class LayerHardware:
    pe: int
    simd: int
    cycles: int  # per frame (timestep): the slowest of the layer's pipeline stages
    step_cycles: int  # the slowest of its stages that run every timestep (0 if none)
    fill_cycles: int  # one frame through all of the layer's stages (the pipeline fill)
    lut: int
    bram18: int
    bram18_per_read: int  # the RAMB18s a busy cycle enables (one per depth cascade)


def layer_hardware(w: Workload, config: Config, table: Table) -> list[LayerHardware]:
    """Each layer's hardware under the configuration's folding rule: "finn", FINN's
    SetFolding (every stage the least parallel folding meeting the target), or
    "least-energy" (least_energy_design over layer_options)."""
    target = (config.clock_mhz * 1e6 / (config.target_fps * w.timesteps)
              if config.target_fps else None)
    least_energy = config.folding == "least-energy"
    options = [layer_options(w, i, target, table, least_energy)
               for i in range(len(w.layer_names))]
    if not least_energy:
        return [layer[0] for layer in options]
    return least_energy_design(options, w, config, table)


def layer_options(w: Workload, i: int, target: float | None, table: Table,
                  least_energy: bool) -> list[LayerHardware]:
    """Layer i's designs: every (PE, SIMD) of fold_candidates x every LIF PE of lif_candidates
    (FINN's alone, the first, unless `least_energy`), the stages without modeled resources
    folded by layer_design."""
    layer = w.layer
    once = bool(layer["computed_once"][i])  # folded for T times the cycles per step
    layer_target = target * w.timesteps if target and once else target
    mw, mh = int(layer["fan_in"][i]), int(layer["out_channels"][i])
    mvau = fold_candidates(mw, mh, int(layer["positions"][i]), layer_target)
    lif = lif_candidates(int(layer["neurons"][i]), mh, target) if layer["is_lif"][i] else [0]
    if not least_energy:
        mvau, lif = mvau[:1], lif[:1]
    return [layer_design(w, i, pe, simd, lif_pe, target, table, least_energy)
            for pe, simd in mvau for lif_pe in lif]


def layer_design(w: Workload, i: int, pe: int, simd: int, lif_pe: int, target: float | None,
                 table: Table, balance_streams: bool = False) -> LayerHardware:
    """Layer i with its MVAU folded (PE, SIMD) and its LIF layer (if any) by `lif_pe`, for
    `target` cycles per timestep (T times that for a layer computed once per image). The
    padding, window and pool stages, which hold no modeled resources, are folded by the least
    divisor meeting the target (FINN's SetFolding) or, with `balance_streams`, meeting the
    layer's slowest resourced stage (MVAU, LIF) too: then they never set its busy cycles
    where they can keep up, and a larger fold would save no energy."""
    layer = w.layer
    steps = w.timesteps
    mw, mh = int(layer["fan_in"][i]), int(layer["out_channels"][i])
    vectors = int(layer["positions"][i])
    wb, ab = int(min(layer["weight_bits"][i], 32)), int(min(layer["input_bits"][i], 32))
    once = bool(layer["computed_once"][i])  # folded for T times the cycles per step
    layer_target = target * steps if target and once else target
    lut = mvau_luts(mw, mh, pe, simd, wb, ab)
    embedded = pe * simd * wb > MAX_WEIGHT_STREAM_BITS  # as export/finn/folding.EmbedWideWeights
    in_luts = embedded and mw * mh / (pe * simd) <= LUTRAM_MAX_DEPTH
    bram = 0 if in_luts else mvau_bram18(mw, mh, pe, simd, wb)
    bram_read = 0 if in_luts else bram18_per_read(mw * mh / (pe * simd), pe * simd * wb)
    resourced = [mvau_cycles(mw, mh, pe, simd, vectors)]
    if layer["is_lif"][i]:
        s, neurons = int(layer["state_bits"][i]), int(layer["neurons"][i])
        resourced.append(math.ceil(neurons / lif_pe))
        acc_bits = wb + ab + math.ceil(math.log2(mw))
        held_bits = acc_bits if once else 0  # the LIF holds its current and replays it
        memories = lif_block_memories(neurons, lif_pe, s, held_bits)
        bram += sum(memory_bram18(*memory) for memory in memories)
        bram_read += sum(bram18_per_read(*memory) for memory in memories)
        lut += lif_luts(neurons, lif_pe, s, acc_bits + LIF_EXTRA_X_BITS, LIF_ROUND_SHIFT,
                        steps, held_bits)
    if layer["kernel"][i] > 1:
        k = int(layer["kernel"][i])
        line_bits = ((k - 1) * layer["input_width"][i] + k) * (mw // (k * k)) * ab
        bram += math.ceil(line_bits / (18 * 1024))  # the window reads every line at once
        bram_read += math.ceil(line_bits / (18 * 1024))
        lut += int(table.v("swu_base_luts"))

    def stream_target(stage_target: float | None) -> float | None:
        if balance_streams and stage_target:
            return min(stage_target, max(resourced))
        return stage_target

    synapse = [resourced[0], *input_stages(layer, i, stream_target(layer_target))]
    every_step = pool_stages(layer, i, stream_target(target)) + resourced[1:]
    if not once:
        every_step += synapse
    stages = synapse + every_step if once else every_step
    return LayerHardware(pe, simd, int(max(stages)), int(max(every_step, default=0)),
                         int(sum(stages)), lut, bram, bram_read)


def least_energy_design(options: list[list[LayerHardware]], w: Workload, config: Config,
                        table: Table) -> list[LayerHardware]:
    """The "least-energy" rule: one option per layer, with the least energy per inference at
    the fixed rate among the combinations whose summed LUTs and BRAM18s fit the part
    (least_energy_choice); where none fits, the first option of each layer (FINN's MVAU and
    LIF folding).
    Every option meets the target (or is the one fully parallel MVAU folding of a layer that
    cannot), so the rate R, and with it P_static / R, is the same for every combination: the
    least energy is the least E_dyn = sum over layers of frames x busy cycles per frame x
    (LUT c_lut + BRAM18 reads c_bram), frames = T, or 1 for a layer computed once."""
    energy = [dynamic_energy_pj(
        np.array([h.cycles * (1 if once else w.timesteps) for h in layer], dtype=float),
        np.array([h.lut for h in layer], dtype=float),
        np.array([h.bram18_per_read for h in layer], dtype=float), np.zeros(len(layer)), table)
        for layer, once in zip(options, w.layer["computed_once"], strict=True)]
    resources = [[(h.lut, h.bram18) for h in layer] for layer in options]
    picks = least_energy_choice(energy, resources, (table.v(f"{config.part}_lut"),
                                                    table.v(f"{config.part}_bram18")))
    return [layer[j] for layer, j in zip(options, picks or [0] * len(options), strict=True)]


Design = tuple[float, int, int, tuple[int, ...]]  # (energy, LUT, BRAM18, option per layer)


def least_energy_choice(energy: list[np.ndarray], resources: list[list[tuple[int, int]]],
                        budget: tuple[float, float]) -> list[int] | None:
    """Per layer, the index of one option such that the summed energy is least while the
    summed (LUT, BRAM18) stay within `budget`; None when no combination does (ties: the
    fewest LUTs, then BRAM18s, then the lowest indices). Exact: layer by layer, the partial
    designs are extended by every option of the next layer, those past the budget dropped
    and only the Pareto front of the rest kept (a partial design with at least the energy,
    the LUTs and the BRAM18s of another cannot be part of a better whole)."""
    front: list[Design] = [(0.0, 0, 0, ())]
    for layer_energy, layer_resources in zip(energy, resources, strict=True):
        options = pareto_front([(float(e), lut, bram, (j,)) for j, (e, (lut, bram))
                                in enumerate(zip(layer_energy, layer_resources, strict=True))])
        front = pareto_front([(e + oe, lut + ol, bram + ob, picks + j)
                              for e, lut, bram, picks in front for oe, ol, ob, j in options
                              if lut + ol <= budget[0] and bram + ob <= budget[1]])
    return list(front[0][3]) if front else None


def pareto_front(designs: list[Design]) -> list[Design]:
    """The designs no other design matches or beats in energy, LUTs and BRAM18s at once,
    least energy first. Taken by energy, a design is kept unless a kept one (no more energy)
    has no more LUTs and no more BRAM18s: the kept (LUT, BRAM18) pairs' lower staircase
    (LUTs rising, BRAM18s falling) answers that with one bisection."""
    front: list[Design] = []
    luts: list[int] = []  # the staircase: LUTs rising
    brams: list[int] = []  # BRAM18s falling
    for design in sorted(designs):
        _, lut, bram, _ = design
        at = bisect.bisect_right(luts, lut)  # staircase points with no more LUTs: luts[:at]
        if at and brams[at - 1] <= bram:
            continue
        front.append(design)
        end = at
        while end < len(luts) and brams[end] >= bram:  # now above the staircase
            end += 1
        luts[at:end], brams[at:end] = [lut], [bram]
    return front


def evaluate(w: Workload, config: Config, table: Table) -> Costs:
    if config.part not in PARTS:
        raise UserError(f"FPGA part {config.part!r} is not supported; allowed: {', '.join(PARTS)}")
    check_choice("FPGA folding", config.folding, FOLDINGS)
    hw = layer_hardware(w, config, table)
    cycles_layer = np.array([h.cycles for h in hw], dtype=float)
    lut = np.array([h.lut for h in hw], dtype=float)
    bram = np.array([h.bram18 for h in hw], dtype=float)
    rows = w.layer_of_row
    active = ~w.per_row("computed_once") | (w.t_of_row == 1)
    cycles = active * cycles_layer[rows]
    inference_cycles = (sum(h.fill_cycles for h in hw)
                        + (w.timesteps - 1) * max(h.step_cycles for h in hw))
    latency_ns = inference_cycles * ns_per_cycle(config.clock_mhz)
    interval_ns = interval_cycles(hw, w.timesteps) * ns_per_cycle(config.clock_mhz)
    dsp = np.zeros(len(hw))  # resType "lut": multipliers in LUTs, as FINN's default
    bram_read = np.array([h.bram18_per_read for h in hw], dtype=float)
    static_w = table.v(f"{config.part}_static_power")
    static_share = lut / lut.sum()  # static power shared out by LUTs, for the layer rows
    rate_per_s = fixed_rate_per_s(config.target_fps, interval_ns)
    active_steps = np.where(w.layer["computed_once"], 1, w.timesteps)
    energy = {"static": np.where(active, static_w * static_share[rows] * 1e12 / rate_per_s
                                 / active_steps[rows], 0.0),
              "dynamic": dynamic_energy_pj(cycles, lut[rows], bram_read[rows], dsp[rows],
                                           table)}
    beside = per_inference_energy_pj(static_w, float(energy["dynamic"].sum()), config.target_fps,
                                     interval_ns, latency_ns)
    return Costs(
        energy_pj=energy, cycles=cycles, latency_ns=cycles * ns_per_cycle(config.clock_mhz),
        inference_latency_ns=latency_ns,
        area_mm2=np.full(len(hw), np.nan),  # FPGA cost is resources, not silicon area
        resources={"lut": lut, "bram18": bram, "uram": np.zeros(len(hw)),
                   "dsp": dsp, "pe": np.array([h.pe for h in hw], dtype=float),
                   "simd": np.array([h.simd for h in hw], dtype=float)},
        per_inference={"rate_inferences_per_s": rate_per_s,
                       "meets_target_rate": rate_per_s >= (config.target_fps or 0) * (1 - 1e-9),
                       "sustained_rate_energy_pj": beside["sustained_rate_energy_pj"],
                       "single_inference_energy_pj": beside["single_inference_energy_pj"],
                       "inference_interval_ns": interval_ns})


def fixed_rate_per_s(target_fps: float | None, interval_ns: float) -> float:
    """The rate R energy is charged at: the target, or the design's sustained rate when it has
    none or cannot reach it."""
    sustained_per_s = 1e9 / interval_ns
    return min(target_fps or sustained_per_s, sustained_per_s)


def per_inference_energy_pj(static_w: float, dynamic_pj: float, target_fps: float | None,
                            interval_ns: float, latency_ns: float) -> dict[str, float]:
    """Energy per inference at the fixed rate (P_static / R + E_dyn), flat out (P_static x the
    interval + E_dyn) and through an idle pipeline (P_static x latency + E_dyn)."""
    return {"energy_pj": static_w * 1e12 / fixed_rate_per_s(target_fps, interval_ns)
            + dynamic_pj,
            "sustained_rate_energy_pj": static_w * interval_ns * 1e3 + dynamic_pj,
            "single_inference_energy_pj": static_w * latency_ns * 1e3 + dynamic_pj}


def dynamic_energy_pj(busy_cycles: np.ndarray, lut: np.ndarray, bram18: np.ndarray,
                      dsp: np.ndarray, table: Table) -> np.ndarray:
    """E_dyn = busy cycles x (LUT c_lut + BRAM18 c_bram + DSP c_dsp), c in uW/MHz = pJ per
    cycle: the resources toggle at the constants' rate in every busy cycle."""
    return busy_cycles * (lut * table.v("lut_power") + bram18 * table.v("bram18_power")
                          + dsp * table.v("dsp_power"))


def interval_cycles(hw: list[LayerHardware], timesteps: int) -> int:
    """Cycles between inferences at the sustained rate: the slowest stage's cycles times its
    frames per inference (T for every-step stages, 1 for stages run once per image)."""
    return max(max(h.step_cycles for h in hw) * timesteps, max(h.cycles for h in hw))


def budget(table: Table, part: str) -> dict[str, float]:
    return {r: table.v(f"{part}_{r}") for r in ("lut", "bram18", "uram", "dsp")}


def fits(costs: Costs, table: Table, part: str) -> bool:
    """Whether a design's summed resources stay within the part's (budget)."""
    return all(float(costs.resources[r].sum()) <= limit for r, limit in budget(table, part).items())


def fastest_fitting(w: Workload, part: str, clock_mhz: float, table: Table,
                    rel_tol: float = 1e-3) -> Config | None:
    """The operating point of highest throughput that fits the part: a least-energy Config
    whose target is the sustained rate S [inferences/s] of its design, so that evaluate()
    charges E = P_static / S + E_dyn (the design flat out); None when no design fits at any rate.

    A rate R is feasible when evaluate() at target R gives a design that fits the part and
    sustains R. Raising R only removes fold candidates (each must meet clock / (R T) cycles
    per timestep), so feasibility falls with R: below the sustained rate of the least parallel
    design (every fold 1, S_min) every candidate meets the target and feasibility is that of
    S_min; above the fully parallel design's (S_max) no design meets it. Bisection in log R
    between the two keeps a feasible lower end (raised to its design's sustained rate) until
    the ends are within `rel_tol`: S is then within rel_tol of the highest feasible rate (the
    feasible rates end at a design's sustained rate, so S is that rate once the rates of two
    designs differ by more than rel_tol). S is taken RATE_ROUNDING low, so that the design's
    own cycles meet clock / (S T) through floating-point rounding."""
    def sustained(rate: float | None) -> tuple[float, bool]:
        """(the sustained rate of evaluate's design at target `rate`, RATE_ROUNDING low;
        whether that design fits and sustains `rate`)."""
        costs = evaluate(w, Config(part, clock_mhz, rate), table)
        achieved = 1e9 / costs.per_inference["inference_interval_ns"] * (1 - RATE_ROUNDING)
        return achieved, fits(costs, table, part) and achieved >= (rate or 0) * (1 - 1e-9)

    low, feasible = sustained(None)
    if not feasible:
        return None
    high, _ = sustained(math.inf)  # no candidate meets it: the fully parallel design, S_max
    while high > low * (1 + rel_tol):
        rate = math.sqrt(low * high)
        achieved, feasible = sustained(rate)
        low, high = (max(achieved, rate), high) if feasible else (low, rate)
    return Config(part, clock_mhz, low)

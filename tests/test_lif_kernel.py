"""The C++ LIF kernel hls/templates/lif.h (g++ with the ap_types headers) against its numpy twin
common.integer_lif.IntegerLIF.step, bit for bit: spikes and membranes of lif_frame per timestep,
the spikes of lif_layer (static membranes, a frame counter) over several images, and of
lif_layer with a held input (fed on the first frame of each image only) against numpy with
that current repeated."""
import subprocess
from pathlib import Path

import numpy as np
import pytest

from common.integer_lif import IntegerLIF, round_half_even_shift
from hls.csim import ap_types_dir

TEMPLATES = Path(__file__).resolve().parents[1] / "hls" / "templates"
N_IMAGES, TIMESTEPS, NEURONS, PE = 3, 4, 48, 4

CASES = [  # comments: shift_v, shift_a, round_shift
    IntegerLIF(8, 4, 1, 8, 12, 16, "subtract"),  # 3, 0, 4: the current is the finer grid
    IntegerLIF(8, 6, 2, 3, 8, 40, "zero"),  # 0, 5, 2: the leaked membrane is the finer grid
    IntegerLIF(4, 2, 1, 2, 6, 3, "subtract"),  # 0, 1, 1
    IntegerLIF(16, 8, 0, 4, 17, 300, "zero"),  # 0, 4, 0: beta = 1, no rounding
    IntegerLIF(16, 10, 3, 9, 17, 1000, "subtract"),  # 0, 4, 3
    IntegerLIF(6, 3, 0, 3, 9, 10, "subtract"),  # 0, 0, 0
]

TESTBENCH = """\
#include <cstdio>
#include <vector>
#include "lif.h"

#define NEURONS {neurons}
#define PE {pe}
#define IMAGES {images}
#define TIMESTEPS {timesteps}
#define ARGS {current_bits}, {state_bits}, {x_bits}, {shift_v}, {shift_a}, {round_shift}, \\
    {theta_code}, {reset_zero}

typedef ap_uint<PE * {current_bits}> word_t;

void pack(const int *current, hls::stream<word_t> &in) {{
    for (int w = 0; w < NEURONS / PE; w++) {{
        word_t word = 0;
        for (int p = 0; p < PE; p++) {{
            ap_uint<{current_bits}> bits = ap_int<{current_bits}>(current[w * PE + p]);
            word.range((p + 1) * {current_bits} - 1, p * {current_bits}) = bits;
        }}
        in.write(word);
    }}
}}

void unpack(hls::stream<ap_uint<PE> > &out, int *spikes) {{
    for (int w = 0; w < NEURONS / PE; w++) {{
        ap_uint<PE> s = out.read();
        for (int p = 0; p < PE; p++) spikes[w * PE + p] = s[p];
    }}
}}

int main(int argc, char **argv) {{
    const int frames = IMAGES * TIMESTEPS;
    std::vector<int> current(frames * NEURONS), spikes(frames * NEURONS),
        membranes(frames * NEURONS), layer_spikes(frames * NEURONS),
        held_spikes(frames * NEURONS);
    FILE *f = fopen(argv[1], "rb");
    if (fread(current.data(), sizeof(int), current.size(), f) != current.size()) return 1;
    fclose(f);
    ap_int<{state_bits}> membrane[PE][NEURONS / PE];
    for (int i = 0; i < frames; i++) {{
        hls::stream<word_t> in;
        hls::stream<ap_uint<PE> > out;
        pack(&current[i * NEURONS], in);
        lif_frame<NEURONS, PE, ARGS>(in, out, membrane, i % TIMESTEPS == 0);
        unpack(out, &spikes[i * NEURONS]);
        for (int n = 0; n < NEURONS; n++)
            membranes[i * NEURONS + n] = membrane[n % PE][n / PE].to_int();
    }}
    for (int i = 0; i < frames; i++) {{
        hls::stream<word_t> in;
        hls::stream<ap_uint<PE> > out;
        pack(&current[i * NEURONS], in);
        lif_layer<NEURONS, PE, TIMESTEPS, ARGS, 0>(in, out);
        unpack(out, &layer_spikes[i * NEURONS]);
    }}
    for (int i = 0; i < frames; i++) {{  // held input: the stream carries the first frame only
        hls::stream<word_t> in;
        hls::stream<ap_uint<PE> > out;
        if (i % TIMESTEPS == 0) pack(&current[i * NEURONS], in);
        lif_layer<NEURONS, PE, TIMESTEPS, ARGS, 1>(in, out);
        unpack(out, &held_spikes[i * NEURONS]);
        if (!in.empty()) return 2;
    }}
    f = fopen(argv[2], "wb");
    fwrite(spikes.data(), sizeof(int), spikes.size(), f);
    fwrite(membranes.data(), sizeof(int), membranes.size(), f);
    fwrite(layer_spikes.data(), sizeof(int), layer_spikes.size(), f);
    fwrite(held_spikes.data(), sizeof(int), held_spikes.size(), f);
    fclose(f);
    return 0;
}}
"""


def random_currents(lif: IntegerLIF, seed: int) -> np.ndarray:
    """int32 [N_IMAGES, TIMESTEPS, NEURONS] over the full signed range of current_bits."""
    high = 2 ** (lif.current_bits - 1)
    rng = np.random.default_rng(seed)
    return rng.integers(-high, high, (N_IMAGES, TIMESTEPS, NEURONS)).astype(np.int32)


def numpy_reference(lif: IntegerLIF, currents: np.ndarray) -> tuple[np.ndarray, ...]:
    """Spikes, reset membranes and the unclamped charged codes, each [N, T, NEURONS]."""
    spikes, membranes, unclamped = (np.zeros(currents.shape, np.int64) for _ in range(3))
    for image, image_currents in enumerate(currents):
        membrane = np.zeros(NEURONS, np.int64)
        for t, current in enumerate(image_currents):
            x = (membrane << lif.shift_v) + (current.astype(np.int64) << lif.shift_a)
            unclamped[image, t] = round_half_even_shift(x, lif.round_shift)
            spikes[image, t], membrane = lif.step(membrane, current)
            membranes[image, t] = membrane
    return spikes, membranes, unclamped


def compile_testbench(lif: IntegerLIF, work: Path) -> Path:
    source = TESTBENCH.format(
        neurons=NEURONS, pe=PE, images=N_IMAGES, timesteps=TIMESTEPS,
        current_bits=lif.current_bits, state_bits=lif.state_bits, x_bits=lif.x_bits,
        shift_v=lif.shift_v, shift_a=lif.shift_a, round_shift=lif.round_shift,
        theta_code=lif.theta_code, reset_zero=int(lif.reset == "zero"))
    (work / "tb.cpp").write_text(source)
    executable = work / "tb"
    subprocess.run(["g++", "-O2", "-std=c++14", "-w", f"-I{ap_types_dir()}", f"-I{TEMPLATES}",
                    str(work / "tb.cpp"), "-o", str(executable)],
                   check=True, capture_output=True, text=True, timeout=300)
    return executable


def run_testbench(executable: Path, currents: np.ndarray) -> tuple[np.ndarray, ...]:
    """lif_frame's spikes and membranes, lif_layer's spikes without and with a held input,
    each [N, T, NEURONS]."""
    work = executable.parent
    (work / "currents.bin").write_bytes(np.ascontiguousarray(currents, np.int32).tobytes())
    subprocess.run([str(executable), str(work / "currents.bin"), str(work / "out.bin")],
                   check=True, capture_output=True, timeout=60)
    out = np.fromfile(work / "out.bin", dtype=np.int32)
    return tuple(out.reshape(4, *currents.shape))


@pytest.mark.parametrize("lif", CASES, ids=lambda c: (
    f"{c.reset}-s{c.state_bits}-c{c.current_bits}-v{c.shift_v}a{c.shift_a}r{c.round_shift}"))
def test_lif_kernel_is_bit_exact_against_numpy(tmp_path, lif):
    currents = random_currents(lif, seed=lif.state_bits * 100 + lif.current_bits)
    spikes, membranes, unclamped = numpy_reference(lif, currents)
    # not vacuous: the membrane saturates at both ends, and neurons both fire and stay silent
    assert (unclamped > lif.state_max).any() and (unclamped < lif.state_min).any()
    assert (membranes == lif.state_min).any() and 0 < spikes.mean() < 1
    frame_spikes, frame_membranes, layer_spikes, held_spikes = run_testbench(
        compile_testbench(lif, tmp_path), currents)
    assert np.array_equal(frame_spikes, spikes)
    assert np.array_equal(frame_membranes, membranes)
    assert np.array_equal(layer_spikes, spikes)
    first_frames = np.repeat(currents[:, :1], TIMESTEPS, axis=1)
    assert np.array_equal(held_spikes, numpy_reference(lif, first_frames)[0])

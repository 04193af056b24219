// One C++ template per kind of stage of the layer list (model/layers.py); hls/generate.py
// instantiates them, one call per stage, in the generated stages.h. Every current is an exact
// integer sum: weights are integers (scale 2^-frac), pixels p (scale 2^-8), spikes 0/1, spike
// counts c of a K x K sum pool (scale 2^-2log2(K): c / K^2 is the average pool). A LIF
// stage updates its neurons with lif_neuron (lif.h) from its accumulator (acc_t) with the
// shifts of params.h (SHIFT_V_l, SHIFT_A_l, ROUND_l; beta = 2^-LEAK_SHIFT).
#ifndef QSNN_LAYERS_H
#define QSNN_LAYERS_H

#include "lif.h"
#include "snn.h"

template <typename acc_t, int Bits>
void synapse(acc_t &a, signed char w, ap_uint<Bits> x) { a += w * x; }  // MAC (pixels, counts)

template <typename acc_t>
void synapse(acc_t &a, signed char w, spike_t x) { if (x) a += w; }  // accumulate only (spike in)

// conv K x K, stride S, zero padding P + LIF: x [InC][H][W] -> spikes s [OutC][OH][OW],
// OH = (H + 2P - K) / S + 1 (model/layers.py), output (y, z) reading x[i][y S + ky - P][z S + kx - P].
template <int InC, int H, int W, int OutC, int K, int S, int P, int OH, int OW, typename acc_t,
          int XBits, int ShiftV, int ShiftA, int Round, typename in_t>
void conv_lif(const in_t x[InC][H][W], const signed char w[OutC][InC][K][K],
              state_t m[OutC][OH][OW], spike_t s[OutC][OH][OW]) {
    for (int o = 0; o < OutC; o++)
        for (int y = 0; y < OH; y++)
            for (int z = 0; z < OW; z++) {
                acc_t a = 0;
                for (int i = 0; i < InC; i++)
                    for (int ky = 0; ky < K; ky++)
                        for (int kx = 0; kx < K; kx++) {
                            int yy = y * S + ky - P, zz = z * S + kx - P;
                            if (yy >= 0 && yy < H && zz >= 0 && zz < W)
                                synapse(a, w[o][i][ky][kx], x[i][yy][zz]);
                        }
                s[o][y][z] = lif_neuron<STATE_BITS, XBits, ShiftV, ShiftA, Round, THETA_CODE,
                                        RESET_ZERO>(m[o][y][z], a);
            }
}

enum pool_kind { MAX_POOL, SUM_POOL };

// K x K pool of spikes with stride K, rounding sizes down: MAX_POOL outputs a spike (an OR
// over the window, out_t = spike_t), SUM_POOL the window's spike count (0..K^2, out_t =
// ap_uint<bit_length(K^2)>), which is K^2 times the average pool.
template <int C, int H, int W, int K, pool_kind Kind, typename out_t>
void pool(const spike_t in[C][H][W], out_t out[C][H / K][W / K]) {
    for (int c = 0; c < C; c++)
        for (int y = 0; y < H / K; y++)
            for (int z = 0; z < W / K; z++) {
                out_t v = 0;
                for (int ky = 0; ky < K; ky++)
                    for (int kx = 0; kx < K; kx++) {
                        spike_t s = in[c][K * y + ky][K * z + kx];
                        v = Kind == MAX_POOL ? out_t(v | s) : out_t(v + s);
                    }
                out[c][y][z] = v;
            }
}

// A map [C][H][W] (spikes or spike counts) as the vector an fc reads, in (C, H, W) order.
template <int C, int H, int W, typename in_t>
void flatten(const in_t in[C][H][W], in_t out[C * H * W]) {
    for (int c = 0; c < C; c++)
        for (int y = 0; y < H; y++)
            for (int z = 0; z < W; z++) out[(c * H + y) * W + z] = in[c][y][z];
}

// fully connected + LIF: spikes (or spike counts) x [In] -> spikes s [Out].
template <int In, int Out, typename acc_t, int XBits, int ShiftV, int ShiftA, int Round,
          typename in_t>
void fc_lif(const in_t x[In], const signed char w[Out][In], state_t m[Out], spike_t s[Out]) {
    for (int o = 0; o < Out; o++) {
        acc_t a = 0;
        for (int i = 0; i < In; i++) synapse(a, w[o][i], x[i]);
        s[o] = lif_neuron<STATE_BITS, XBits, ShiftV, ShiftA, Round, THETA_CODE, RESET_ZERO>(
            m[o], a);
    }
}

// the readout: spikes (or spike counts) x [In] -> its accumulators (units 2^-LOGIT_FRAC), no
// neuron.
template <int In, int Out, typename in_t>
void fc_readout(const in_t x[In], const signed char w[Out][In], logit_t logits[Out]) {
    for (int o = 0; o < Out; o++) {
        logit_t a = 0;
        for (int i = 0; i < In; i++) synapse(a, w[o][i], x[i]);
        logits[o] = a;
    }
}

// Every membrane of a stage to 0 (a map or a vector).
template <int C, int H, int W>
void clear_state(state_t (&m)[C][H][W]) {
    for (int c = 0; c < C; c++)
        for (int y = 0; y < H; y++)
            for (int z = 0; z < W; z++) m[c][y][z] = 0;
}

template <int N>
void clear_state(state_t (&m)[N]) {
    for (int n = 0; n < N; n++) m[n] = 0;
}

#endif

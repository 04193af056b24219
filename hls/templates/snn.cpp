// Integer LIF CNN. Every current is an exact integer sum: weights W are integers with scale
// 2^-WFRAC, pixels p with scale 2^-8, spikes 0/1. Each LIF layer l updates its neurons with
// lif_neuron (lif.h, shared with FINN's LIF layer) from its accumulator a (units 2^-FRAC_l),
// with the shifts of params.h (SHIFT_V_l, SHIFT_A_l, ROUND_l; beta = 2^-LEAK_SHIFT).
#include "snn.h"

#include "lif.h"

static void conv1_lif(const pixel_t x[IN_C][IN_H][IN_W], state_t m[C1][H1][W1],
                      spike_t s[C1][H1][W1]) {
    for (int o = 0; o < C1; o++)
        for (int y = 0; y < H1; y++)
            for (int z = 0; z < W1; z++) {
                acc1_t a = 0;
                for (int i = 0; i < IN_C; i++)
                    for (int ky = 0; ky < 3; ky++)
                        for (int kx = 0; kx < 3; kx++) {
                            int yy = y + ky - 1, zz = z + kx - 1;
                            if (yy >= 0 && yy < IN_H && zz >= 0 && zz < IN_W)
                                a += W1_INT[o][i][ky][kx] * x[i][yy][zz];  // MAC (pixels)
                        }
                s[o][y][z] = lif_neuron<STATE_BITS, X1_BITS, SHIFT_V_1, SHIFT_A_1, ROUND_1,
                                        THETA_CODE, RESET_ZERO>(m[o][y][z], a);
            }
}

template <int C, int H, int W>
static void maxpool(const spike_t in[C][H][W], spike_t out[C][H / 2][W / 2]) {
    for (int c = 0; c < C; c++)
        for (int y = 0; y < H / 2; y++)
            for (int z = 0; z < W / 2; z++)
                out[c][y][z] = in[c][2 * y][2 * z] | in[c][2 * y][2 * z + 1] |
                               in[c][2 * y + 1][2 * z] | in[c][2 * y + 1][2 * z + 1];
}

static void conv2_lif(const spike_t x[C1][H2][W2], state_t m[C2][H2][W2],
                      spike_t s[C2][H2][W2]) {
    for (int o = 0; o < C2; o++)
        for (int y = 0; y < H2; y++)
            for (int z = 0; z < W2; z++) {
                acc2_t a = 0;
                for (int i = 0; i < C1; i++)
                    for (int ky = 0; ky < 3; ky++)
                        for (int kx = 0; kx < 3; kx++) {
                            int yy = y + ky - 1, zz = z + kx - 1;
                            if (yy >= 0 && yy < H2 && zz >= 0 && zz < W2 && x[i][yy][zz])
                                a += W2_INT[o][i][ky][kx];  // accumulate only (spike in)
                        }
                s[o][y][z] = lif_neuron<STATE_BITS, X2_BITS, SHIFT_V_2, SHIFT_A_2, ROUND_2,
                                        THETA_CODE, RESET_ZERO>(m[o][y][z], a);
            }
}

static void fc1_lif(const spike_t x[C2][H3][W3], state_t m[HIDDEN], spike_t s[HIDDEN]) {
    for (int o = 0; o < HIDDEN; o++) {
        acc3_t a = 0;
        for (int i = 0; i < C2; i++)
            for (int y = 0; y < H3; y++)
                for (int z = 0; z < W3; z++)
                    if (x[i][y][z]) a += W3_INT[o][(i * H3 + y) * W3 + z];
        s[o] = lif_neuron<STATE_BITS, X3_BITS, SHIFT_V_3, SHIFT_A_3, ROUND_3, THETA_CODE,
                          RESET_ZERO>(m[o], a);
    }
}

static void fc2(const spike_t x[HIDDEN], logit_t logits[CLASSES]) {
    for (int o = 0; o < CLASSES; o++) {
        logit_t a = 0;
        for (int i = 0; i < HIDDEN; i++)
            if (x[i]) a += W4_INT[o][i];
        logits[o] = a;
    }
}

void snn_step(const pixel_t x[IN_C][IN_H][IN_W], state_t m1[C1][H1][W1],
              state_t m2[C2][H2][W2], state_t m3[HIDDEN], logit_t logits[CLASSES]) {
    spike_t s1[C1][H1][W1], p1[C1][H2][W2], s2[C2][H2][W2], p2[C2][H3][W3], s3[HIDDEN];
    conv1_lif(x, m1, s1);
    maxpool<C1, H1, W1>(s1, p1);
    conv2_lif(p1, m2, s2);
    maxpool<C2, H2, W2>(s2, p2);
    fc1_lif(p2, m3, s3);
    fc2(s3, logits);
}

void snn_infer(const pixel_t image[IN_C][IN_H][IN_W], logit_sum_t logit_sum[CLASSES]) {
    static state_t m1[C1][H1][W1], m2[C2][H2][W2], m3[HIDDEN];  // on chip across timesteps
    for (int c = 0; c < C1; c++) for (int y = 0; y < H1; y++) for (int z = 0; z < W1; z++) m1[c][y][z] = 0;
    for (int c = 0; c < C2; c++) for (int y = 0; y < H2; y++) for (int z = 0; z < W2; z++) m2[c][y][z] = 0;
    for (int o = 0; o < HIDDEN; o++) m3[o] = 0;
    for (int o = 0; o < CLASSES; o++) logit_sum[o] = 0;
    for (int t = 0; t < TIMESTEPS; t++) {
        logit_t logits[CLASSES];
        snn_step(image, m1, m2, m3, logits);
        for (int o = 0; o < CLASSES; o++) logit_sum[o] += logits[o];
    }
}

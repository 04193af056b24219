// Integer LIF CNN. Every current is an exact integer sum: weights W are integers with scale
// 2^-WFRAC, pixels p with scale 2^-8, spikes 0/1. The LIF update of one neuron, in the units
// of params.h (membrane code v in units 2^-STATE_FRAC, accumulator a in units 2^-FRAC_l):
//   x = (v << SHIFT_V_l) + (a << SHIFT_A_l)          beta V + I in units 2^-U_l (beta = 2^-LEAK_SHIFT:
//                                                    the leak is this shift of the binary point)
//   v = clamp(round_half_even(x / 2^ROUND_l))       the membrane grid, as torch.round / QONNX Quant
//   s = v >= THETA;  v -= THETA * s  (or v = 0 if s: RESET_ZERO)
#include "snn.h"

template <int W>
static ap_int<W> round_shift(ap_int<W> x, int shift) {
    if (shift == 0) return x;
    ap_int<W> q = x >> shift;  // floor
    ap_int<W> rest = x - (q << shift);
    ap_int<W> half = ap_int<W>(1) << (shift - 1);
    if (rest > half || (rest == half && (q & 1))) q += 1;  // half to even
    return q;
}

template <int W>
static spike_t lif(state_t &v, ap_int<W> x, int round) {
    ap_int<W> r = round_shift<W>(x, round);
    if (r > STATE_MAX_CODE) r = STATE_MAX_CODE;
    if (r < STATE_MIN_CODE) r = STATE_MIN_CODE;
    state_t pre = r;
    spike_t s = pre >= THETA_CODE;
#if RESET_ZERO
    v = s ? state_t(0) : pre;
#else
    v = s ? state_t(pre - THETA_CODE) : pre;
#endif
    return s;
}

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
                x1_t v = (x1_t(m[o][y][z]) << SHIFT_V_1) + (x1_t(a) << SHIFT_A_1);
                s[o][y][z] = lif<X1_BITS>(m[o][y][z], v, ROUND_1);
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
                x2_t v = (x2_t(m[o][y][z]) << SHIFT_V_2) + (x2_t(a) << SHIFT_A_2);
                s[o][y][z] = lif<X2_BITS>(m[o][y][z], v, ROUND_2);
            }
}

static void fc1_lif(const spike_t x[C2][H3][W3], state_t m[HIDDEN], spike_t s[HIDDEN]) {
    for (int o = 0; o < HIDDEN; o++) {
        acc3_t a = 0;
        for (int i = 0; i < C2; i++)
            for (int y = 0; y < H3; y++)
                for (int z = 0; z < W3; z++)
                    if (x[i][y][z]) a += W3_INT[o][(i * H3 + y) * W3 + z];
        x3_t v = (x3_t(m[o]) << SHIFT_V_3) + (x3_t(a) << SHIFT_A_3);
        s[o] = lif<X3_BITS>(m[o], v, ROUND_3);
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

// C simulation testbench: runs snn_step over T timesteps per image on the frames in
// frames.bin (int32 N, int32 T, then N x T x IN_C x IN_H x IN_W bytes) and writes, per image
// and step, every LIF stage's membrane codes (int16, stage by stage) and the readout's
// accumulators (int32) to csim_out.bin for the Python comparison. Under direct encoding it
// also checks snn_infer against the step sums.
#include <cstdint>
#include <cstdio>
#include <vector>

#include "layers.h"
#include "snn.h"

template <int C, int H, int W>
void write_codes(FILE *out, const state_t (&m)[C][H][W]) {
    for (int c = 0; c < C; c++)
        for (int y = 0; y < H; y++)
            for (int z = 0; z < W; z++) { int16_t v = m[c][y][z].to_int(); fwrite(&v, 2, 1, out); }
}

template <int N>
void write_codes(FILE *out, const state_t (&m)[N]) {
    for (int n = 0; n < N; n++) { int16_t v = m[n].to_int(); fwrite(&v, 2, 1, out); }
}

#define CLEAR_MEMBRANE(name) clear_state(m.name);
#define WRITE_MEMBRANE(name) write_codes(out, m.name);

int main(int argc, char **argv) {
    const char *in_path = argc > 1 ? argv[1] : "frames.bin";
    const char *out_path = argc > 2 ? argv[2] : "csim_out.bin";
    FILE *in = fopen(in_path, "rb");
    FILE *out = fopen(out_path, "wb");
    if (!in || !out) { fprintf(stderr, "cannot open %s or %s\n", in_path, out_path); return 2; }
    int32_t n = 0, steps = 0;
    if (fread(&n, 4, 1, in) != 1 || fread(&steps, 4, 1, in) != 1) return 2;
    static pixel_t x[IN_C][IN_H][IN_W];
    static membranes_t m;
    std::vector<uint8_t> frame(IN_C * IN_H * IN_W);
    int infer_mismatches = 0;
    for (int img = 0; img < n; img++) {
        FOR_EACH_MEMBRANE(CLEAR_MEMBRANE)
        long long sums[CLASSES] = {0};
        for (int t = 0; t < steps; t++) {
            if (fread(frame.data(), 1, frame.size(), in) != frame.size()) return 2;
            for (int c = 0, k = 0; c < IN_C; c++) for (int y = 0; y < IN_H; y++) for (int z = 0; z < IN_W; z++) x[c][y][z] = frame[k++];
            logit_t logits[CLASSES];
            snn_step(x, m, logits);
            FOR_EACH_MEMBRANE(WRITE_MEMBRANE)
            for (int o = 0; o < CLASSES; o++) { int32_t v = logits[o].to_int(); fwrite(&v, 4, 1, out); sums[o] += v; }
        }
#if DIRECT_ENCODING
        logit_sum_t total[CLASSES];
        snn_infer(x, total);
        for (int o = 0; o < CLASSES; o++) infer_mismatches += total[o].to_int64() != sums[o];
#endif
    }
    fclose(in);
    fclose(out);
    if (infer_mismatches) { fprintf(stderr, "snn_infer differs from the step sums (%d)\n", infer_mismatches); return 1; }
    printf("csim: %d images x %d steps\n", n, steps);
    return 0;
}

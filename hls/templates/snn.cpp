// Integer LIF CNN: one timestep (snn_step, the generated stages.h: one template instance of
// layers.h per stage of the layer list) and a whole inference (snn_infer).
#include "snn.h"

#include "layers.h"
#include "stages.h"

void snn_step(const pixel_t x[IN_C][IN_H][IN_W], membranes_t &m, logit_t logits[CLASSES]) {
    run_stages(x, m, logits);
}

#define CLEAR_MEMBRANE(name) clear_state(m.name);

void snn_infer(const pixel_t image[IN_C][IN_H][IN_W], logit_sum_t logit_sum[CLASSES]) {
    static membranes_t m;  // on chip across timesteps
    FOR_EACH_MEMBRANE(CLEAR_MEMBRANE)
    for (int o = 0; o < CLASSES; o++) logit_sum[o] = 0;
    for (int t = 0; t < TIMESTEPS; t++) {
        logit_t logits[CLASSES];
        snn_step(image, m, logits);
        for (int o = 0; o < CLASSES; o++) logit_sum[o] += logits[o];
    }
}

// Spiking CNN in integer arithmetic: one timestep (snn_step) and a whole inference (snn_infer).
// Constants, widths and weights come from params.h, generated from a trained run.
#ifndef SNN_H
#define SNN_H

#include <ap_int.h>

#include "params.h"

typedef ap_uint<8> pixel_t;                 // input pixel p (the network sees p / 256), or a spike
typedef ap_uint<1> spike_t;
typedef ap_int<STATE_BITS> state_t;         // membrane code V / STATE_STEP
typedef ap_int<LOGIT_BITS> logit_t;         // fc2 accumulator, units 2^-FRAC_4
typedef ap_int<LOGIT_SUM_BITS> logit_sum_t; // sum of logit_t over T

// One timestep: x -> spikes of every layer, membranes updated in place, fc2 output in logits.
void snn_step(const pixel_t x[IN_C][IN_H][IN_W], state_t m1[C1][H1][W1],
              state_t m2[C2][H2][W2], state_t m3[HIDDEN], logit_t logits[CLASSES]);

// T timesteps with the membranes in on-chip arrays; logit_sum = sum over t of fc2's output.
void snn_infer(const pixel_t image[IN_C][IN_H][IN_W], logit_sum_t logit_sum[CLASSES]);

#endif

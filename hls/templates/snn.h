// Spiking CNN in integer arithmetic: one timestep (snn_step) and a whole inference (snn_infer).
// Constants, widths and weights come from params.h, the membranes of the layer list from
// network.h; both are generated from a trained run.
#ifndef SNN_H
#define SNN_H

#include <ap_int.h>

#include "params.h"

typedef ap_uint<8> pixel_t;                 // input pixel p (the network sees p / 256), or a spike
typedef ap_uint<1> spike_t;
typedef ap_int<STATE_BITS> state_t;         // membrane code V / STATE_STEP
typedef ap_int<LOGIT_BITS> logit_t;         // readout accumulator, units 2^-LOGIT_FRAC
typedef ap_int<LOGIT_SUM_BITS> logit_sum_t; // sum of logit_t over T

#include "network.h"  // membranes_t: one membrane array per LIF stage; FOR_EACH_MEMBRANE

// One timestep: x -> spikes of every stage, membranes updated in place, readout in logits.
void snn_step(const pixel_t x[IN_C][IN_H][IN_W], membranes_t &m, logit_t logits[CLASSES]);

// T timesteps with the membranes in on-chip arrays; logit_sum = sum over t of the readout.
void snn_infer(const pixel_t image[IN_C][IN_H][IN_W], logit_sum_t logit_sum[CLASSES]);

#endif

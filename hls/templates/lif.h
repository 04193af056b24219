// The LIF neuron in integers, the one C++ definition used by `make hls` (snn.cpp) and by
// FINN's LIF_hls layer (lif_layer); common/integer_lif.py states the arithmetic and is its
// numpy twin (tested bit for bit). Membrane code v (units 2^-Q, StateBits bits), current a
// (units 2^-F), leak beta = 2^-K, U = max(Q + K, F):
//   x = (v << ShiftV) + (a << ShiftA)       beta V + I in units 2^-U (ShiftV = U - Q - K,
//                                           ShiftA = U - F: the leak is a shift)
//   v = clamp(round_half_even(x >> Round))  the membrane grid (Round = U - Q), saturating
//   s = v >= Theta;  v -= Theta s  (or v = 0 if s: ResetZero)
// Template parameters are CamelCase so that the macros of the including code (params.h:
// STATE_BITS, ...) cannot collide with them.
#ifndef QSNN_LIF_H
#define QSNN_LIF_H

#include <ap_int.h>
#include <hls_stream.h>

template <int W, int Shift>
ap_int<W> round_half_even_shift(ap_int<W> x) {
    if (Shift == 0) return x;
    ap_int<W> q = x >> Shift;  // floor
    ap_int<W> rest = x - (q << Shift);
    ap_int<W> half = ap_int<W>(1) << (Shift > 0 ? Shift - 1 : 0);
    if (rest > half || (rest == half && (q & 1))) q += 1;  // half to even
    return q;
}

// One neuron, one timestep: v is updated in place, the spike returned.
template <int StateBits, int XBits, int ShiftV, int ShiftA, int Round, int Theta,
          int ResetZero, typename current_t>
ap_uint<1> lif_neuron(ap_int<StateBits> &v, current_t a) {
    const ap_int<XBits> high = (ap_int<XBits>(1) << (StateBits - 1)) - 1;
    const ap_int<XBits> low = -(ap_int<XBits>(1) << (StateBits - 1));
    ap_int<XBits> x = (ap_int<XBits>(v) << ShiftV) + (ap_int<XBits>(a) << ShiftA);
    ap_int<XBits> r = round_half_even_shift<XBits, Round>(x);
    if (r > high) r = high;
    if (r < low) r = low;
    ap_int<StateBits> charged = r;
    ap_uint<1> s = charged >= Theta;
    if (ResetZero)
        v = s ? ap_int<StateBits>(0) : charged;
    else
        v = s ? ap_int<StateBits>(charged - Theta) : charged;
    return s;
}

// One frame (= one timestep) of a layer of Neurons neurons, Pe per cycle: Neurons / Pe words
// of Pe currents in (lane p in bits [p CurrentBits, (p + 1) CurrentBits)), Pe spikes out.
// membrane[p][n] holds neuron n Pe + p; `first` starts every neuron from 0.
template <unsigned Neurons, unsigned Pe, int CurrentBits, int StateBits, int XBits,
          int ShiftV, int ShiftA, int Round, int Theta, int ResetZero>
void lif_frame(hls::stream<ap_uint<Pe * CurrentBits> > &in, hls::stream<ap_uint<Pe> > &out,
               ap_int<StateBits> membrane[Pe][Neurons / Pe], bool first) {
    for (unsigned n = 0; n < Neurons / Pe; n++) {
#pragma HLS pipeline II = 1
        ap_uint<Pe * CurrentBits> currents = in.read();
        ap_uint<Pe> spikes;
        for (unsigned p = 0; p < Pe; p++) {
#pragma HLS unroll
            ap_int<CurrentBits> a = currents.range((p + 1) * CurrentBits - 1, p * CurrentBits);
            ap_int<StateBits> v = first ? ap_int<StateBits>(0) : membrane[p][n];
            spikes[p] = lif_neuron<StateBits, XBits, ShiftV, ShiftA, Round, Theta,
                                   ResetZero>(v, a);
            membrane[p][n] = v;
        }
        out.write(spikes);
    }
}

// The FINN layer, one call per frame (= timestep): the membranes live in on-chip memory
// (reshaped into one memory of Neurons / Pe words of Pe x StateBits bits) across the
// Timesteps frames of an image; a frame counter starts each image from zero. With Held = 1
// (the first layer under direct encoding, whose current is the same at every timestep) the
// layer reads its input on the first frame of an image only, keeps the currents in a second
// memory of the same shape and replays them: the layers before it run once per image.
template <unsigned Neurons, unsigned Pe, unsigned Timesteps, int CurrentBits, int StateBits,
          int XBits, int ShiftV, int ShiftA, int Round, int Theta, int ResetZero, int Held>
void lif_layer(hls::stream<ap_uint<Pe * CurrentBits> > &in, hls::stream<ap_uint<Pe> > &out) {
#pragma HLS dataflow
    static ap_int<StateBits> membrane[Pe][Neurons / Pe];
#pragma HLS ARRAY_RESHAPE variable = membrane complete dim = 1
    static ap_uint<Pe * CurrentBits> held[Held ? Neurons / Pe : 1];
    static unsigned timestep = 0;
    hls::stream<ap_uint<Pe * CurrentBits> > currents;
    for (unsigned n = 0; n < Neurons / Pe; n++) {
#pragma HLS pipeline II = 1
        ap_uint<Pe * CurrentBits> word = (Held && timestep != 0) ? held[Held ? n : 0] : in.read();
        if (Held && timestep == 0) held[Held ? n : 0] = word;
        currents.write(word);
    }
    lif_frame<Neurons, Pe, CurrentBits, StateBits, XBits, ShiftV, ShiftA, Round, Theta,
              ResetZero>(currents, out, membrane, timestep == 0);
    timestep = timestep + 1 == Timesteps ? 0 : timestep + 1;
}

#endif

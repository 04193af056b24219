"""HLS C++ of the spiking CNN in integer arithmetic, and its bit-accurate C simulation."""

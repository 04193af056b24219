"""The FINN hardware graph (every layer a FINN HW layer, the LIF layer included), folding to
a target rate and FINN's estimates (`make fpga-estimate`)."""

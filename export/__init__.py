"""The trained network's export, one folder per target: qonnx/ (the QONNX step graph, its
standard-ONNX form and their verification: `make export`), finn/ (the FINN hardware graph,
the LIF layer for FINN, folding and estimates: `make fpga-estimate`), rtl/ (the design in RTL,
simulated and synthesized), nir/ (`make nir` and its round trip); lockstep.py compares any
two engines of a network on the same frames."""

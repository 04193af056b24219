"""The QONNX step graph (one timestep, membranes as I/O), its standard-ONNX form, and their
verification against PyTorch (`make export`)."""

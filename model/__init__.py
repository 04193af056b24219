"""Spiking CNN and ANN baseline, built from a ModelSpec with Brevitas quantized layers."""

import logging
import warnings

# Brevitas 0.13 renames tensors internally and torch warns each time; the warning is not ours.
warnings.filterwarnings("ignore", message="Named tensors and all their associated APIs")
warnings.filterwarnings("ignore", message="fast_hadamard_transform package not found")
# torch's CUDA wheel logs "No CUDA runtime is found" when Brevitas imports cpp_extension on a
# CPU-only machine; it is harmless and would precede every error message.
logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)

"""Spiking CNN and ANN baseline, built from a ModelSpec with Brevitas quantized layers."""

import warnings

# Brevitas 0.13 renames tensors internally and torch warns each time; the warning is not ours.
warnings.filterwarnings("ignore", message="Named tensors and all their associated APIs")

"""The LIF neuron in integers: the one definition that `make hls`, FINN's LIF layer and its
numpy execution share (the C++ form is hls/templates/lif.h).

Units: membrane code v (membrane V = v 2^-Q, signed `state_bits` bits), input current a
(an accumulator, I = a 2^-F, signed `current_bits` bits), leak beta = 2^-K. With
U = max(Q + K, F), one timestep is, exactly as PyTorch's float arithmetic on the grid:

    x  = (v << (U - Q - K)) + (a << (U - F))        beta V + I in units 2^-U (shifts only)
    v  = clamp(round_half_even(x / 2^(U - Q)))      the membrane grid (torch.round, QONNX Quant)
    s  = v >= theta_code
    v' = v - theta_code s   (reset "subtract")  or  v (1 - s)   (reset "zero")

x needs max(state_bits + U - Q - K, current_bits + U - F) + 1 bits: nothing overflows.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class IntegerLIF:
    state_bits: int  # signed width of the membrane code v
    state_frac: int  # Q: membrane step 2^-Q
    leak_shift: int  # K: beta = 2^-K
    current_frac: int  # F: current I = a 2^-F
    current_bits: int  # signed width of the current a
    theta_code: int  # threshold in membrane codes
    reset: str  # "subtract" or "zero"

    @property
    def units(self) -> int:
        return max(self.state_frac + self.leak_shift, self.current_frac)

    @property
    def shift_v(self) -> int:
        return self.units - self.state_frac - self.leak_shift

    @property
    def shift_a(self) -> int:
        return self.units - self.current_frac

    @property
    def round_shift(self) -> int:
        return self.units - self.state_frac

    @property
    def x_bits(self) -> int:
        return max(self.state_bits + self.shift_v, self.current_bits + self.shift_a) + 1

    @property
    def state_min(self) -> int:
        return -(2 ** (self.state_bits - 1))

    @property
    def state_max(self) -> int:
        return 2 ** (self.state_bits - 1) - 1

    def step(self, membrane: np.ndarray, current: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One timestep on integer arrays: (spikes in {0, 1}, reset membrane codes)."""
        v = np.asarray(membrane, dtype=np.int64)
        a = np.asarray(current, dtype=np.int64)
        x = (v << self.shift_v) + (a << self.shift_a)
        charged = np.clip(round_half_even_shift(x, self.round_shift), self.state_min,
                          self.state_max)
        spikes = (charged >= self.theta_code).astype(np.int64)
        if self.reset == "subtract":
            return spikes, charged - self.theta_code * spikes
        return spikes, charged * (1 - spikes)


def round_half_even_shift(x: np.ndarray, shift: int) -> np.ndarray:
    """round_half_even(x / 2^shift) for int64 x, in integers."""
    if shift == 0:
        return x
    floor = x >> shift
    rest = x - (floor << shift)
    half = 1 << (shift - 1)
    return floor + ((rest > half) | ((rest == half) & (floor & 1 == 1)))

"""What every cost model returns, and the small formulas and unit factors they share."""
from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from common.errors import UserError

UJ = 1e6  # pJ per uJ
US = 1e3  # ns per us
UM2_PER_MM2 = 1e6


@dataclass
class Costs:
    """One target's estimate of one workload under one configuration.

    Per row (layer, timestep): energy by component, cycles, latency. Per layer: area and FPGA
    resources. `inference_latency_ns` may be less than the sum of row latencies when the
    target pipelines layers; `shared_area_mm2` is area no single layer owns; `per_inference`
    holds a target's further totals per inference (e.g. FPGA: the single-inference energy).
    """

    energy_pj: dict[str, np.ndarray]
    cycles: np.ndarray
    latency_ns: np.ndarray
    inference_latency_ns: float
    area_mm2: np.ndarray
    shared_area_mm2: float = 0.0
    resources: dict[str, np.ndarray] = field(default_factory=dict)
    per_inference: dict[str, float] = field(default_factory=dict)  # extra totals, unit in name

    @property
    def total_energy_pj(self) -> np.ndarray:
        """The energy components summed, per row."""
        return functools.reduce(np.add, self.energy_pj.values())


class NotMapped(UserError):
    """A target cannot hold this network (e.g. it needs more cores than the chip has): the
    report skips the pair and says why in one line, the other targets go on."""


@dataclass(frozen=True)
class Departure:
    """Where a cost model goes beyond its anchor: what it does, why, on what source, and the
    factor it changes a number by (pinned by a test)."""

    what: str
    why: str
    source: str
    factor: str


def linear_in_bits(bits: np.ndarray | float, at: tuple[float, float],
                   to: tuple[float, float]) -> np.ndarray:
    """y(bits) through the points `at` and `to`; proportional to bits below the first point.
    An array of the shape of `bits` (0-d for a number).

    Used for adders (energy and area grow with width) and, over the partial-product count
    a*w, for array multipliers.
    """
    (x0, y0), (x1, y1) = at, to
    bits = np.asarray(bits, dtype=float)
    return np.where(bits < x0, y0 * bits / x0, y0 + (bits - x0) * (y1 - y0) / (x1 - x0))


def ns_per_cycle(clock_mhz: float) -> float:
    return 1e3 / clock_mhz

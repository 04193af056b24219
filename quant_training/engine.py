"""One training epoch and one evaluation pass, with tqdm progress bars."""
from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from model.hooks import SpikeCounter, WorkloadProbe
from quant_training.data import Split, batches, num_batches
from quant_training.step import TrainStep

EVAL_SEED = 0  # rate-encoded inputs are drawn from this seed at every evaluation
PROGRESS_EVERY = 25  # batches between progress-bar updates (each one syncs with the device)


@dataclass(frozen=True)
class Result:
    """Mean cross-entropy loss, accuracy in %, wall time, and per LIF layer: spikes per image
    (summed over timesteps) and neuron count."""

    loss: float
    accuracy_pct: float
    images: int
    seconds: float
    spikes_per_image: dict[str, float] = field(default_factory=dict)
    neurons: dict[str, int] = field(default_factory=dict)


class _Tally:
    """Running loss and correct-count sums, kept on the device to avoid per-batch syncs."""

    def __init__(self, device: torch.device) -> None:
        self.loss = torch.zeros((), device=device)
        self.correct = torch.zeros((), device=device, dtype=torch.long)
        self.images = 0

    def add(self, logits: torch.Tensor, labels: torch.Tensor, loss: torch.Tensor) -> None:
        self.loss += loss.detach() * len(labels)
        self.correct += (logits.argmax(1) == labels).sum()
        self.images += len(labels)

    def summary(self) -> tuple[float, float]:
        images = max(self.images, 1)
        return float(self.loss) / images, 100.0 * float(self.correct) / images


def train_one_epoch(step: TrainStep, split: Split, batch_size: int, device: torch.device,
                    generator: torch.Generator, desc: str, shift_px: int = 0,
                    flips: bool = False) -> Result:
    """One pass over `split` in shuffled batches, each trained by `step`."""
    step.model.train()
    tally, start = _Tally(device), time.perf_counter()
    bar = tqdm(batches(split, batch_size, device, generator, shift_px, flips),
               total=num_batches(split, batch_size),
               desc=desc, unit="batch", leave=False)
    for i, (images, labels) in enumerate(bar):
        logits, loss = step(images, labels)
        tally.add(logits, labels, loss)
        if i % PROGRESS_EVERY == 0:
            mean_loss, acc = tally.summary()
            bar.set_postfix(loss=f"{mean_loss:.4f}", acc=f"{acc:.2f}%")
    mean_loss, acc = tally.summary()
    return Result(mean_loss, acc, tally.images, time.perf_counter() - start)


@torch.no_grad()
def evaluate(model: nn.Module, split: Split, batch_size: int, device: torch.device,
             desc: str = "eval", probe: WorkloadProbe | None = None) -> Result:
    """Loss, accuracy and spikes per image on `split`; rate encoding draws from EVAL_SEED.

    A WorkloadProbe, if given, records the full workload during the same pass.
    """
    model.eval()
    tally, start = _Tally(device), time.perf_counter()
    devices = [device] if device.type == "cuda" else []
    with (torch.random.fork_rng(devices=devices), SpikeCounter(model) as spikes,
          probe or nullcontext()):
        torch.manual_seed(EVAL_SEED)
        for images, labels in tqdm(batches(split, batch_size, device),
                                   total=num_batches(split, batch_size), desc=desc,
                                   unit="batch", leave=False):
            logits = model(images)
            tally.add(logits, labels, F.cross_entropy(logits, labels))
    mean_loss, acc = tally.summary()
    return Result(mean_loss, acc, tally.images, time.perf_counter() - start,
                  spikes.per_image(tally.images), dict(spikes.neurons))


def spike_summary(result: Result, timesteps: int) -> dict:
    """Spikes per image per LIF layer, their total, and firing rates (spikes / neurons / T)."""
    if not result.spikes_per_image:
        return {}
    return {
        "spikes_per_image": result.spikes_per_image,
        "spikes_per_image_total": sum(result.spikes_per_image.values()),
        "firing_rate": {name: count / (result.neurons[name] * timesteps)
                        for name, count in result.spikes_per_image.items()},
    }

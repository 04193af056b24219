"""One optimisation step, run eagerly or replayed from a CUDA graph.

    step(images, labels) -> (logits, loss):  forward, cross-entropy, backward, optimizer step

Issued op by op from Python, a step of these small networks is launch-bound on a GPU: Brevitas'
quantizers, the LIF layers and Adam are hundreds of small kernels, each taking longer to issue
than to run. On a CUDA device the step is therefore captured once as a CUDA graph and then
replayed with one launch per batch, following torch's whole-network capture recipe (torch.cuda
graphs documentation): WARMUP_STEPS eager steps on a side stream, then one capture on that
stream (where autograd's gradient accumulators were created) of forward, backward and
`optimizer.step()` (an Adam built with capturable=True, `optimizer_for`), reading static input
buffers that each batch is copied into. A replay launches the captured
kernels with their captured arguments: the same arithmetic as the eager step. What a graph
cannot follow runs eagerly instead:
  - a batch of another shape (an epoch's last, partial batch);
  - a changed learning rate (a constant in the graph): the step is captured again;
  - Brevitas quantizers still collecting runtime statistics (a Python counter over their first
    `collect_stats_steps` calls, e.g. the ANN's QuantReLU): eager until they have finished;
  - a failed capture (an operation that waits for the host): eager for the rest of the run,
    after a one-line warning.
On a CPU the step always runs eagerly, as before.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

WARMUP_STEPS = 3  # eager steps before the capture (lazy initialisation, Triton compilation)


@dataclass(frozen=True)
class Captured:
    """A captured step: its graph, the static buffers it reads and writes, and the learning
    rates it was captured with."""

    graph: torch.cuda.CUDAGraph
    inputs: tuple[Tensor, Tensor]  # images, labels
    outputs: tuple[Tensor, Tensor]  # logits, loss
    lrs: list[float]


class TrainStep:
    """`step(images, labels)` trains on one batch and returns (logits, loss) on the device,
    without synchronising with it. After a replay both are the graph's static outputs: read
    them before the next call, which overwrites them."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer,
                 graph: bool = True) -> None:
        self.model, self.optimizer = model, optimizer
        self.graph_enabled = graph and _on_cuda(model)
        self.eager_steps = self.replays = self.captures = 0
        self._captured: Captured | None = None
        self._stream = torch.cuda.Stream() if self.graph_enabled else None

    def __call__(self, images: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        if self._captured is not None and self._captured.lrs != self._lrs():
            self._captured = None  # the learning rate changed: capture again
        if self._captured is None and self._ready_to_capture():
            self._captured = self._capture(images, labels)
        captured = self._captured
        if captured is not None and images.shape == captured.inputs[0].shape:
            captured.inputs[0].copy_(images)
            captured.inputs[1].copy_(labels)
            captured.graph.replay()
            self.replays += 1
            return captured.outputs
        self.eager_steps += 1
        if self._stream is None:
            return self._eager(images, labels)
        self._stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(self._stream):
            outputs = self._eager(images, labels)
        torch.cuda.current_stream().wait_stream(self._stream)
        return outputs

    def _eager(self, images: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        logits = self.model(images)
        loss = F.cross_entropy(logits, labels)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return logits, loss

    def _ready_to_capture(self) -> bool:
        return (self.graph_enabled and self.eager_steps >= WARMUP_STEPS
                and not collecting_statistics(self.model))

    def _capture(self, images: Tensor, labels: Tensor) -> Captured | None:
        inputs = images.clone(), labels.clone()
        self.optimizer.zero_grad(set_to_none=True)  # the graph's backward allocates the grads
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph, stream=self._stream):  # the warm-up's stream
                logits = self.model(inputs[0])
                loss = F.cross_entropy(logits, inputs[1])
                loss.backward()
                self.optimizer.step()
        except RuntimeError as err:
            first_line = (str(err).strip().splitlines() or [type(err).__name__])[0]
            print(f"warning: CUDA graph capture of the training step failed ({first_line}); "
                  f"training eagerly", file=sys.stderr)
            self.graph_enabled = False
            self.optimizer.zero_grad(set_to_none=True)
            return None
        self.captures += 1
        return Captured(graph, inputs, (logits, loss), self._lrs())

    def _lrs(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]


def optimizer_for(model: nn.Module, lr: float) -> torch.optim.Adam:
    """Adam over the model's parameters; capturable (its step count on the device, so that
    `TrainStep` can capture it in a graph) when the model is on a CUDA device."""
    return torch.optim.Adam(model.parameters(), lr=lr, capturable=_on_cuda(model))


def load_optimizer_state(optimizer: torch.optim.Optimizer, state: dict) -> None:
    """`optimizer.load_state_dict(state)` keeping this optimizer's `capturable` flag and the
    step counts where it needs them, so a run resumes on another device than it started on."""
    capturable = [group.get("capturable", False) for group in optimizer.param_groups]
    optimizer.load_state_dict(state)
    for group, flag in zip(optimizer.param_groups, capturable, strict=True):
        group["capturable"] = flag
        for param in group["params"]:
            param_state = optimizer.state.get(param, {})
            if "step" in param_state:
                step = param_state["step"].to(torch.float32)
                param_state["step"] = step.to(param.device) if flag else step.cpu()


def collecting_statistics(model: nn.Module) -> bool:
    """True while a Brevitas quantizer of `model` still collects runtime statistics: it counts
    its calls in a Python attribute and changes its computation after `collect_stats_steps`."""
    # both are plain int attributes, which nn.Module.__getattr__'s stub types Tensor | Module
    return any(module.counter <= module.collect_stats_steps  # type: ignore[operator]
               for module in model.modules()
               if hasattr(module, "collect_stats_steps") and hasattr(module, "counter"))


def _on_cuda(model: nn.Module) -> bool:
    return any(param.is_cuda for param in model.parameters())

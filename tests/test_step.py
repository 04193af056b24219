"""The training step (quant_training/step.py) on a CPU: the eager step, resuming an optimizer
saved on another device, and the rule that keeps a collecting Brevitas quantizer out of a CUDA
graph. The graph itself is tested on a GPU (test_cuda.py)."""
import torch
import torch.nn.functional as F

from model.network import build_model
from model.quantizers import pixels
from model.spec import ModelSpec
from quant_training.step import (
    TrainStep,
    collecting_statistics,
    load_optimizer_state,
    optimizer_for,
)

SPEC = ModelSpec(timesteps=2, weight_bits=4, dropout=0.0, layers="conv4,pool,fc8")


def batch(seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    images = pixels(torch.randint(0, 256, (8, 1, 28, 28), dtype=torch.uint8, generator=gen))
    return images, torch.randint(0, 10, (8,), generator=gen)


def test_eager_step_is_forward_loss_backward_adam():
    """On a CPU: no graph, no side stream; the step is the plain loop, weights and all."""
    models = []
    for _ in range(2):
        torch.manual_seed(0)
        models.append(build_model(SPEC).train())
    step = TrainStep(models[0], optimizer_for(models[0], 1e-2))
    reference = torch.optim.Adam(models[1].parameters(), lr=1e-2)
    assert not step.graph_enabled and step.optimizer.param_groups[0]["capturable"] is False
    for seed in range(3):
        images, labels = batch(seed)
        logits, loss = step(images, labels)
        expected_logits = models[1](images)
        expected = F.cross_entropy(expected_logits, labels)
        reference.zero_grad()
        expected.backward()
        reference.step()
        assert torch.equal(logits, expected_logits) and torch.equal(loss, expected)
    assert (step.eager_steps, step.captures, step.replays) == (3, 0, 0)
    for ours, theirs in zip(models[0].parameters(), models[1].parameters(), strict=True):
        assert torch.equal(ours, theirs)


def test_optimizer_state_from_a_gpu_run_resumes_on_a_cpu():
    """A checkpoint of a CUDA run holds capturable=True (Adam's step counts on the device);
    resumed on a CPU the optimizer stays non-capturable, with its step counts on the CPU."""
    torch.manual_seed(0)
    model = build_model(SPEC).train()
    saved_by = optimizer_for(model, 1e-3)
    TrainStep(model, saved_by)(*batch())
    state = saved_by.state_dict()
    state["param_groups"][0]["capturable"] = True  # as saved on a GPU
    optimizer = optimizer_for(model, 1e-3)
    load_optimizer_state(optimizer, state)
    assert optimizer.param_groups[0]["capturable"] is False
    assert all(s["step"].device.type == "cpu" and float(s["step"]) == 1.0
               for s in optimizer.state.values())
    TrainStep(model, optimizer)(*batch(1))  # Adam refuses a capturable step on a CPU
    assert all(float(s["step"]) == 2.0 for s in optimizer.state.values())


def test_a_collecting_brevitas_quantizer_keeps_the_step_out_of_a_graph():
    """The ANN's QuantReLU collects activation statistics over its first 300 training calls
    (a Python counter a graph would freeze); the SNN has no such quantizer."""
    assert not collecting_statistics(build_model(SPEC))
    ann = build_model(ModelSpec(kind="ann", timesteps=1, weight_bits=4, layers="conv4,pool,fc8"))
    assert collecting_statistics(ann)
    collectors = [m for m in ann.modules() if hasattr(m, "collect_stats_steps")]
    for module in collectors:
        module.counter = module.collect_stats_steps + 1
    assert collectors and not collecting_statistics(ann)

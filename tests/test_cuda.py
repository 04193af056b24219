"""Training on a CUDA GPU (skipped without one): the captured training step trains as the eager
step does, and a network trained on the GPU computes on the GPU exactly what it computes on
the CPU. (The Triton LIF kernels' own CUDA tests are in test_lif_triton.py; forward == T calls
of `step` on the GPU is test_model.py's comparison with device="cuda".)
"""
import pytest
import torch

from common.runs import CHECKPOINT, HISTORY
from model.network import build_model
from model.spec import ModelSpec
from quant_training.checkpoint import load_model
from quant_training.config import TrainConfig
from quant_training.data import batches, load_dataset
from quant_training.step import WARMUP_STEPS, TrainStep, optimizer_for
from quant_training.train import train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
CUDA = torch.device("cuda")


def test_a_split_resident_on_the_gpu_gives_the_cpu_batches(mnist_small):
    cpu, gpu = (list(batches(split, 64, CUDA, torch.Generator().manual_seed(1), shift_px=2))
                for split in (mnist_small.train, mnist_small.train.to(CUDA)))
    for (x_cpu, y_cpu), (x_gpu, y_gpu) in zip(cpu, gpu, strict=True):
        assert x_gpu.is_cuda and torch.equal(x_gpu, x_cpu) and torch.equal(y_gpu, y_cpu)


def test_graph_step_trains_as_the_eager_step(mnist_small, monkeypatch):
    """Same weights, same batches (9 full, 1 partial), a learning-rate change after 5: the
    graph step (3 eager warm-up steps, a capture, replays, a new capture for the new rate,
    the partial batch eager) gives the eager step's losses and weights. Dropout 0: the two
    modes draw no random numbers; deterministic cuDNN: both sum in one order."""
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", True)
    spec = ModelSpec(timesteps=3, weight_bits=4, dropout=0.0)
    split = mnist_small.train.to(CUDA)
    runs = []
    for graph in (True, False):
        torch.manual_seed(0)
        model = build_model(spec).to(CUDA).train()
        step = TrainStep(model, optimizer_for(model, 1e-3), graph=graph)
        losses = []
        for i, (images, labels) in enumerate(batches(split, 64, CUDA,
                                                     torch.Generator().manual_seed(0))):
            if i == 5:
                step.optimizer.param_groups[0]["lr"] = 5e-4
            losses.append(step(images, labels)[1].item())
        runs.append((step, losses, [p.detach().clone() for p in model.parameters()]))
    (graph_step, graph_losses, graph_weights), (eager_step, eager_losses, eager_weights) = runs
    assert (graph_step.captures, graph_step.replays, graph_step.eager_steps) == (
        2, 10 - WARMUP_STEPS - 1, WARMUP_STEPS + 1)
    assert (eager_step.captures, eager_step.replays, eager_step.eager_steps) == (0, 0, 10)
    torch.testing.assert_close(torch.tensor(graph_losses), torch.tensor(eager_losses),
                               rtol=1e-5, atol=1e-6)
    for ours, theirs in zip(graph_weights, eager_weights, strict=True):
        torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-6)


def test_network_trained_on_the_gpu_computes_the_same_on_gpu_and_cpu(tmp_path, data_dir):
    """`make qat`'s training on the GPU (data resident there, CUDA-graph step), then the best
    checkpoint on 1,000 test images: fixed-point logits identical on the GPU and the CPU
    (TF32 off, exact integer sums in any order)."""
    spec = ModelSpec(timesteps=4, weight_bits=4)
    config = TrainConfig(device="cuda", epochs=2, limit=3000, batch_size=256)
    metrics = train(spec, config, data_dir, tmp_path / "run")
    assert metrics["device"] == torch.cuda.get_device_name(CUDA)
    assert (tmp_path / "run" / HISTORY).read_text().count("\n") == 3
    model, _, _ = load_model(tmp_path / "run" / CHECKPOINT)
    images, _ = next(batches(load_dataset("mnist", data_dir, limit=10).test, 1000,
                             torch.device("cpu")))
    with torch.no_grad():
        on_cpu = model(images)
        on_gpu = model.to(CUDA)(images.to(CUDA)).cpu()
    assert on_cpu.abs().max() > 0
    assert torch.equal(on_gpu, on_cpu), (on_gpu - on_cpu).abs().max()

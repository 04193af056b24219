"""LIF neuron: hand-computed sequences, the membrane grid, surrogate gradients, QONNX export."""
import math

import numpy as np
import pytest
import torch

from model.fixed_point import quantize_state
from model.lif import LIF
from model.spec import ModelSpec
from model.surrogate import SURROGATES, spike


def run_lif(spec: ModelSpec, currents: list[float]) -> tuple[list[float], list[float]]:
    """Spikes and reset membranes V'[t] of one neuron, step by step (LIF.step); the sequence
    forward must give the same spikes and final membrane."""
    lif, membrane, spikes, membranes = LIF(spec), torch.zeros(1), [], []
    for current in currents:
        s, membrane = lif.step(torch.tensor([current]), membrane)
        spikes.append(s.item())
        membranes.append(membrane.item())
    sequence_spikes, final = lif(torch.tensor(currents)[:, None])
    assert sequence_spikes[:, 0].tolist() == spikes and final.item() == membranes[-1]
    return spikes, membranes


def test_subtract_reset_by_hand():
    # beta 0.5, theta 0.5, float state: V = 0.5 V' + 0.3
    # t1: 0.3 | t2: 0.45 | t3: 0.525 -> spike, V' = 0.025 | t4: 0.3125 | t5: 0.45625
    spikes, membranes = run_lif(ModelSpec(state_bits=32), [0.3] * 5)
    assert spikes == [0, 0, 1, 0, 0]
    assert membranes == pytest.approx([0.3, 0.45, 0.025, 0.3125, 0.45625], abs=1e-6)


def test_zero_reset_by_hand():
    # input 0.8 each step: t1: 0.8 spike -> 0 | t2: 0.8 spike -> 0 ...; then 0.2: 0.2, 0.3
    spikes, membranes = run_lif(ModelSpec(state_bits=32, reset="zero"), [0.8, 0.8, 0.2, 0.2])
    assert spikes == [1, 1, 0, 0]
    assert membranes == pytest.approx([0.0, 0.0, 0.2, 0.3], abs=1e-6)
    spikes, membranes = run_lif(ModelSpec(state_bits=32, reset="subtract"), [0.8, 0.8, 0.2, 0.2])
    # subtract: 0.8 -> 0.3 | 0.15 + 0.8 = 0.95 -> 0.45 | 0.225 + 0.2 = 0.425 | 0.4125
    assert spikes == [1, 1, 0, 0]
    assert membranes == pytest.approx([0.3, 0.45, 0.425, 0.4125], abs=1e-6)


def test_quantized_membrane_by_hand():
    # 8-bit state, state_max 2: step 1/64. V = Q(0.5 V' + 0.3); 0.3 -> 19/64 (19.2 rounds to 19)
    # t2: 0.5*19/64 + 0.3 = 28.7/64 -> 29/64 | t3: 14.5/64 + 19.2/64 = 33.7/64 -> 34/64 >= 32/64:
    # spike, V' = 2/64 | t4: 1/64 + 19.2/64 = 20.2/64 -> 20/64
    spikes, membranes = run_lif(ModelSpec(state_bits=8), [0.3] * 4)
    assert spikes == [0, 0, 1, 0]
    assert [m * 64 for m in membranes] == [19, 29, 2, 20]


def test_state_grid_and_saturation():
    step, bits = 2 * 2.0 / 2**4, 4  # 4-bit, state_max 2: step 0.25, range [-2, 1.75]
    x = torch.linspace(-5, 5, 1001)
    q = quantize_state(x, step, bits)
    assert set(torch.unique(q / step).tolist()) <= set(range(-8, 8))
    assert q.min() == -2.0 and q.max() == 1.75
    inside = (x > -2) & (x < 1.75)
    assert torch.all((q[inside] - x[inside]).abs() <= step / 2 + 1e-6)
    x.requires_grad_(True)
    quantize_state(x, step, bits).sum().backward()
    assert torch.all(x.grad == 1)  # straight-through


@pytest.mark.parametrize("name", sorted(SURROGATES))
def test_surrogate_gradient_matches_formula(name):
    slope = 10.0
    x = torch.tensor([-0.3, -0.05, 0.0, 0.05, 0.3], requires_grad=True)
    out = spike(x, name, slope)
    assert out.tolist() == [0, 0, 1, 1, 1]
    out.sum().backward()
    expected = {
        "fast_sigmoid": lambda v: 1 / (slope * abs(v) + 1) ** 2,
        "sigmoid": lambda v: slope * math.exp(-slope * v) / (1 + math.exp(-slope * v)) ** 2,
        "atan": lambda v: (slope / 2) / (1 + (math.pi / 2 * slope * v) ** 2),
    }[name]
    assert x.grad.tolist() == pytest.approx([expected(v) for v in x.detach().tolist()], rel=1e-5)
    assert x.grad[2].item() == pytest.approx({"fast_sigmoid": 1.0, "sigmoid": 2.5,
                                              "atan": 5.0}[name])


@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_lif_step_exports_to_qonnx_bit_exact(tmp_path, reset):
    """The spike ({0,1} via BipolarQuant) and the membrane grid (Quant) survive QONNX export."""
    from brevitas.export import export_qonnx
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.util.cleanup import cleanup_model

    class Step(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lif = LIF(ModelSpec(state_bits=8, reset=reset))

        def forward(self, current, membrane):
            return self.lif.step(current, membrane)

    step = Step()
    path = tmp_path / "step.onnx"
    with torch.no_grad():
        export_qonnx(step, args=(torch.randn(4, 16), torch.zeros(4, 16)),
                     export_path=str(path), dynamo=False)
    graph = cleanup_model(ModelWrapper(str(path)))
    ops = {node.op_type for node in graph.graph.node}
    assert {"BipolarQuant", "Quant"} <= ops
    names_in = [i.name for i in graph.graph.input]
    names_out = [o.name for o in graph.graph.output]
    gen = torch.Generator().manual_seed(0)
    torch_membrane, onnx_membrane = torch.zeros(4, 16), np.zeros((4, 16), np.float32)
    fired = 0
    for _ in range(6):
        current = torch.randn(4, 16, generator=gen)
        torch_spikes, torch_membrane = step(current, torch_membrane)
        out = execute_onnx(graph, {names_in[0]: current.numpy(), names_in[1]: onnx_membrane})
        onnx_spikes, onnx_membrane = out[names_out[0]], out[names_out[1]]
        np.testing.assert_array_equal(onnx_spikes, torch_spikes.numpy())
        np.testing.assert_array_equal(onnx_membrane, torch_membrane.numpy())
        fired += int(torch_spikes.sum())
    assert fired > 0


@pytest.mark.parametrize("surrogate", sorted(SURROGATES))
@pytest.mark.parametrize("reset", ["subtract", "zero"])
@pytest.mark.parametrize("state_bits", [8, 32])
@pytest.mark.parametrize("held", [False, True])
def test_fused_sequence_matches_autograd_through_steps(monkeypatch, surrogate, reset,
                                                       state_bits, held):
    """LIF.forward (fused kernel, hand-written BPTT, cache blocks; a sequence of currents or
    one held current) = autograd through T calls of LIF.step: identical spikes and membranes,
    gradients equal up to float rounding."""
    monkeypatch.setattr("model.lif.CACHE_BLOCK_BYTES", 3 * 80 * 4)  # blocks of 3 images
    lif = LIF(ModelSpec(state_bits=state_bits, reset=reset, surrogate=surrogate,
                        surrogate_slope=4.0))
    steps, gen = 7, torch.Generator().manual_seed(0)
    shape = (8, 4, 5, 4) if held else (steps, 8, 4, 5, 4)
    currents = 0.4 * torch.randn(*shape, generator=gen)
    initial = torch.rand(8, 4, 5, 4, generator=gen) - 0.5
    grad_spikes = torch.randn(steps, 8, 4, 5, 4, generator=gen)
    grad_final = torch.randn(8, 4, 5, 4, generator=gen)
    options = {"steps": steps} if held else {}

    def reference(x, membrane):
        spikes = []
        for current in (x.expand(steps, *x.shape) if held else x):
            s, membrane = lif.step(current, membrane)
            spikes.append(s)
        return torch.stack(spikes), membrane

    def run(fn):
        x, v0 = currents.clone().requires_grad_(), initial.clone().requires_grad_()
        spikes, final = fn(x, v0)
        torch.autograd.backward([spikes, final], [grad_spikes, grad_final])
        return spikes.detach(), final.detach(), x.grad, v0.grad

    fused = run(lambda x, v0: lif(x, v0, **options))
    expected = run(reference)
    assert 0 < fused[0].mean() < 1
    assert torch.equal(fused[0], expected[0]) and torch.equal(fused[1], expected[1])
    with torch.no_grad():
        assert torch.equal(lif(currents, initial, **options)[0], expected[0])  # inference
    for ours, theirs in zip(fused[2:], expected[2:], strict=True):
        torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-6)

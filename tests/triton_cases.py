"""The Triton LIF kernels (model.lif_triton) on a CPU, under Triton's interpreter: forward
bit-identical to the torch path and to LIF.step, gradients equal to autograd through LIF.step
up to float rounding.

Not collected by a plain `pytest tests` (the name does not start with test_): TRITON_INTERPRET
must be set before the kernels are defined, so tests/test_lif_triton.py runs this file in a
fresh pytest process with TRITON_INTERPRET=1 and QSNN_LIF_KERNEL=triton (every LIF there runs
the Triton kernels). The helpers serve the CUDA test in test_lif_triton.py too.
"""
import os

import pytest
import torch

import model.lif
from model.lif import LIF, held
from model.spec import ModelSpec
from model.surrogate import SURROGATES

INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1" and model.lif.KERNEL == "triton"
STEPS, SHAPE = 6, (3, 5, 7)  # 105 neurons per step: 4 programs of 32, the last one partial


@pytest.fixture(autouse=True)
def interpreter_only(request):
    """The cases need the interpreter process (the helpers do not)."""
    if request.node.module.__name__.endswith("triton_cases") and not INTERPRETED:
        raise RuntimeError("run through tests/test_lif_triton.py (TRITON_INTERPRET=1, "
                           "QSNN_LIF_KERNEL=triton)")


@pytest.fixture
def small_blocks(monkeypatch):
    monkeypatch.setattr("model.lif_triton.BLOCK", 32)


def torch_path(fn, *args):
    """fn(*args) with the torch kernels of model.lif (the interpreter process forces Triton)."""
    previous, model.lif.KERNEL = model.lif.KERNEL, "auto"
    try:
        return fn(*args)
    finally:
        model.lif.KERNEL = previous


def through_steps(lif: LIF, currents, membrane, steps=None):
    """The definition: autograd through T calls of LIF.step -> (spikes [T, ...], V'[T])."""
    spikes = []
    for current in held(currents, steps):
        s, membrane = lif.step(current, membrane)
        spikes.append(s)
    return torch.stack(spikes), membrane


def inputs(state_bits, steps, gen, shape=SHAPE, scale=1.2):
    """(currents [T, ...], or [...] held for `steps`; V'[0]). Scale 1.2 saturates an 8-bit
    membrane now and then; on a grid every other current lies on it, so beta 0.5 gives ties
    for round-half-to-even."""
    currents = scale * torch.randn(*((() if steps else (STEPS,)) + shape), generator=gen)
    step = ModelSpec(state_bits=state_bits).state_step
    if step:
        currents[..., ::2] = torch.round(currents[..., ::2] / step) * step
    return currents, torch.rand(*shape, generator=gen) - 0.5


def gradients(fn, currents, initial, grad_spikes, grad_final, device="cpu"):
    """(spikes, V'[T], dL/dI, dL/dV'[0]) of (spikes, V'[T]) = fn(I, V'[0]) on `device`, for
    dL/dspikes = grad_spikes and dL/dV'[T] = grad_final; returned on the CPU."""
    x = currents.to(device).requires_grad_()
    v0 = initial.to(device).requires_grad_()
    spikes, final = fn(x, v0)
    torch.autograd.backward([spikes, final], [grad_spikes.to(device), grad_final.to(device)])
    return spikes.detach().cpu(), final.detach().cpu(), x.grad.cpu(), v0.grad.cpu()


def assert_same(fused, expected):
    """Spikes and V'[T] identical, gradients equal up to float rounding (as in test_lif.py)."""
    assert 0 < fused[0].mean() < 1
    assert torch.equal(fused[0], expected[0]) and torch.equal(fused[1], expected[1])
    for ours, theirs in zip(fused[2:], expected[2:], strict=True):
        torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-6)


@pytest.mark.usefixtures("small_blocks")
@pytest.mark.parametrize("beta", [0.5, 0.9])
@pytest.mark.parametrize("reset", ["subtract", "zero"])
@pytest.mark.parametrize("state_bits", [8, 16, 32])
@pytest.mark.parametrize("steps", [None, STEPS])
def test_forward_is_bit_identical(beta, reset, state_bits, steps):
    """Spikes, charged membranes V[1..T] and V'[T]: Triton == torch kernels == LIF.step,
    exactly, for fixed-point and float membranes (beta 0.9: beta V' is rounded)."""
    lif = LIF(ModelSpec(state_bits=state_bits, reset=reset, beta=beta))
    currents, initial = inputs(state_bits, steps, torch.Generator().manual_seed(1))
    ours = lif.integrate(held(currents, steps), initial)
    theirs = torch_path(lif.integrate, held(currents, steps), initial)
    for a, b in zip(ours, theirs, strict=True):
        assert torch.equal(a, b)
    spikes, final = through_steps(lif, currents, initial, steps)
    assert torch.equal(ours[0], spikes) and torch.equal(ours[2], final)
    assert 0 < spikes.mean() < 1
    if state_bits == 8:
        assert ours[1].abs().amax() >= 2.0 - lif.state_step  # the grid saturated


@pytest.mark.usefixtures("small_blocks")
@pytest.mark.parametrize("surrogate", sorted(SURROGATES))
@pytest.mark.parametrize("reset", ["subtract", "zero"])
@pytest.mark.parametrize("state_bits", [8, 32])
@pytest.mark.parametrize("steps", [None, STEPS])
def test_gradients_match_autograd_through_steps(surrogate, reset, state_bits, steps):
    """LIF.forward (Triton forward and backward) = autograd through LIF.step: identical spikes
    and V'[T], gradients of the currents (summed over t if held) and of V'[0] close."""
    lif = LIF(ModelSpec(state_bits=state_bits, reset=reset, surrogate=surrogate,
                        surrogate_slope=4.0))
    gen = torch.Generator().manual_seed(0)
    currents, initial = inputs(state_bits, steps, gen, scale=0.4)
    grads = torch.randn(STEPS, *SHAPE, generator=gen), torch.randn(*SHAPE, generator=gen)
    fused = gradients(lambda x, v0: lif(x, v0, steps=steps), currents, initial, *grads)
    expected = gradients(lambda x, v0: through_steps(lif, x, v0, steps), currents, initial,
                         *grads)
    assert_same(fused, expected)


@pytest.mark.usefixtures("small_blocks")
def test_channels_last_steps_keep_their_layout():
    """Channels-last feature maps (as the network feeds them) with a contiguous membrane: the
    same values, gradients included, and spikes and charged membranes in the torch path's
    layout (V'[T] takes the steps' layout, the torch path the membrane's)."""
    lif = LIF(ModelSpec(state_bits=8, surrogate_slope=4.0))
    gen = torch.Generator().manual_seed(2)
    currents = torch.randn(STEPS, 2, 3, 5, 7, generator=gen)  # [T, B, H, W, C]
    currents = currents.permute(0, 1, 4, 2, 3)  # [T, B, C, H, W], each step channels-last
    initial = torch.rand(2, 7, 3, 5, generator=gen) - 0.5
    ours = lif.integrate(currents, initial)
    theirs = torch_path(lif.integrate, currents, initial)
    for a, b in zip(ours, theirs, strict=True):
        assert torch.equal(a, b)
    assert ours[0].stride() == theirs[0].stride() and ours[1].stride() == theirs[1].stride()
    assert ours[0][0].is_contiguous(memory_format=torch.channels_last)
    grads = torch.randn(STEPS, 2, 7, 3, 5, generator=gen), torch.randn(2, 7, 3, 5, generator=gen)
    assert_same(gradients(lif, currents, initial, *grads),
                torch_path(gradients, lif, currents, initial, *grads))

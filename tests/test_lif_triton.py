"""The Triton LIF kernels (model.lif_triton): the interpreter cases of tests/triton_cases.py run
on the CPU in a fresh process (TRITON_INTERPRET must be set before the kernels are defined),
and the compiled kernels against the CPU path where a CUDA GPU is present.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from model.lif import LIF, held
from model.spec import ModelSpec
from tests.triton_cases import STEPS, assert_same, gradients, inputs, through_steps

ROOT = Path(__file__).resolve().parents[1]
CASES = Path(__file__).with_name("triton_cases.py")


def test_kernels_under_the_interpreter():
    pytest.importorskip("triton")
    env = {**os.environ, "TRITON_INTERPRET": "1", "QSNN_LIF_KERNEL": "triton",
           "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(CASES)]
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout and "skipped" not in proc.stdout, proc.stdout[-2000:]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("reset", ["subtract", "zero"])
@pytest.mark.parametrize("state_bits", [8, 16, 32])
@pytest.mark.parametrize("steps", [None, STEPS])
def test_compiled_kernels_on_cuda(state_bits, reset, steps):
    """CUDA tensors take the compiled kernels: forward bit-identical to the torch CPU path (beta
    0.9: an FMA for beta V' + I would change V[t] of about one neuron in six), gradients equal
    to autograd through LIF.step on the CPU up to float rounding."""
    pytest.importorskip("triton")
    lif = LIF(ModelSpec(state_bits=state_bits, reset=reset, beta=0.9, surrogate="atan",
                        surrogate_slope=4.0))
    gen, shape = torch.Generator().manual_seed(3), (3, 37, 29)  # 4 programs of 1024
    currents, initial = inputs(state_bits, steps, gen, shape=shape)
    ours = lif.integrate(held(currents.cuda(), steps), initial.cuda())
    theirs = lif.integrate(held(currents, steps), initial)
    for a, b in zip(ours, theirs, strict=True):
        assert torch.equal(a.cpu(), b)
    grads = torch.randn(STEPS, *shape, generator=gen), torch.randn(*shape, generator=gen)
    assert_same(gradients(lambda x, v0: lif(x, v0, steps=steps), currents, initial, *grads,
                          device="cuda"),
                gradients(lambda x, v0: through_steps(lif, x, v0, steps), currents, initial,
                          *grads))

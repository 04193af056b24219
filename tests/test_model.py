"""Model spec validation, quantizers, network shapes and checkpoint round trips."""
import brevitas.nn as qnn
import pytest
import torch

from common.errors import UserError
from model.layers import Pool
from model.network import QuantCNN, SpikingCNN, build_model
from model.quantizers import pixels, weight_quant_kwargs
from model.spec import ModelSpec
from model.timesteps import input_frames, run_timesteps
from quant_training.checkpoint import load_model, save_checkpoint

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA GPU"))]


@pytest.mark.parametrize("field, value, words", [
    ("weight_bits", 3, "weight_bits=3 is not supported; allowed: 2, 4, 8, 32"),
    ("timesteps", 0, "timesteps=0 must be an integer >= 1"),
    ("state_bits", 5, "state_bits=5 is not supported"),
    ("reset", "soft", "reset='soft' is not supported; allowed: subtract, zero"),
    ("encoding", "latency", "encoding='latency'"),
    ("beta", 1.5, "beta=1.5 must lie in [0.0, 1.0]"),
    ("threshold", 0.3, "threshold=0.3 must be a multiple of the membrane step"),
])
def test_spec_rejects_bad_values_in_one_line(field, value, words):
    with pytest.raises(UserError) as err:
        ModelSpec(**{field: value})
    assert words in str(err.value) and "\n" not in str(err.value)


def test_spec_rejects_unknown_key_and_ann_with_timesteps():
    with pytest.raises(UserError, match=r"unknown model spec key\(s\) \['colour'\]"):
        ModelSpec.from_dict({"colour": "red"})
    with pytest.raises(UserError, match="timesteps=10 is not allowed for kind='ann'"):
        ModelSpec(kind="ann", timesteps=10)


@pytest.mark.parametrize("layers, words", [
    ("conv8,poo,fc16", "'poo' (token 2) is not a layer"),
    ("conv8,relu,fc16", "'relu' (token 2) is not a layer"),
    ("conv1,pool,pool", "'pool' (token 3) must directly follow a conv"),
    ("conv4,pool,conv4,pool,conv4,pool,conv4,pool,conv4,pool",  # 28 -> 14 -> 7 -> 3 -> 1
     "'pool' (token 10) would shrink the 1x1 map below 1x1"),
    ("fc16,conv8", "'fc16' (token 1) cannot come first"),
    ("conv8,fc16,conv8", "'conv8' (token 3) follows a fully connected layer"),
    ("conv0,pool", "'conv0' (token 1) has 0 channels"),
    ("conv8,fc0", "'fc0' (token 2) has 0 features"),
    ("", "layers='' is empty"),
])
def test_bad_layer_lists_are_refused_in_one_line_naming_the_token(layers, words):
    with pytest.raises(UserError) as err:
        ModelSpec(layers=layers)
    message = str(err.value)
    assert words in message and "allowed: conv<channels>" in message and "\n" not in message


def test_old_spec_dict_opens_as_the_seed_layer_list():
    old = {**ModelSpec().to_dict(), "conv_channels": [8, 16], "hidden": 64}
    del old["layers"]
    spec = ModelSpec.from_dict(old)
    assert spec.layers == ("conv8", "pool", "conv16", "pool", "fc64")
    assert ModelSpec.from_dict({"conv_channels": [32, 64], "hidden": 256}) == ModelSpec()
    model = build_model(spec)
    assert [stage.name for stage in model.stages()] == ["conv1", "conv2", "fc1", "fc2"]
    assert model.fc1.in_features == 16 * 7 * 7


def test_layer_list_from_the_command_line():
    from quant_training.train import parse_args, spec_from_args

    spec = spec_from_args(parse_args(["--layers", "conv16,conv16,pool,fc32"]))
    assert spec.layers == ("conv16", "conv16", "pool", "fc32")
    assert spec_from_args(parse_args([])).layers == ("conv32", "pool", "conv64", "pool", "fc256")


def test_spec_round_trips_through_dict():
    spec = ModelSpec(timesteps=3, weight_bits=4, reset="zero", layers="conv8,pool,conv16,fc64")
    assert ModelSpec.from_dict(spec.to_dict()) == spec


@pytest.mark.parametrize("bits", [2, 4, 8])
@pytest.mark.parametrize("rule", ["max", "mse"])
def test_quantized_weights_take_at_most_2_to_the_bits_values(bits, rule):
    model = build_model(ModelSpec(weight_bits=bits, weight_scale=rule, timesteps=1))
    for layer in (model.conv1, model.conv2, model.fc1, model.fc2):
        values = torch.unique(layer.quant_weight().value)
        assert 2 < len(values) <= 2**bits
        scale = layer.quant_weight().scale
        assert torch.log2(scale).round() == torch.log2(scale)  # fixed point: a power of two
        ints = values / scale
        assert torch.equal(ints, ints.round())


def fc_with(weights: list[float], rule: str):
    """The 4-bit quantized weights of a QuantLinear (one output) holding `weights`."""
    layer = qnn.QuantLinear(len(weights), 1, bias=False, **weight_quant_kwargs(4, rule))
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([weights]))
        return layer.quant_weight()


def test_least_squares_scale_by_hand():
    """4 bits: levels -7..7. One weight 1.0 and 999 of 0.05; squared rounding error by hand:
    s = 1/4 (nothing saturates): 999 x 0.05^2 = 2.50 (0.05 -> 0); s = 1/8 (Brevitas' max rule,
    2^0 / 8): 2.50 + (1 - 7/8)^2 = 2.51; s = 1/16: 999 x 0.0125^2 + (1 - 7/16)^2 = 0.47;
    s = 1/32: 999 x 0.0125^2 + (1 - 7/32)^2 = 0.77. So mse takes 1/16, max 1/8."""
    weights = [1.0] + [0.05] * 999
    assert float(fc_with(weights, "max").scale) == 1 / 8
    quant = fc_with(weights, "mse")
    assert float(quant.scale) == 1 / 16
    assert quant.int().flatten()[:3].tolist() == [7, 1, 1]  # 1.0 saturates at 7/16
    # an identity (max |w| = 1 = 2^0): max saturates 1 at 7/8; mse keeps it exact at 4 x 1/4
    assert float(fc_with([1.0, 0.0, 0.0], "max").value.max()) == 7 / 8
    exact = fc_with([1.0, 0.0, 0.0], "mse")
    assert float(exact.scale) == 1 / 4 and float(exact.value.max()) == 1.0


def test_float_weights_at_32_bits_and_lossless_input_quantizer():
    model = build_model(ModelSpec(weight_bits=32, timesteps=1))
    assert not model.conv1.weight_quant.is_quant_enabled
    assert torch.equal(model.conv1.quant_weight(), model.conv1.weight)
    images = pixels(torch.arange(256, dtype=torch.uint8).reshape(1, 1, 16, 16))
    assert torch.equal(model.input_quant(images), images)


def test_networks_produce_logits_for_each_variant():
    images = torch.rand(3, 1, 28, 28)
    for spec in (ModelSpec(timesteps=2), ModelSpec(timesteps=2, encoding="rate", reset="zero"),
                 ModelSpec(timesteps=2, pool="before_neuron", readout="sum"),
                 ModelSpec(kind="ann", timesteps=1, weight_bits=4)):
        model = build_model(spec)
        assert isinstance(model, SpikingCNN if spec.kind == "snn" else QuantCNN)
        assert model(images).shape == (3, 10)


def test_direct_encoding_computes_conv1_once_per_image():
    model = build_model(ModelSpec(timesteps=5))
    calls = []
    model.conv1.register_forward_hook(lambda *_: calls.append(1))
    model(torch.rand(2, 1, 28, 28))
    assert len(calls) == 1


def stepwise_reference(model: SpikingCNN, images: torch.Tensor) -> torch.Tensor:
    """The network as its definition reads: T calls of `step` (autograd through every
    operation), rate frames drawn as forward draws them (same RNG state)."""
    def step(frame, membranes):
        logits, membranes, _ = model.step(model.conv1(frame), membranes)
        return logits, membranes

    frames = input_frames(model.spec, model.input_quant(images))
    return run_timesteps(step, frames, [None] * len(model.neurons()), model.spec)[0]


@pytest.mark.parametrize("spec", [
    ModelSpec(timesteps=4, dropout=0.0),
    ModelSpec(timesteps=2, dropout=0.0, weight_bits=4, layers="conv4,conv4,pool,conv8,fc8,fc8"),
    ModelSpec(timesteps=2, dropout=0.0, pool="before_neuron", layers="conv4,pool,conv4,pool"),
    ModelSpec(timesteps=3, dropout=0.0, weight_bits=4, reset="zero", pool="before_neuron",
              readout="sum"),
    ModelSpec(timesteps=3, dropout=0.0, encoding="rate", surrogate="atan"),
    ModelSpec(timesteps=4, dropout=0.0, weight_bits=32, state_bits=32),
    ModelSpec(timesteps=2, dropout=0.0, weight_bits=4,
              layers="conv6k5p0,avgpool2,conv16k5p0,avgpool2,fc120,fc84"),
    ModelSpec(timesteps=2, dropout=0.0, weight_bits=4, layers="conv8s2,conv16s2,fc32"),
    ModelSpec(timesteps=2, dropout=0.0, weight_bits=4, in_channels=3, image_size=32,
              layers="conv8,conv8,maxpool2,conv16k5s2p2,maxpool3,fc32"),
])
@pytest.mark.parametrize("device", DEVICES)
def test_layer_by_layer_forward_equals_step_by_step_reference(spec, device):
    """forward (stateless layers on [T*B] stacks, fused LIF kernels, channels-last) computes
    what the step-by-step definition computes: identical logits where weights and membranes are
    fixed point (integer sums are exact in any order); float logits to float32 rounding (the
    [T*B] convolutions sum in another order than the per-step ones, and that order differs
    between CPUs, e.g. AVX-512 Intel vs AMD); gradients to float rounding."""
    torch.manual_seed(0)
    model = build_model(spec).to(device)
    shape = (spec.in_channels, spec.image_size, spec.image_size)
    images = pixels(torch.randint(0, 256, (6, *shape), dtype=torch.uint8)).to(device)
    results = []
    for run in (model, lambda x: stepwise_reference(model, x)):
        model.zero_grad()
        torch.manual_seed(1)
        logits = run(images)
        logits.square().sum().backward()
        results.append((logits.detach(), [p.grad.clone() for p in model.parameters()]))
    (fast, fast_grads), (reference, reference_grads) = results
    same_logits = torch.equal if fixed_point(spec) else float_logits_close
    assert same_logits(fast, reference)
    for ours, theirs in zip(fast_grads, reference_grads, strict=True):
        torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5 * theirs.abs().max())
    with torch.no_grad():
        torch.manual_seed(1)
        assert same_logits(model(images), reference)


def fixed_point(spec: ModelSpec) -> bool:
    return spec.weight_bits < 32 and spec.state_bits < 32


def float_logits_close(ours: torch.Tensor, theirs: torch.Tensor) -> bool:
    """float32 logits agree to 1e-5 relative (a few ulps of summation-order rounding over
    ~1e3-term sums); a spike flipped by rounding at the threshold would exceed it."""
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5 * theirs.abs().max())
    return True


@pytest.mark.parametrize("spec", [ModelSpec(timesteps=2, weight_bits=4),
                                  ModelSpec(kind="ann", timesteps=1, weight_bits=4)])
def test_checkpoint_round_trip_rebuilds_identical_network(tmp_path, spec):
    torch.manual_seed(0)
    model = build_model(spec)
    model.train()
    model(torch.rand(8, 1, 28, 28))  # let runtime-statistics quantizers (QuantReLU) initialise
    model.eval()
    images = torch.rand(4, 1, 28, 28)
    expected = model(images)
    save_checkpoint(tmp_path / "best.pt", spec, model, epoch=1)
    loaded, loaded_spec, payload = load_model(tmp_path / "best.pt")
    assert loaded_spec == spec and payload["epoch"] == 1
    assert torch.equal(loaded(images), expected)


def test_corrupt_and_missing_checkpoints_give_one_line_errors(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_model(tmp_path / "nothing.pt")
    truncated = tmp_path / "truncated.pt"
    spec = ModelSpec(timesteps=1)
    save_checkpoint(truncated, spec, build_model(spec))
    truncated.write_bytes(truncated.read_bytes()[:5000])
    with pytest.raises(UserError, match="corrupt or not loadable safely") as err:
        load_model(truncated)
    assert "\n" not in str(err.value)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(UserError, match="is not a qsnn-checkpoint/1 file"):
        load_model(foreign)


class _Exploit:
    def __reduce__(self):
        return (exec, ("import pathlib; pathlib.Path(__import__('os').environ['PWNED']).touch()",))


def test_checkpoint_with_code_is_refused_without_running_it(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    monkeypatch.setenv("PWNED", str(marker))
    evil = tmp_path / "evil.pt"
    torch.save({"format": "qsnn-checkpoint/1", "payload": _Exploit()}, evil)
    with pytest.raises(UserError, match="corrupt or not loadable safely"):
        load_model(evil)
    assert not marker.exists()


@pytest.mark.parametrize("layers, words", [
    ("conv8k0", "'conv8k0' (token 1) has 0 kernel"),
    ("conv8s0", "'conv8s0' (token 1) has 0 stride"),
    ("conv8k3p3", "'conv8k3p3' (token 1) pads 3 >= its kernel 3"),
    ("conv8k29p0", "'conv8k29p0' (token 1) does not fit the 28x28 map"),
    ("conv8,maxpool1", "'maxpool1' (token 2) has a 1x1 window"),
    ("conv8s4,avgpool8", "'avgpool8' (token 2) would shrink the 7x7 map below 1x1"),
    ("conv8,avgpool2,maxpool2", "'maxpool2' (token 3) must directly follow a conv"),
    ("conv8,minpool2", "'minpool2' (token 2) is not a layer"),
])
def test_bad_geometry_is_refused_in_one_line_naming_the_token(layers, words):
    with pytest.raises(UserError) as err:
        ModelSpec(layers=layers)
    assert words in str(err.value) and "\n" not in str(err.value)


def test_lowered_geometry_by_hand():
    """H_out = floor((H + 2p - k) / s) + 1 for a conv, floor(H / k) for a pool."""
    lenet = ModelSpec(layers="conv6k5p0,avgpool2,conv16k5p0,avgpool2,fc120,fc84").weight_layers
    assert [(layer.name, layer.input_shape, layer.synapse_shape, layer.output_shape)
            for layer in lenet] == [
        ("conv1", (1, 28, 28), (6, 24, 24), (6, 12, 12)),  # (28 - 5) + 1 = 24, / 2
        ("conv2", (6, 12, 12), (16, 8, 8), (16, 4, 4)),  # (12 - 5) + 1 = 8, / 2
        ("fc1", (16, 4, 4), (120,), (120,)), ("fc2", (120,), (84,), (84,)),
        ("fc3", (84,), (10,), (10,))]
    # conv1: pixels; conv2 and fc1: spike counts / 4 after an average pool; then spikes
    assert [layer.binary_input for layer in lenet] == [False, False, False, True, True]
    assert [layer.computed_once for layer in lenet] == [True, False, False, False, False]
    assert (lenet[0].kernel, lenet[0].stride, lenet[0].padding) == (5, 1, 0)
    assert lenet[0].pool.kind == "avg" and lenet[0].pool.size == 2
    strided = ModelSpec(layers="conv32s2,conv64s2,fc128").weight_layers
    # (28 + 2 - 3) // 2 + 1 = 14, (14 + 2 - 3) // 2 + 1 = 7
    assert [layer.synapse_shape for layer in strided] == [(32, 14, 14), (64, 7, 7), (128,),
                                                          (10,)]
    assert strided[0].padding == 1 and strided[1].binary_input
    vgg = ModelSpec(in_channels=3, image_size=32,
                    layers="conv64,conv64,maxpool2,conv128,maxpool2,fc256").weight_layers
    assert [layer.output_shape for layer in vgg] == [(64, 32, 32), (64, 16, 16),
                                                     (128, 8, 8), (256,), (10,)]
    seed = ModelSpec().weight_layers
    assert [(layer.kernel, layer.stride, layer.padding, layer.pool) for layer in seed[:2]] == [
        (3, 1, 1, Pool("max", 2))] * 2
    # an average pool of spikes feeds spike counts / k^2; before the neuron it pools currents
    before = ModelSpec(pool="before_neuron", layers="conv8,avgpool2,conv8").weight_layers
    assert before[1].binary_input


"""Property-based tests of the cost models on generated workloads (hypothesis)."""
import numpy as np
from hand_profiles import conv_layer, linear_layer, profile, step
from hypothesis import given, settings
from hypothesis import strategies as st

from hw_model import digital, fpga, imc, loihi
from hw_model.targets import load_target_table
from hw_model.workload import from_profile

TABLES = {name: load_target_table(name) for name in ("digital", "imc", "fpga", "loihi")}
counts = st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False)


@st.composite
def workloads(draw):
    t = draw(st.integers(1, 4))
    conv = conv_layer(c_in=draw(st.sampled_from([1, 8, 32])), c_out=draw(st.sampled_from([8, 64])),
                      size=draw(st.sampled_from([4, 8])),
                      weight_bits=draw(st.sampled_from([2, 4, 8])),
                      state_bits=draw(st.sampled_from([4, 8, 16])))
    fc = linear_layer(f_in=draw(st.sampled_from([16, 100])), f_out=draw(st.sampled_from([10, 32])))
    steps = [[step(**{k: draw(counts) for k in ("input_events", "synops", "output_events",
                                                 "neuron_updates", "weight_reads",
                                                 "potential_reads", "potential_writes")})
              for _ in range(t)] for _ in range(2)]
    return profile([conv, fc], steps)


CONFIGS = {"digital": digital.Config(64, 16, 400.0), "imc": imc.Config(128, 6, "event", 250.0),
           "fpga": fpga.Config("xczu7ev", 200.0, 1000.0), "loihi": loihi.Config(2.0)}
MODULES = {"digital": digital, "imc": imc, "fpga": fpga, "loihi": loihi}


@settings(max_examples=40, deadline=None)
@given(workloads())
def test_no_negative_energy_area_or_latency(p):
    w = from_profile(p)
    for name, module in MODULES.items():
        costs = module.evaluate(w, CONFIGS[name], TABLES[name])
        assert (costs.total_energy_pj >= 0).all() and np.isfinite(costs.total_energy_pj).all()
        assert (costs.latency_ns >= 0).all() and costs.inference_latency_ns >= 0
        assert not (costs.area_mm2 < 0).any() and costs.shared_area_mm2 >= 0


@settings(max_examples=40, deadline=None)
@given(workloads(), st.floats(min_value=1.0, max_value=1e5))
def test_energy_never_decreases_when_synaptic_operations_increase(p, extra):
    more = profile([{k: v for k, v in layer.items() if k not in ("per_timestep", "totals")}
                    for layer in p["layers"]],
                   [[{**s, "synops": s["synops"] + extra, "weight_reads": s["weight_reads"] + extra}
                     for s in layer["per_timestep"]] for layer in p["layers"]])
    for name in ("digital", "imc", "loihi"):
        base = MODULES[name].evaluate(from_profile(p), CONFIGS[name], TABLES[name])
        busier = MODULES[name].evaluate(from_profile(more), CONFIGS[name], TABLES[name])
        assert busier.total_energy_pj.sum() >= base.total_energy_pj.sum()

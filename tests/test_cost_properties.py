"""Property-based tests of the cost models on generated workloads (hypothesis)."""
import itertools
from dataclasses import replace

import numpy as np
import pytest
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
    pool = draw(st.sampled_from([None, "after_neuron", "before_neuron"]))
    conv = conv_layer(c_in=draw(st.sampled_from([1, 8, 32])), c_out=draw(st.sampled_from([8, 64])),
                      size=draw(st.sampled_from([4, 8])),
                      weight_bits=draw(st.sampled_from([2, 4, 8])),
                      state_bits=draw(st.sampled_from([4, 8, 16])), pool=pool,
                      pool_kind=pool and draw(st.sampled_from(["max", "avg"])),
                      pool_size=pool and 2)
    fc = linear_layer(f_in=draw(st.sampled_from([16, 100])), f_out=draw(st.sampled_from([10, 32])))
    steps = [[step(**{k: draw(counts) for k in ("input_events", "synops", "output_events",
                                                 "neuron_updates", "weight_reads",
                                                 "potential_reads", "potential_writes",
                                                 "pool_ops", "pool_events")})
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


@pytest.mark.parametrize("counts", [("synops", "weight_reads"), ("pool_ops", "pool_events")])
@settings(max_examples=40, deadline=None)
@given(workloads(), st.floats(min_value=1.0, max_value=1e5))
def test_energy_never_decreases_when_operations_increase(counts, p, extra):
    """More synaptic operations (and their weight reads), or more pool operations."""
    more = profile([{k: v for k, v in layer.items() if k not in ("per_timestep", "totals")}
                    for layer in p["layers"]],
                   [[{**s, **{key: s[key] + extra for key in counts}}
                     for s in layer["per_timestep"]] for layer in p["layers"]])
    for name in ("digital", "imc", "loihi"):
        base = MODULES[name].evaluate(from_profile(p), CONFIGS[name], TABLES[name])
        busier = MODULES[name].evaluate(from_profile(more), CONFIGS[name], TABLES[name])
        assert busier.total_energy_pj.sum() >= base.total_energy_pj.sum()


def _fits(costs, part):
    budget = fpga.budget(TABLES["fpga"], part)
    return all(costs.resources[r].sum() <= budget[r] for r in budget)


options = st.lists(st.tuples(st.floats(0, 100), st.integers(0, 20), st.integers(0, 20)),
                   min_size=1, max_size=4)


@settings(max_examples=100, deadline=None)
@given(st.lists(options, min_size=1, max_size=4), st.integers(0, 60), st.integers(0, 60))
def test_least_energy_choice_is_the_least_energy_combination_that_fits(layers, luts, brams):
    """Against every combination (itertools.product), on small random option sets."""
    energy = [np.array([e for e, _, _ in layer]) for layer in layers]
    resources = [[(lut, bram) for _, lut, bram in layer] for layer in layers]
    fitting = [sum(float(energy[i][j]) for i, j in enumerate(picks))
               for picks in itertools.product(*(range(len(layer)) for layer in layers))
               if sum(resources[i][j][0] for i, j in enumerate(picks)) <= luts
               and sum(resources[i][j][1] for i, j in enumerate(picks)) <= brams]
    picks = fpga.least_energy_choice(energy, resources, (luts, brams))
    if not fitting:
        assert picks is None
    else:
        assert picks is not None
        assert sum(float(energy[i][j]) for i, j in enumerate(picks)) == pytest.approx(
            min(fitting))


@settings(max_examples=25, deadline=None)
@given(workloads())
def test_least_energy_folding_never_costs_more_than_finns_when_finns_fits(p):
    w = from_profile(p)
    config = CONFIGS["fpga"]
    finn = fpga.evaluate(w, replace(config, folding="finn"), TABLES["fpga"])
    least = fpga.evaluate(w, config, TABLES["fpga"])
    if _fits(finn, config.part):
        assert _fits(least, config.part)
        assert least.total_energy_pj.sum() <= finn.total_energy_pj.sum() * (1 + 1e-12)


@settings(max_examples=25, deadline=None)
@given(workloads())
def test_fpga_energy_never_rises_as_t_falls_where_the_design_fits(p):
    """The same layers at T and T + 1 (the FPGA model reads the shapes, not the counts)."""
    layers = [{k: v for k, v in layer.items() if k not in ("per_timestep", "totals")}
              for layer in p["layers"]]
    t = p["timesteps"]
    config = CONFIGS["fpga"]
    at = {n: fpga.evaluate(from_profile(profile(layers, [[step()] * n for _ in layers])),
                           config, TABLES["fpga"]) for n in (t, t + 1)}
    if _fits(at[t + 1], config.part):
        assert at[t].total_energy_pj.sum() <= at[t + 1].total_energy_pj.sum() * (1 + 1e-12)

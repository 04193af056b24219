"""Benchmarks (`make bench`): training and inference speed against snnTorch and SpikingJelly,
and inference of the exported step graph. Results go to reports/bench/."""

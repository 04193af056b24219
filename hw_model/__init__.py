"""Analytic cost models (digital, IMC, FPGA) over workload profiles; numpy and pandas only."""

"""The FPGA design as RTL: the project's SystemVerilog layers (hdl/), FINN's RTL layers,
simulation on Verilator through FINN's rtlsim driver, and yosys synthesis."""

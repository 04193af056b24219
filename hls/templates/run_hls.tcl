# Vitis HLS: C simulation, synthesis and IP export of the generated design.
# Needs AMD Vitis HLS (not available in this project's CI):  vitis_hls -f run_hls.tcl
# PART and CLOCK_NS are filled in by `make hls` from FPGA_PART and CLK_NS.
open_project -reset snn_hls
set_top snn_infer
add_files snn.cpp
add_files -tb tb.cpp -tb frames.bin
open_solution -reset solution1 -flow_target vivado
set_part {PART}
create_clock -period {CLOCK_NS}
csim_design -argv "frames.bin csim_out.bin"
csynth_design
export_design -format ip_catalog
exit

// Max pool on spikes: on {0, 1} a max over a window is an OR. The input is FINN's depthwise
// sliding window (ConvolutionInputGenerator, depthwise = 1): per output pixel and channel fold,
// the K kernel positions of PE channels as K consecutive words (finn-hlslib's Pool_batch reads
// it so). Each run of K words is ORed lane by lane into one word of PE spikes out.
// One word in per cycle (II = 1), AXI-stream handshakes on both sides.
module spike_maxpool #(
    int unsigned PE = 1,
    int unsigned K = 4,  // kernel positions per window
    int unsigned IN_WIDTH = 8,
    int unsigned OUT_WIDTH = 8
) (
    input logic ap_clk,
    input logic ap_rst_n,
    input logic [IN_WIDTH-1:0] in0_V_TDATA,
    input logic in0_V_TVALID,
    output logic in0_V_TREADY,
    output logic [OUT_WIDTH-1:0] out0_V_TDATA,
    output logic out0_V_TVALID,
    input logic out0_V_TREADY
);
  localparam int unsigned KW = K > 1 ? $clog2(K) : 1;
  logic [KW-1:0] k;  // kernel position of the next word
  logic [PE-1:0] acc, pooled;  // OR of the window's words so far; the output register
  logic out_valid;
  wire last = k == KW'(K - 1);
  wire out_free = !out_valid || out0_V_TREADY;
  wire take = in0_V_TVALID && in0_V_TREADY;
  wire [PE-1:0] window = acc | in0_V_TDATA[PE-1:0];
  assign in0_V_TREADY = !last || out_free;
  assign out0_V_TVALID = out_valid;
  assign out0_V_TDATA = OUT_WIDTH'(pooled);

  always_ff @(posedge ap_clk) begin
    if (!ap_rst_n) begin
      k <= '0;
      acc <= '0;
      out_valid <= 1'b0;
    end else begin
      if (take) begin
        k <= last ? '0 : k + 1'b1;
        acc <= last ? '0 : window;
      end
      if (take && last) out_valid <= 1'b1;
      else if (out0_V_TREADY) out_valid <= 1'b0;
    end
  end
  always_ff @(posedge ap_clk) if (take && last) pooled <= window;
endmodule

// A layer of LIF neurons, PE per cycle: common/integer_lif.py's IntegerLIF.step per neuron (the
// same arithmetic as hls/templates/lif.h's lif_layer). One frame = one timestep = WORDS words
// of PE signed currents in (lane p in bits [p CURRENT_BITS, (p + 1) CURRENT_BITS)), WORDS
// words of PE spikes out. Per lane, with the membrane code v of the neuron:
//   x = (v <<< SHIFT_V) + (a <<< SHIFT_A);  v = clamp(round_half_even(x / 2^ROUND))
//   s = v >= THETA;  v' = v - THETA s (or 0 if s: RESET_ZERO)
// The membranes (WORDS words of PE x STATE_BITS bits) stay in a memory across the TIMESTEPS
// frames of an image; the first frame of an image reads them as 0. HELD = 1: the input is
// read on the first frame only, kept in a second memory and replayed on frames 2..T.
// Pipeline (II = 1, AXI-stream handshakes): counters (n, t) -> stage 1 (current, membrane
// read) -> output register. BLOCK_RAM = 1: registered reads (BRAM), issued with the load of
// stage 1; it needs WORDS >= 2 (a word is written back before its next read).
module lif #(
    int unsigned WORDS = 2,  // neurons / PE
    int unsigned PE = 1,
    int unsigned TIMESTEPS = 1,
    int unsigned CURRENT_BITS = 8,
    bit CURRENT_SIGNED = 1,
    int unsigned STATE_BITS = 8,
    int unsigned X_BITS = 10,
    int unsigned SHIFT_V = 0,
    int unsigned SHIFT_A = 0,
    int unsigned ROUND = 1,
    int THETA = 1,
    bit RESET_ZERO = 0,
    bit HELD = 0,
    bit BLOCK_RAM = 0,
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
  localparam int unsigned AW = WORDS > 1 ? $clog2(WORDS) : 1;
  localparam int unsigned TW = TIMESTEPS > 1 ? $clog2(TIMESTEPS) : 1;
  localparam int unsigned CW = PE * CURRENT_BITS;
  localparam int unsigned SW = PE * STATE_BITS;
  localparam longint SMAX = (longint'(1) << (STATE_BITS - 1)) - 1;
  localparam longint SMIN = -SMAX - 1;

  // Handshakes: stage 1 moves into the output register when that is free.
  logic [AW-1:0] n, n1;  // neuron word: of the next load, of stage 1
  logic [TW-1:0] t;  // timestep of the next load
  logic s1_valid, first1, replay1;
  logic [CW-1:0] in1, held1, cur1;
  logic [SW-1:0] v1, v1_next;
  logic [PE-1:0] spikes1, spikes_q;
  logic out_valid;
  wire replay = HELD && t != 0;
  wire move = s1_valid && (!out_valid || out0_V_TREADY);
  wire s1_free = !s1_valid || move;
  wire load = (replay || in0_V_TVALID) && s1_free;
  assign in0_V_TREADY = s1_free && !replay;
  assign out0_V_TVALID = out_valid;
  assign out0_V_TDATA = OUT_WIDTH'(spikes_q);

  always_ff @(posedge ap_clk) begin
    if (!ap_rst_n) begin
      n <= '0;
      t <= '0;
      s1_valid <= 1'b0;
      out_valid <= 1'b0;
    end else begin
      if (load) begin
        n <= n == AW'(WORDS - 1) ? '0 : n + 1'b1;
        if (n == AW'(WORDS - 1)) t <= t == TW'(TIMESTEPS - 1) ? '0 : t + 1'b1;
      end
      if (load) s1_valid <= 1'b1;
      else if (move) s1_valid <= 1'b0;
      if (move) out_valid <= 1'b1;
      else if (out0_V_TREADY) out_valid <= 1'b0;
    end
  end
  always_ff @(posedge ap_clk) begin
    if (load) begin
      n1 <= n;
      first1 <= t == '0;
      replay1 <= replay;
      in1 <= in0_V_TDATA[CW-1:0];
    end
    if (move) spikes_q <= spikes1;
  end

  lif_ram #(.DEPTH(WORDS), .WIDTH(SW), .AW(AW), .BLOCK(BLOCK_RAM)) membranes (
      .clk(ap_clk), .we(move), .waddr(n1), .wdata(v1_next),
      .re(load), .raddr_next(n), .raddr_cur(n1), .rdata(v1));
  if (HELD) begin : g_held
    lif_ram #(.DEPTH(WORDS), .WIDTH(CW), .AW(AW), .BLOCK(BLOCK_RAM)) currents (
        .clk(ap_clk), .we(load && !replay), .waddr(n), .wdata(in0_V_TDATA[CW-1:0]),
        .re(load), .raddr_next(n), .raddr_cur(n1), .rdata(held1));
  end else begin : g_live
    assign held1 = '0;
  end
  assign cur1 = replay1 ? held1 : in1;

  for (genvar p = 0; p < PE; p++) begin : g_lane
    logic [CURRENT_BITS-1:0] a_bits;
    logic signed [X_BITS-1:0] a, v, x, r;
    logic signed [STATE_BITS-1:0] charged;
    logic spike;
    assign a_bits = cur1[p*CURRENT_BITS+:CURRENT_BITS];
    assign a = CURRENT_SIGNED ? X_BITS'($signed(a_bits)) : X_BITS'(a_bits);
    assign v = first1 ? '0 : X_BITS'($signed(v1[p*STATE_BITS+:STATE_BITS]));
    assign x = (v <<< SHIFT_V) + (a <<< SHIFT_A);
    if (ROUND == 0) begin : g_exact
      assign r = x;
    end else begin : g_round  // half to even: floor((x + 2^(ROUND-1) - 1 + odd) / 2^ROUND)
      localparam logic signed [X_BITS:0] BIAS = (X_BITS + 1)'((longint'(1) << (ROUND - 1)) - 1);
      wire signed [X_BITS-1:0] fl = x >>> ROUND;  // odd = the floor's lowest bit
      wire signed [X_BITS:0] wide = {x[X_BITS-1], x};
      wire signed [X_BITS:0] biased = wide + BIAS + $signed({{X_BITS{1'b0}}, fl[0]});
      assign r = X_BITS'(biased >>> ROUND);
    end
    assign charged = r > X_BITS'(SMAX) ? STATE_BITS'(SMAX)
                   : r < X_BITS'(SMIN) ? STATE_BITS'(SMIN) : STATE_BITS'(r);
    assign spike = longint'(charged) >= longint'(THETA);
    assign spikes1[p] = spike;
    assign v1_next[p*STATE_BITS+:STATE_BITS] = !spike ? charged
        : RESET_ZERO ? '0 : charged - STATE_BITS'(THETA);
  end
endmodule

// A DEPTH x WIDTH memory, one write and one read port. rdata is the word of the item in
// stage 1: BLOCK = 1 reads raddr_next into a register when re (a BRAM's registered read);
// BLOCK = 0 reads raddr_cur asynchronously (LUTRAM).
module lif_ram #(
    int unsigned DEPTH = 2,
    int unsigned WIDTH = 1,
    int unsigned AW = 1,
    bit BLOCK = 0
) (
    input logic clk,
    input logic we,
    input logic [AW-1:0] waddr,
    input logic [WIDTH-1:0] wdata,
    input logic re,
    input logic [AW-1:0] raddr_next,
    input logic [AW-1:0] raddr_cur,
    output logic [WIDTH-1:0] rdata
);
  if (BLOCK) begin : g_block
    (* ram_style = "block" *) logic [WIDTH-1:0] mem[DEPTH];
    always_ff @(posedge clk) begin
      if (we) mem[waddr] <= wdata;
      if (re) rdata <= mem[raddr_next];
    end
  end else begin : g_lutram
    (* ram_style = "distributed" *) logic [WIDTH-1:0] mem[DEPTH];
    always_ff @(posedge clk) if (we) mem[waddr] <= wdata;
    assign rdata = mem[raddr_cur];
  end
endmodule

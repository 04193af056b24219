# Quantized spiking CNN toolkit. `make help` lists the targets and their variables.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-test.txt | cksum | cut -d' ' -f1)

# Every variable below is optional and empty by default: a target passes only the ones you
# set, and each default lives once, in the Python command (`$(PY) -m <module> --help` shows
# it; for make qat, ModelSpec and TrainConfig). `$(call opt,VAR,--flag)` is "--flag $(VAR)" if
# VAR is set, else nothing.
opt = $(if $($(1)),$(2) $($(1)))
# make qat: MODEL TIMESTEPS WBITS STATE_BITS ENCODING RESET LAYERS DATASET WEIGHT_SCALE DROPOUT
# EPOCHS BATCH LR SCHEDULE SHIFT_PX SEED LIMIT NAME RESUME DEVICE MAX_MINUTES FROM; make import-nir: NIR DATASET NAME
# TIMESTEPS DT DISCRETISATION PIXEL_DIVISOR; paths: DATA_DIR (else $$QSNN_DATA_DIR,
# else data/) RUNS_DIR (runs/); the rest: RUN SPLIT TARGETS IMAGES HLS_IMAGES NIR_IMAGES
# FPGA_PART CLK_NS TARGET_FPS BENCH_DEVICE GRID CPUS_PER_TRIAL GPUS_PER_TRIAL STUDY_DIR
PATHS = $(call opt,RUNS_DIR,--runs-dir) $(call opt,DATA_DIR,--data-dir)
FPGA = $(call opt,FPGA_PART,--part) $(call opt,CLK_NS,--clock-ns)

.PHONY: help setup qat import-nir ptq eval profile export fpga-estimate fpga-build fpga-rtlsim fpga-synth hls \
	report sweep cost-check study \
	study-report paper bench test \
	nir docker-build docker-run clean-venv

help:
	@echo "make setup                 create $(VENV) with the pinned toolchain (requirements.txt)"
	@echo "make qat [VAR=value ...]   quantization-aware training -> runs/<name>/"
	@echo "    MODEL=snn|ann TIMESTEPS WBITS=2|4|8|32 STATE_BITS=4|8|16|32 ENCODING=direct|rate"
	@echo "    RESET=subtract|zero LAYERS=conv32,pool,conv64,pool,fc256 (conv<c>[k<k>][s<s>][p<p>],"
	@echo "    maxpool<k>, avgpool<k>, pool = maxpool2, fc<n>)"
	@echo "    DATASET=mnist|fashion|cifar10|svhn EPOCHS BATCH LR SCHEDULE=cosine|constant"
	@echo "    SHIFT_PX SEED LIMIT=<n train images> NAME=<run> RESUME=1 DEVICE=auto|cpu|cuda"
	@echo "    MAX_MINUTES=<stop after the epoch that passes it>"
	@echo "    FROM=runs/<name>  start from that run's weights (an imported NIR graph), its"
	@echo "    network on the fixed point (beta to a shift, theta to the grid) and its dataset"
	@echo "    (defaults: $(PY) -m quant_training.train --help)"
	@echo "make import-nir NIR=model.nir DATASET=mnist NAME=<run> [TIMESTEPS] [DT=1e-4"
	@echo "    DISCRETISATION=exp|euler] [PIXEL_DIVISOR=256|255]  a NIR graph (snnTorch, sinabs,"
	@echo "    make nir) as a float run -> runs/<name>/ (snnTorch: DT=1e-4 DISCRETISATION=euler)"
	@echo "make ptq [RUN=...] [WBITS=4] [STATE_BITS=8] [IMAGES=1000]  post-training quantization:"
	@echo "                           float vs fixed-point accuracy, what was rounded -> <run>/ptq.json"
	@echo "make eval [RUN=runs/<name>] evaluate a run's best checkpoint (default: latest run)"
	@echo "make profile [RUN=...] [LIMIT=n] [SPLIT=test|val]  workload profile -> <run>/profile.json"
	@echo "make export [RUN=...] [IMAGES=100]   QONNX step graph + verification -> <run>/export/"
	@echo "make nir [RUN=...] [NIR_IMAGES=1000]  NIR graph + round trip in sinabs -> <run>/export/"
	@echo "make fpga-estimate [RUN=...] [FPGA_PART=xc7z020clg400-1] [CLK_NS=10] [TARGET_FPS=1000]"
	@echo "                           FINN estimate build -> <run>/fpga/<part>/"
	@echo "make fpga-build            the same, continued to synthesis (needs Xilinx Vivado/Vitis)"
	@echo "make fpga-rtlsim [RUN=...] [FPGA_PART=...] [IMAGES=20]  the design as RTL, simulated"
	@echo "                           with Verilator, bit-exact check + cycles -> <run>/fpga/<part>/rtlsim/"
	@echo "make fpga-synth [RUN=...] [FPGA_PART=...]  every RTL layer synthesized with yosys"
	@echo "                           -> <run>/fpga/<part>/synth/"
	@echo "make hls [RUN=...] [HLS_IMAGES=20]  HLS C++ project + bit-exact C simulation -> <run>/hls/"
	@echo "make report [TARGETS=digital,imc,fpga,loihi]  energy/area/latency report -> reports/hw/"
	@echo "make sweep                 the same plus a hardware-parameter sweep -> reports/hw_sweep/"
	@echo "make cost-check            each cost model against its external references"
	@echo "                           -> reports/hw_validation.md"
	@echo "make study [GRID=smoke|cpu|seeds|full|<file.toml>]  one trained, profiled and costed network"
	@echo "                           per configuration, on Ray (local, or RAY_ADDRESS=host:port)"
	@echo "                           -> reports/study/runs/<name>/ (done trials are skipped)"
	@echo "    CPUS_PER_TRIAL=1 GPUS_PER_TRIAL=<fraction, default 0.25 with a GPU> STUDY_DIR"
	@echo "make study-report          the study's report from committed results -> reports/study/"
	@echo "make paper                 the research report from committed results"
	@echo "                           -> reports/study/paper.pdf (and paper.typ)"
	@echo "make bench [BENCH_DEVICE=cpu|cuda]  speed vs snnTorch/SpikingJelly, step-graph"
	@echo "                           runtimes, hw-model sweep -> reports/bench/"
	@echo "make test                  run the test suite (minutes on 2 CPU cores)"
	@echo "make docker-build [TORCH_CPU_ONLY=1] / docker-run [CMD=...]  the toolchain in a container"
	@echo "Paths: DATA_DIR (default \$$QSNN_DATA_DIR, else data/) RUNS_DIR (default runs/)"

setup: $(STAMP)

$(STAMP): requirements.txt requirements-test.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --disable-pip-version-check --no-deps -r requirements-test.txt
	@rm -f $(VENV)/.installed-* && touch $@

qat: setup
	$(PY) -m quant_training.train $(PATHS) $(call opt,MODEL,--kind) \
	  $(call opt,TIMESTEPS,--timesteps) $(call opt,WBITS,--weight-bits) \
	  $(call opt,STATE_BITS,--state-bits) $(call opt,ENCODING,--encoding) \
	  $(call opt,RESET,--reset) $(call opt,LAYERS,--layers) $(call opt,DATASET,--dataset) \
	  $(call opt,WEIGHT_SCALE,--weight-scale) $(call opt,DROPOUT,--dropout) \
	  $(call opt,EPOCHS,--epochs) \
	  $(call opt,BATCH,--batch-size) $(call opt,LR,--lr) $(call opt,SCHEDULE,--schedule) \
	  $(call opt,SHIFT_PX,--shift-px) $(call opt,SEED,--seed) $(call opt,LIMIT,--limit) \
	  $(call opt,NAME,--name) $(call opt,DEVICE,--device) \
	  $(call opt,MAX_MINUTES,--max-minutes) $(if $(RESUME),--resume) $(call opt,FROM,--from)

import-nir: setup
	$(PY) -m quant_training.nir_import $(NIR) --dataset $(DATASET) --name $(NAME) $(PATHS) \
	  $(call opt,TIMESTEPS,--timesteps) $(call opt,DT,--dt) \
	  $(call opt,DISCRETISATION,--discretisation) $(call opt,PIXEL_DIVISOR,--pixel-divisor)

ptq: setup
	$(PY) -m quant_training.ptq $(RUN) $(PATHS) $(call opt,WBITS,--weight-bits) \
	  $(call opt,STATE_BITS,--state-bits) $(call opt,WEIGHT_SCALE,--weight-scale) \
	  $(call opt,IMAGES,--images)

eval: setup
	$(PY) -m quant_training.evaluate $(RUN) $(PATHS) $(call opt,DEVICE,--device)

profile: setup
	$(PY) -m quant_training.profile $(RUN) $(PATHS) $(call opt,SPLIT,--split) \
	  $(call opt,LIMIT,--limit)

export: setup
	$(PY) -m export.qonnx.qonnx_export $(RUN) $(PATHS) $(call opt,IMAGES,--images)

nir: setup
	$(PY) -m export.nir.nir_export $(RUN) $(PATHS) $(call opt,NIR_IMAGES,--images)

fpga-estimate: setup
	$(PY) -m export.finn.fpga_estimate $(RUN) $(call opt,RUNS_DIR,--runs-dir) $(FPGA) \
	  $(call opt,TARGET_FPS,--target-fps)

fpga-build: setup
	$(PY) -m export.finn.fpga_estimate $(RUN) $(call opt,RUNS_DIR,--runs-dir) $(FPGA) \
	  $(call opt,TARGET_FPS,--target-fps) --build

fpga-rtlsim: setup
	$(PY) -m export.rtl.rtlsim $(RUN) $(PATHS) $(call opt,FPGA_PART,--part) \
	  $(call opt,IMAGES,--images)

fpga-synth: setup
	$(PY) -m export.rtl.fpga_synth $(RUN) $(PATHS) $(call opt,FPGA_PART,--part)

hls: setup
	$(PY) -m hls.build $(RUN) $(PATHS) $(call opt,HLS_IMAGES,--images) $(FPGA)

report: setup
	$(PY) -m hw_model.report $(call opt,RUNS_DIR,--runs-dir) $(call opt,TARGETS,--targets)

sweep: setup
	$(PY) -m hw_model.report $(call opt,RUNS_DIR,--runs-dir) $(call opt,TARGETS,--targets) --sweep

cost-check: setup
	$(PY) -m hw_model.validate --out reports/hw_validation.md

study: setup
	$(PY) -m study.run $(call opt,GRID,--grid) $(call opt,STUDY_DIR,--study-dir) \
	  $(if $(RUNS_DIR),--runs-dir $(RUNS_DIR)/study) $(call opt,DATA_DIR,--data-dir) \
	  $(call opt,CPUS_PER_TRIAL,--cpus-per-trial) $(call opt,GPUS_PER_TRIAL,--gpus-per-trial)

study-report: setup
	$(PY) -m study.report $(call opt,STUDY_DIR,--study-dir)

paper: setup
	$(PY) -m study.paper $(call opt,STUDY_DIR,--study-dir)

bench: setup
	$(PY) -m benchmarks.speed $(call opt,BENCH_DEVICE,--device) --out reports/bench
	$(PY) -m benchmarks.profile_step $(call opt,BENCH_DEVICE,--device) --out reports/bench
	$(PY) -m benchmarks.step_graph --out reports/bench
	$(PY) -m hw_model.bench --out reports/bench

test: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	QSNN_DATA_DIR=$(DATA_DIR) $(PY) -m pytest -q tests

IMAGE ?= qsnn
TORCH_CPU_ONLY ?= 0
CMD ?= make help

docker-build:
	docker build -f docker/Dockerfile --build-arg TORCH_CPU_ONLY=$(TORCH_CPU_ONLY) -t $(IMAGE) .

docker-run:
	docker run --rm -it -v "$(abspath $(RUNS_DIR))":/work/runs -v "$(abspath $(DATA_DIR))":/data \
	  $(IMAGE) $(CMD)

clean-venv:
	rm -rf $(VENV)

# Quantized spiking CNN toolkit. `make help` lists the targets and their variables.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-test.txt | cksum | cut -d' ' -f1)

# Network and training (make qat)
MODEL ?= snn
TIMESTEPS ?= 10
WBITS ?= 8
STATE_BITS ?= 8
ENCODING ?= direct
RESET ?= subtract
DATASET ?= mnist
EPOCHS ?= 10
BATCH ?= 64
LR ?= 1e-3
SEED ?= 0
LIMIT ?=
NAME ?=
RESUME ?=
DEVICE ?= auto
MAX_MINUTES ?=
# Paths
DATA_DIR ?= $(or $(QSNN_DATA_DIR),data)
RUNS_DIR ?= runs
RUN ?=
SPLIT ?= test
TARGETS ?= digital,imc,fpga
IMAGES ?= 100
HLS_IMAGES ?= 20
NIR_IMAGES ?= 1000
FPGA_PART ?= xc7z020clg400-1
CLK_NS ?= 10
TARGET_FPS ?= 1000
BENCH_DEVICE ?= cpu
# The study (make study): a grid name or file; Ray resources per trial; RAY_ADDRESS = a cluster
GRID ?= cpu
CPUS_PER_TRIAL ?= 1
GPUS_PER_TRIAL ?=
STUDY_DIR ?= reports/study

.PHONY: help setup qat eval profile export fpga-estimate fpga-build hls report sweep study \
	study-report bench test \
	nir docker-build docker-run clean-venv

help:
	@echo "make setup                 create $(VENV) with the pinned toolchain (requirements.txt)"
	@echo "make qat [VAR=value ...]   quantization-aware training -> $(RUNS_DIR)/<name>/"
	@echo "    MODEL=snn|ann TIMESTEPS=$(TIMESTEPS) WBITS=2|4|8|32 STATE_BITS=4|8|16|32"
	@echo "    ENCODING=direct|rate RESET=subtract|zero DATASET=mnist|fashion EPOCHS=$(EPOCHS)"
	@echo "    BATCH=$(BATCH) LR=$(LR) SEED=$(SEED) LIMIT=<n train images> NAME=<run> RESUME=1"
	@echo "    DEVICE=auto|cpu|cuda MAX_MINUTES=<stop after the epoch that passes it>"
	@echo "make eval [RUN=runs/<name>] evaluate a run's best checkpoint (default: latest run)"
	@echo "make profile [RUN=...] [LIMIT=n] [SPLIT=test|val]  workload profile -> <run>/profile.json"
	@echo "make export [RUN=...] [IMAGES=100]   QONNX step graph + verification -> <run>/export/"
	@echo "make nir [RUN=...] [NIR_IMAGES=1000]  NIR graph + round trip in sinabs -> <run>/export/"
	@echo "make fpga-estimate [RUN=...] [FPGA_PART=$(FPGA_PART)] [CLK_NS=$(CLK_NS)] [TARGET_FPS=$(TARGET_FPS)]"
	@echo "                           FINN estimate build -> <run>/fpga/<part>/"
	@echo "make fpga-build            the same, continued to synthesis (needs Xilinx Vivado/Vitis)"
	@echo "make hls [RUN=...] [HLS_IMAGES=20]  HLS C++ project + bit-exact C simulation -> <run>/hls/"
	@echo "make report [TARGETS=digital,imc,fpga]  energy/area/latency report -> reports/hw/"
	@echo "make sweep                 the same plus a hardware-parameter sweep -> reports/hw_sweep/"
	@echo "make study [GRID=smoke|cpu|full|<file.toml>]  one trained, profiled and costed network"
	@echo "                           per configuration, on Ray (local, or RAY_ADDRESS=host:port)"
	@echo "                           -> $(STUDY_DIR)/runs/<name>/ (done trials are skipped)"
	@echo "    CPUS_PER_TRIAL=$(CPUS_PER_TRIAL) GPUS_PER_TRIAL=<fraction, default 0.25 with a GPU>"
	@echo "make study-report          the study's report from committed results -> $(STUDY_DIR)/"
	@echo "make bench [BENCH_DEVICE=cpu|cuda]  speed vs snnTorch/SpikingJelly, step-graph"
	@echo "                           runtimes, hw-model sweep -> reports/bench/"
	@echo "make test                  run the test suite (minutes on 2 CPU cores)"
	@echo "make docker-build [TORCH_CPU_ONLY=1] / docker-run [CMD=...]  the toolchain in a container"
	@echo "Paths: DATA_DIR=$(DATA_DIR) (or \$$QSNN_DATA_DIR) RUNS_DIR=$(RUNS_DIR)"

setup: $(STAMP)

$(STAMP): requirements.txt requirements-test.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --disable-pip-version-check --no-deps -r requirements-test.txt
	@rm -f $(VENV)/.installed-* && touch $@

qat: setup
	$(PY) -m quant_training.train --model $(MODEL) --timesteps $(TIMESTEPS) \
	  --weight-bits $(WBITS) --state-bits $(STATE_BITS) --encoding $(ENCODING) --reset $(RESET) \
	  --dataset $(DATASET) --epochs $(EPOCHS) --batch-size $(BATCH) --lr $(LR) --seed $(SEED) \
	  --device $(DEVICE) --data-dir $(DATA_DIR) --runs-dir $(RUNS_DIR) \
	  $(if $(LIMIT),--limit $(LIMIT)) $(if $(NAME),--name $(NAME)) $(if $(RESUME),--resume) \
	  $(if $(MAX_MINUTES),--max-minutes $(MAX_MINUTES))

eval: setup
	$(PY) -m quant_training.evaluate $(RUN) --runs-dir $(RUNS_DIR) --data-dir $(DATA_DIR) \
	  --device $(DEVICE)

profile: setup
	$(PY) -m quant_training.profile $(RUN) --runs-dir $(RUNS_DIR) --data-dir $(DATA_DIR) \
	  --split $(SPLIT) $(if $(LIMIT),--limit $(LIMIT))

export: setup
	$(PY) -m export.qonnx_export $(RUN) --runs-dir $(RUNS_DIR) --data-dir $(DATA_DIR) \
	  --images $(IMAGES)

nir: setup
	$(PY) -m export.nir_export $(RUN) --runs-dir $(RUNS_DIR) --data-dir $(DATA_DIR) \
	  --images $(NIR_IMAGES)

fpga-estimate: setup
	$(PY) -m export.fpga_estimate $(RUN) --runs-dir $(RUNS_DIR) --part $(FPGA_PART) \
	  --clock-ns $(CLK_NS) --target-fps $(TARGET_FPS)

fpga-build: setup
	$(PY) -m export.fpga_estimate $(RUN) --runs-dir $(RUNS_DIR) --part $(FPGA_PART) \
	  --clock-ns $(CLK_NS) --target-fps $(TARGET_FPS) --build

hls: setup
	$(PY) -m hls.build $(RUN) --runs-dir $(RUNS_DIR) --data-dir $(DATA_DIR) \
	  --images $(HLS_IMAGES) --part $(FPGA_PART) --clock-ns $(CLK_NS)

report: setup
	$(PY) -m hw_model.report --runs-dir $(RUNS_DIR) --targets $(TARGETS)

sweep: setup
	$(PY) -m hw_model.report --runs-dir $(RUNS_DIR) --targets $(TARGETS) --sweep

study: setup
	$(PY) -m study.run --grid $(GRID) --study-dir $(STUDY_DIR) --runs-dir $(RUNS_DIR)/study \
	  --data-dir $(DATA_DIR) --cpus-per-trial $(CPUS_PER_TRIAL) \
	  $(if $(GPUS_PER_TRIAL),--gpus-per-trial $(GPUS_PER_TRIAL))

study-report: setup
	$(PY) -m study.report --study-dir $(STUDY_DIR)

bench: setup
	$(PY) -m benchmarks.speed --device $(BENCH_DEVICE) --out reports/bench
	$(PY) -m benchmarks.step_graph --out reports/bench
	$(PY) -m hw_model.bench --out reports/bench

test: setup
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

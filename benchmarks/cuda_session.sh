#!/usr/bin/env bash
# The GPU checks of one session on a lent CUDA machine, as one script (issue 17): make qat's
# epoch time, the speed benchmark, the CUDA tests and a training-step profile. Results go to
# $OUT (default reports/bench/cuda): session.log, history.csv + metrics.json of the T=4 4-bit run,
# default_history.csv (make qat's defaults),
# speed_cuda.{json,md}, profile_step_cuda.md.
#
#   bash benchmarks/cuda_session.sh            # where the project's packages are installed
#
# On the lent machine (python3 there has torch and triton, not brevitas): carry .whl (wheels:
# brevitas, dependencies, unfoldNd, snntorch, spikingjelly, loguru) and .mnist (MNIST's four
# IDX files, gzipped); the script installs the wheels to /tmp/site and unpacks MNIST itself.
set -u
OUT=${OUT:-reports/bench/cuda}
PY=${PY:-python3}
mkdir -p "$OUT"
exec > >(tee "$OUT/session.log") 2>&1
export PYTHONUNBUFFERED=1 TQDM_DISABLE=1

if [ -d .whl ]; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
fi
if [ -d .mnist ]; then
  mkdir -p /tmp/data/MNIST/raw
  for f in .mnist/*.gz; do gunzip -c "$f" > /tmp/data/MNIST/raw/"$(basename "$f" .gz)"; done
  export QSNN_DATA_DIR=/tmp/data
fi
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv
$PY -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)"

section() { echo; echo "=== $1 ($(date +%T))"; }

section "make qat TIMESTEPS=4 WBITS=4 BATCH=256, full MNIST, 3 epochs"
timeout 120 $PY -m quant_training.train --timesteps 4 --weight-bits 4 --batch-size 256 \
  --epochs 3 --device cuda --runs-dir /tmp/runs --name gpu_T4_w4_b256
cp /tmp/runs/gpu_T4_w4_b256/history.csv /tmp/runs/gpu_T4_w4_b256/metrics.json "$OUT"/ 2>/dev/null
cat "$OUT/history.csv" 2>/dev/null

section "make qat with the defaults (T=10, 8-bit, batch 64), 2 epochs"
timeout 90 $PY -m quant_training.train --epochs 2 --device cuda --runs-dir /tmp/runs \
  --name gpu_default
cp /tmp/runs/gpu_default/history.csv "$OUT"/default_history.csv 2>/dev/null

section "speed benchmark (benchmarks.speed), T 4 10, batch 64 256"
timeout 400 $PY -m benchmarks.speed --device cuda --timesteps 4 10 --batch 64 256 --seconds 1 \
  --libraries qsnn qsnn-int8 spikingjelly spikingjelly-cudagraph --out "$OUT"

section "CUDA tests"
timeout 180 $PY -m pytest -q -p no:cacheprovider -k "cuda or gpu or graph" tests/test_cuda.py \
  tests/test_lif_triton.py tests/test_model.py 2>&1 | tail -25

section "training-step profile, T=4, 4-bit, batch 256"
timeout 90 $PY -m benchmarks.profile_step --device cuda --out "$OUT" > /dev/null && \
  head -c 6000 "$OUT/profile_step_cuda.md"
section "done"

#!/usr/bin/env bash
# The one script to run when a GPU (H100 / H200) is lent: the CUDA test suite, then the
# full perf suite, in about 8 minutes. Everything lands in perf/results/ (and in $OUT when
# that is set): the test log, <device>-<date>.json / .md and the sweep plots.
#
#   bash perf/gpu_check.sh            # TEST_BUDGET=300 PERF_BUDGET=200 by default
#
# The machine has torch and triton and no package registry: tritongrad installs with
# --no-deps (and without build isolation, which would fetch setuptools).
set -uo pipefail
cd "$(dirname "$0")/.."

TEST_BUDGET=${TEST_BUDGET:-300}   # seconds for pytest
PERF_BUDGET=${PERF_BUDGET:-200}   # seconds of benchmarks (the run finishes its current case)
RESULTS=perf/results
RUN_DIR=$(mktemp -d)
DATE=$(date +%Y-%m-%d)
LOG="$RUN_DIR/gpu-check-$DATE.log"
export PYTHONUNBUFFERED=1 TRITONGRAD_DEVICE=cuda PIP_DISABLE_PIP_VERSION_CHECK=1
PY=${PYTHON:-python3}

{
  echo "== gpu_check $(date -Is)"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv || true
  $PY -c "import torch, triton; print('torch', torch.__version__, 'cuda', torch.version.cuda, \
'triton', triton.__version__, 'gpu', torch.cuda.get_device_name())"
  if [ -d .git ] && command -v git >/dev/null; then
    export TRITONGRAD_COMMIT=${TRITONGRAD_COMMIT:-$(git rev-parse HEAD 2>/dev/null)}
  fi
  echo "commit: ${TRITONGRAD_COMMIT:-unknown}"

  echo "== install"
  $PY -m pip install -q --no-deps -e . 2>/dev/null \
    || $PY -m pip install -q --no-deps --no-build-isolation -e . \
    || echo "install failed: running from the source tree"
  export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

  echo "== CUDA tests (budget ${TEST_BUDGET}s)"
  XDIST=""
  if $PY -c "import xdist" 2>/dev/null; then XDIST="-n 8"; fi
  TIMEOUT_OPT=""
  if $PY -c "import pytest_timeout" 2>/dev/null; then TIMEOUT_OPT="--timeout=240"; fi
  timeout --kill-after=10 "$TEST_BUDGET" $PY -m pytest -q -rfEs -p no:cacheprovider \
    $XDIST $TIMEOUT_OPT tests
  echo "pytest exit code: $?"

  echo "== perf suite (budget ${PERF_BUDGET}s)"
  timeout --kill-after=10 $((PERF_BUDGET + 150)) $PY perf/run.py --budget "$PERF_BUDGET" \
    --out "$RUN_DIR"
  echo "perf exit code: $?"
  echo "== done $(date -Is)"
} 2>&1 | tee "$LOG"

mkdir -p "$RESULTS"
cp "$RUN_DIR"/* "$RESULTS"/
if [ -n "${OUT:-}" ]; then
  cp "$RUN_DIR"/* "$OUT"/
fi
echo "results: $(ls "$RUN_DIR" | tr '\n' ' ')"

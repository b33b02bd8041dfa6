#!/usr/bin/env bash
# Creates .venv/ at the repository root and installs everything: torch and torchvision (pinned), the dev
# requirements, and bregman_kernels itself with its C++/CUDA extensions (editable, built in place).
# Environment: PYTHON (default python3), MAX_JOBS (build parallelism), BREGMAN_KERNELS_SKIP_CUDA=1 (CPU only).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-"torch==2.14.1 torchvision==0.29.1"}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip setuptools wheel
# shellcheck disable=SC2086
.venv/bin/python -m pip install -q $TORCH_SPEC
.venv/bin/python -m pip install -q -r requirements-dev.txt
export MAX_JOBS=${MAX_JOBS:-$(nproc)}
.venv/bin/python -m pip install -q --no-build-isolation -e .
.venv/bin/python -c "import bregman_kernels as bk; print('bregman_kernels', bk.__version__, 'backends on cpu:', \
bk.available_backends('cpu'))"

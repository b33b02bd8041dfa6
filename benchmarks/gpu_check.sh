#!/usr/bin/env bash
# The one-command GPU check, for a fresh offline GPU machine whose system python3 already has torch, triton,
# pytest, pytest-benchmark and ninja (nothing is installed; PYTHON=... picks another interpreter):
#   1. builds the C++ and CUDA extensions in place for sm_90 (TORCH_CUDA_ARCH_LIST overrides),
#   2. runs the GPU tests (tests marked gpu and those whose ids name cuda or triton),
#   3. runs the GPU benchmarks (op forward, op forward+backward, memory, model train steps), one JSON each,
#   4. writes report.md and speedups.png into OUTDIR and prints a short table last.
# Every step runs under `timeout` and the next one starts whatever the last one did; all steps end by a deadline:
# ≤ 8 min in all (16 cores), --quick ≈ 2 min plus the build (4 min at most). Without a GPU it rehearses: CPU-only build, GPU tests skip, a tiny CPU run.
#
# usage: benchmarks/gpu_check.sh OUTDIR [--quick]
set -uo pipefail

OUT=${1:?usage: benchmarks/gpu_check.sh OUTDIR [--quick]}
QUICK=0
[[ "${2:-}" == "--quick" ]] && QUICK=1
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-python3}
mkdir -p "$OUT/logs"
OUT=$(cd "$OUT" && pwd)
cd "$ROOT" || exit 1
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
STEPS="$OUT/steps.tsv"
printf "step\trc\tseconds\tlimit\n" > "$STEPS"
# The whole run ends by DEADLINE (the report's 30 s are kept aside): 7.5 min, --quick 4 min with the build.
TOTAL=$(( QUICK ? 240 : 450 ))
DEADLINE=$(( $(date +%s) + TOTAL ))

# step NAME LIMIT_SECONDS CMD...: run CMD with a time box (also cut to what is left before DEADLINE), log to
# OUT/logs/NAME.log, record rc and duration.
step() {
    local name=$1 limit=$2 t0 rc left
    shift 2
    t0=$(date +%s)
    left=$(( DEADLINE - t0 ))
    [[ $name == report ]] && left=$limit
    (( left < limit )) && limit=$left
    if (( limit < 5 )); then
        echo "== $name: skipped, no time left"
        printf "%s\t%s\t%s\t%s\n" "$name" "skipped" 0 0 >> "$STEPS"
        return 0
    fi
    echo "== $name (limit ${limit}s)"
    timeout -k 10 "$limit" "$@" > "$OUT/logs/$name.log" 2>&1
    rc=$?
    printf "%s\t%s\t%s\t%s\n" "$name" "$rc" "$(( $(date +%s) - t0 ))" "$limit" >> "$STEPS"
    [[ $rc -eq 124 || $rc -eq 137 ]] && echo "   timed out after ${limit}s"
    tail -n 3 "$OUT/logs/$name.log" | sed 's/^/   /'
    return 0
}

HAVE_GPU=0
if timeout 60 "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    HAVE_GPU=1
fi
NPROC=$(nproc 2>/dev/null || echo 4)

step env 30 bash -c "date -u; uname -a; nproc; (nvidia-smi || echo 'no nvidia-smi'); (nvcc --version || echo 'no nvcc');
    $PY -c 'import sys, torch; print(sys.version); print(\"torch\", torch.__version__, \"cuda\", torch.version.cuda,
        \"gpu\", torch.cuda.is_available() and torch.cuda.get_device_name())';
    $PY -c 'import triton; print(\"triton\", triton.__version__)'; $PY -m pytest --version"
cp "$OUT/logs/env.log" "$OUT/env.txt"

if [[ $HAVE_GPU -eq 1 ]]; then
    export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
    step build 150 env MAX_JOBS="${MAX_JOBS:-$NPROC}" "$PY" setup.py build_ext --inplace
    GPU_K="cuda or triton or gpu"
    BENCH=(env BENCH_DEVICE=cuda)
    if [[ $QUICK -eq 1 ]]; then
        GPU_K="(cuda or gpu) and not slow"
        BENCH+=(BENCH_QUICK=1 BENCH_DTYPES=float32)
    fi
    LIMITS=(90 60 70 20 35)  # gpu tests, op fwd, op fwdbwd, memory, models (eager providers)
    [[ $QUICK -eq 1 ]] && LIMITS=(40 30 35 0 25)
else
    echo "no CUDA device: rehearsal (CPU-only build, GPU tests skip, tiny CPU benchmarks)"
    step build 300 env BREGMAN_KERNELS_SKIP_CUDA=1 MAX_JOBS="${MAX_JOBS:-$NPROC}" "$PY" setup.py build_ext --inplace
    GPU_K="cuda or gpu"
    BENCH=(env BENCH_DEVICE=cpu BENCH_THREADS=1 BENCH_QUICK=1 BENCH_ACTS=tanh BENCH_DTYPES=float32 BENCH_SIZES=small)
    LIMITS=(120 90 90 60 120)
fi
step backends 30 "$PY" -c "import bregman_kernels as bk, bregman_kernels.backends as b
for d in ('cpu', 'cuda'):
    print(d, bk.available_backends(d), {n: b.why_unavailable(n, d) for n in b.BACKENDS})"

step gpu_tests "${LIMITS[0]}" "$PY" -m pytest tests -v -p no:cacheprovider --maxfail=25 -k "$GPU_K" \
    --junitxml="$OUT/gpu_tests.xml"
grep -E "^(FAILED|ERROR)" "$OUT/logs/gpu_tests.log" | head -20

PYB=("$PY" -m pytest -q -p no:cacheprovider --benchmark-only --benchmark-columns=median,min,rounds,iterations)
step bench_op_fwd "${LIMITS[1]}" "${BENCH[@]}" "${PYB[@]}" benchmarks/test_bench_op.py -k "copy or fwd-" \
    --benchmark-json="$OUT/op_fwd.json"
step bench_op_fwdbwd "${LIMITS[2]}" "${BENCH[@]}" "${PYB[@]}" benchmarks/test_bench_op.py -k "fwdbwd-" \
    --benchmark-json="$OUT/op_fwdbwd.json"
if [[ ${LIMITS[3]} -gt 0 ]]; then
    step bench_memory "${LIMITS[3]}" "${BENCH[@]}" "${PYB[@]}" benchmarks/test_bench_memory.py \
        --benchmark-json="$OUT/memory.json"
fi
# Models: eager providers first, then the torch.compile ones (slow to compile: a time-out loses only them).
MODELS_K="not compiled"
[[ $QUICK -eq 1 ]] && MODELS_K="(mlp or spiral) and not compiled"
[[ $HAVE_GPU -eq 0 ]] && MODELS_K="spiral and not compiled"
step bench_models "${LIMITS[4]}" "${BENCH[@]}" "${PYB[@]}" benchmarks/test_bench_models.py -k "$MODELS_K" \
    --benchmark-json="$OUT/models.json"
if [[ $HAVE_GPU -eq 1 && $QUICK -eq 0 ]]; then
    step bench_models_compiled 40 "${BENCH[@]}" "${PYB[@]}" benchmarks/test_bench_models.py -k "compiled" \
        --benchmark-json="$OUT/models_compiled.json"
fi

TITLE="bregman_kernels benchmarks ($([[ $HAVE_GPU -eq 1 ]] && echo GPU || echo CPU rehearsal)$(
    [[ $QUICK -eq 1 ]] && echo ', quick'))"
step report 30 "$PY" benchmarks/report.py "$OUT"/op_fwd.json "$OUT"/op_fwdbwd.json "$OUT"/memory.json \
    "$OUT"/models.json "$OUT"/models_compiled.json --out "$OUT" --title "$TITLE" --short

echo
echo "== steps (rc 0 = ok, 124 = timed out; logs in $OUT/logs)"
column -t "$STEPS" 2>/dev/null || cat "$STEPS"
echo
grep -E "passed|failed|skipped|error|deselected|no tests ran" "$OUT/logs/gpu_tests.log" | tail -n 1 | sed 's/^/gpu tests: /'
echo
sed -n '/^group/,$p' "$OUT/logs/report.log"

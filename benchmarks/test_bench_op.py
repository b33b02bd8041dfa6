"""Op level: provider × activation × dtype × size × {forward, forward + backward}, plus the copy yardstick.

extra_info of every case: bytes moved by a fused implementation (common.bytes_moved), the GB/s that amounts to
at the median time, that as a % of the copy bandwidth measured in the same run for the same tensor size, and
the CPU thread count (or the GPU name).
"""

from __future__ import annotations

import pytest

from benchmarks import common as C

DEV = C.device()
CASES = [(m, a, d, s) for m in ("fwd", "fwdbwd") for a in C.acts() for d in C.dtypes() for s in C.sizes()]
IDS = [f"{m}-{a}-{d}-{s}" for m, a, d, s in CASES]


def _budget(size: str) -> float:
    # seconds of timed rounds per case: enough for a stable median, small enough for 2 CPU cores
    if C.on_gpu():
        return 0.05 if C.quick() else 0.1
    return 0.3 if size == "small" else 0.8


def _skip_reason(provider: str, dtype: str) -> str | None:
    if provider == "compiled" and not C.on_gpu() and dtype != "float32" and C.quick():
        return "quick run: torch.compile on CPU only for float32"
    return None


@pytest.mark.parametrize("provider", C.providers())
@pytest.mark.parametrize(("mode", "act", "dtype", "size"), CASES, ids=IDS)
def test_op(benchmark, mode, act, dtype, size, provider):
    why = _skip_reason(provider, dtype)
    if why:
        pytest.skip(why)
    benchmark.group = f"op-{mode}-{size}"
    numel, dt = C.SIZES[size], C.DTYPES[dtype]
    x, z = C.make_inputs(act, numel, dt, DEV)
    run = C.step_fn(C.op_fn(provider, act), x, z, mode)
    C.run_benchmark(benchmark, run, DEV, _budget(size))
    moved = C.bytes_moved(numel, dt, mode)
    gbps = moved / benchmark.stats.stats.median / 1e9
    copy = C.copy_bandwidth(numel, dt, DEV) / 1e9
    benchmark.extra_info.update(bytes_moved=moved, gbps=round(gbps, 3), copy_gbps=round(copy, 3),
                                pct_of_copy=round(100 * gbps / copy, 2), numel=numel, **C.thread_info(DEV))


@pytest.mark.parametrize("dtype", C.dtypes())
@pytest.mark.parametrize("size", C.sizes())
def test_copy(benchmark, size, dtype):
    """The yardstick itself: torch.empty_like(x).copy_(x) (reads and writes one tensor)."""
    benchmark.group = f"copy-{size}"
    numel, dt = C.SIZES[size], C.DTYPES[dtype]
    x, _ = C.make_inputs("tanh", numel, dt, DEV)
    C.run_benchmark(benchmark, lambda: x.clone(), DEV, 0.2)
    moved = 2 * numel * x.element_size()
    benchmark.extra_info.update(bytes_moved=moved, gbps=round(moved / benchmark.stats.stats.median / 1e9, 3),
                                numel=numel, **C.thread_info(DEV))

"""Memory saved for backward: what the autograd graph of one activation holds, eager composite vs fused.

Each case times the forward that records the graph and stores in extra_info the bytes of the distinct storages
saved for backward (``saved_bytes``), those beyond the inputs x and z themselves (``saved_extra_bytes``), and on
a GPU the peak allocation above the inputs during that forward (``peak_bytes``).
"""

from __future__ import annotations

import pytest
import torch

from benchmarks import common as C

DEV = C.device()
SIZE = "4Mi"


def _forward_with_graph(f, x, z):
    xr, zr = x.detach().requires_grad_(), z.detach().requires_grad_()
    return (lambda: f(xr, zr)), (xr, zr)


def _peak_bytes(run) -> int | None:
    if DEV.type != "cuda":
        return None
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats(DEV)
    base = torch.cuda.memory_allocated(DEV)
    y = run()
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated(DEV) - base
    del y
    return peak


@pytest.mark.parametrize("provider", C.providers())
@pytest.mark.parametrize("dtype", C.env_list("BENCH_MEMORY_DTYPES", ("float32",), tuple(C.DTYPES)))
@pytest.mark.parametrize("act", C.acts())
def test_saved_memory(benchmark, act, dtype, provider):
    benchmark.group = f"memory-{SIZE}"
    numel, dt = C.SIZES[SIZE], C.DTYPES[dtype]
    x, z = C.make_inputs(act, numel, dt, DEV)
    run, inputs = _forward_with_graph(C.op_fn(provider, act), x, z)
    run()  # compile / load before measuring
    saved, extra = C.saved_bytes(run, inputs)
    peak = _peak_bytes(run)
    C.run_benchmark(benchmark, run, DEV, 0.1 if C.on_gpu() else 0.3)
    tensor_bytes = numel * x.element_size()
    benchmark.extra_info.update(saved_bytes=saved, saved_extra_bytes=extra, numel=numel,
                                saved_in_tensors=round(saved / tensor_bytes, 2), **C.thread_info(DEV))
    if peak is not None:
        benchmark.extra_info["peak_bytes"] = peak
    assert saved >= 0

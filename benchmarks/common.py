"""Shared pieces of the benchmark suite: device, providers, inputs, timing, bandwidth and saved-tensor accounting.

Op-level providers (the ``provider`` parameter of every op benchmark):
    composite   ρ(x + ρ⁻¹(clamp(z, lo + eps, hi − eps))) written with plain torch ops, autograd through them
                (what a user of bregmanet writes); in the input dtype
    compiled    torch.compile of the careful composite (backends/eager.py math in fp32/fp64, autograd by AOT)
    bk-<name>   bregman_activation(..., backend=<name>) for every name of available_backends(device)
Environment knobs (read at collection): BENCH_DEVICE (cpu | cuda; default cuda when available), BENCH_ACTS
(comma list or "all"), BENCH_DTYPES, BENCH_SIZES (small, 4Mi, 64Mi), BENCH_QUICK=1 (fewer cases and rounds),
BENCH_MEMORY_DTYPES (default float32), BENCH_THREADS (torch CPU threads), BENCH_MODELS_FULL=1 (torch.compile
of every model, not only the MLP). docs/benchmarks.md describes them.
"""

from __future__ import annotations

import math
import os
import statistics
import time

import torch
import torch.nn.functional as F

import bregman_kernels as bk
from bregman_kernels import activations as A
from bregman_kernels.backends import eager as E

EPS = 1e-5
ROW = 1024  # op inputs are (n / ROW, ROW)
SIZES = {"small": 256 * ROW, "4Mi": 4 << 20, "64Mi": 64 << 20}
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16, "float64": torch.float64}
ALL_ACTS = ("sigmoid", "tanh", "scaled_tanh", "atan", "sin", "asinh", "isru", "softplus", "relu")
BASELINES = ("composite", "compiled")


def env_list(name: str, default: tuple[str, ...], universe: tuple[str, ...]) -> tuple[str, ...]:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if raw == "all":
        return universe
    items = tuple(s.strip() for s in raw.split(",") if s.strip())
    bad = [s for s in items if s not in universe]
    if bad:
        raise ValueError(f"{name}: unknown {bad}; valid: {', '.join(universe)} or 'all'")
    return items


def quick() -> bool:
    return os.environ.get("BENCH_QUICK", "") not in ("", "0")


def full_models() -> bool:
    return os.environ.get("BENCH_MODELS_FULL", "") not in ("", "0")


def device() -> torch.device:
    name = os.environ.get("BENCH_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def on_gpu() -> bool:
    return device().type == "cuda"


def acts() -> tuple[str, ...]:
    default = ("tanh", "softplus") if quick() else ("tanh", "atan", "sigmoid", "softplus")
    return env_list("BENCH_ACTS", default, ALL_ACTS)


def dtypes() -> tuple[str, ...]:
    return env_list("BENCH_DTYPES", ("float32", "bfloat16"), tuple(DTYPES))


def sizes() -> tuple[str, ...]:
    default = ("small", "4Mi", "64Mi") if on_gpu() else ("small", "4Mi")
    if on_gpu() and quick():
        default = ("small", "64Mi")
    return env_list("BENCH_SIZES", default, tuple(SIZES))


def backend_providers() -> list[str]:
    """``bk-<name>`` for every backend usable on the benchmark device (triton under its CPU interpreter is not a
    performance provider and is left out)."""
    dev = device()
    names = bk.available_backends(dev)
    if dev.type == "cpu":
        names = [n for n in names if n != "triton"]
    return [f"bk-{n}" for n in names]


def providers() -> list[str]:
    return [*BASELINES, *backend_providers()]


# ---- the two baselines ----------------------------------------------------------------------------------------


def _naive(x, zc, act: A.Activation):
    """ρ(x + ρ⁻¹(zc)) the way it is written by hand with torch ops (zc already clamped)."""
    k, p = act.kind, act.param
    if k == "sigmoid":
        return torch.sigmoid(x + torch.logit(zc))
    if k == "tanh":
        return torch.tanh(x + torch.atanh(zc))
    if k == "scaled_tanh":
        a, b = A.SCALED_TANH_A, A.SCALED_TANH_B
        return a * torch.tanh(b * x + torch.atanh(zc / a))
    if k == "atan":
        return torch.atan(x + torch.tan(zc))
    if k == "sin":
        return torch.sin(x + torch.asin(zc))
    if k == "asinh":
        return torch.asinh(x + torch.sinh(zc))
    if k == "isru":
        u = x + zc / torch.sqrt(1 - zc * zc)
        return u / torch.sqrt(1 + u * u)
    if k == "softplus":
        # softplus⁻¹(z) = z + log(1 − e^{−βz})/β (bregmanet's stable branch)
        return F.softplus(x + zc + torch.log(-torch.expm1(-p * zc)) / p, beta=p)
    if k == "relu":
        # bent identity (u + √(u² + 1))/2, inverse z − 1/(4z)
        u = x + zc - 0.25 / zc
        return 0.5 * (u + torch.sqrt(u * u + 1))
    raise ValueError(k)


def composite_fn(act_name: str, eps: float = EPS):
    """The eager composite baseline: clamp with torch.clamp in the input dtype, then the hand-written formula."""
    act = bk.get_activation(act_name)
    lo = act.lo + eps if math.isfinite(act.lo) else None
    hi = act.hi - eps if math.isfinite(act.hi) else None

    def f(x, z):
        zc = z if lo is None and hi is None else torch.clamp(z, lo, hi)
        return _naive(x, zc, act)

    return f


def careful_fn(act_name: str, eps: float = EPS):
    """The careful composite (backends/eager.py's math, fp32 compute for 16-bit inputs) with plain autograd."""
    act = bk.get_activation(act_name)

    def f(x, z):
        ct = E.compute_dtype(x.dtype)
        lo, hi = act.bounds(eps, x.dtype)
        return E._y(x.to(ct), E._clamp(z.to(ct), lo, hi), act.code, act.param).to(x.dtype)

    return f


_COMPILED: dict = {}


def compiled_fn(act_name: str):
    """torch.compile of :func:`careful_fn`, one compiled function per activation (dynamic shapes: one graph per
    dtype and grad mode serves every size)."""
    if act_name not in _COMPILED:
        _COMPILED[act_name] = torch.compile(careful_fn(act_name), dynamic=True)
    return _COMPILED[act_name]


def op_fn(provider: str, act_name: str):
    """The callable f(x, z) -> y of an op-level provider."""
    if provider == "composite":
        return composite_fn(act_name)
    if provider == "compiled":
        return compiled_fn(act_name)
    if provider.startswith("bk-"):
        name = provider[3:]
        return lambda x, z: bk.bregman_activation(x, z, act_name, eps=EPS, backend=name)
    raise ValueError(f"unknown provider {provider!r}")


# ---- inputs ---------------------------------------------------------------------------------------------------


def make_inputs(act_name: str, numel: int, dtype: torch.dtype, dev: torch.device, seed: int = 0):
    """x ~ N(0, 1) and z spread over ρ's range (inside it by 1e-3 of the width), shape (numel / ROW, ROW)."""
    act = bk.get_activation(act_name)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    shape = (max(1, numel // ROW), min(numel, ROW))
    x = torch.randn(shape, generator=gen)
    r = torch.rand(shape, generator=gen)
    lo = act.lo if math.isfinite(act.lo) else -3.0
    hi = act.hi if math.isfinite(act.hi) else lo + 3.0 if math.isfinite(act.lo) else 3.0
    z = lo + (hi - lo) * (1e-3 + (1 - 2e-3) * r)
    return x.to(dev, dtype), z.to(dev, dtype)


def step_fn(f, x, z, mode: str):
    """A zero-argument callable running one forward ("fwd", no graph) or forward + backward ("fwdbwd", gradients
    by torch.autograd.grad with a fixed dense upstream gradient: nothing accumulates between calls)."""
    if mode == "fwd":
        def run():
            with torch.no_grad():
                return f(x, z)
        return run
    xr, zr = x.detach().requires_grad_(), z.detach().requires_grad_()
    g = torch.randn_like(x)

    def run_bwd():
        y = f(xr, zr)
        return torch.autograd.grad(y, (xr, zr), g)

    return run_bwd


def bytes_moved(numel: int, dtype: torch.dtype, mode: str) -> int:
    """Minimum traffic of a fused implementation: forward reads x, z and writes y (3 tensors); backward reads
    grad, x, z and writes gx, gz (5 more)."""
    return (3 if mode == "fwd" else 8) * numel * torch.empty((), dtype=dtype).element_size()


# ---- timing ---------------------------------------------------------------------------------------------------


def sync(dev: torch.device | None = None) -> None:
    if (dev or device()).type == "cuda":
        torch.cuda.synchronize()


def synced_timer() -> float:
    """perf_counter after draining the GPU queue: a timed loop of launches ends when the GPU work has finished."""
    torch.cuda.synchronize()
    return time.perf_counter()


def median_time(fn, dev: torch.device, reps: int = 10, warmup: int = 2) -> float:
    """Median seconds per call of ``fn``: CUDA events on the GPU, perf_counter on the CPU."""
    for _ in range(warmup):
        fn()
    times = []
    if dev.type == "cuda":
        torch.cuda.synchronize()
        for _ in range(reps):
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            fn()
            b.record()
            b.synchronize()
            times.append(a.elapsed_time(b) / 1e3)
    else:
        for _ in range(reps):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
    return statistics.median(times)


_COPY: dict = {}


def copy_bandwidth(numel: int, dtype: torch.dtype, dev: torch.device) -> float:
    """Bytes/s of ``torch.empty_like(x).copy_(x)`` (read + write) for an input of this size, measured once per
    run: the achievable-bandwidth yardstick of the same machine and moment."""
    key = (numel, dtype, str(dev))
    if key not in _COPY:
        x = torch.randn(max(1, numel // ROW), min(numel, ROW), device=dev).to(dtype)
        t = median_time(lambda: torch.empty_like(x).copy_(x), dev, reps=20 if numel < (8 << 20) else 10)
        _COPY[key] = 2 * x.numel() * x.element_size() / t
    return _COPY[key]


def plan(fn, dev: torch.device, budget_s: float, min_rounds: int = 3, max_rounds: int = 50,
         round_s: float = 2e-3) -> tuple[int, int]:
    """(rounds, iterations) for benchmark.pedantic: a round lasts at least ``round_s``, all rounds about
    ``budget_s`` (at least ``min_rounds``). Runs ``fn`` twice first (compilation, caches)."""
    fn()
    sync(dev)
    t = time.perf_counter()
    fn()
    sync(dev)
    dt = max(time.perf_counter() - t, 1e-7)
    iterations = max(1, math.ceil(round_s / dt))
    rounds = int(min(max_rounds, max(min_rounds, budget_s / (dt * iterations))))
    return rounds, iterations


def run_benchmark(benchmark, fn, dev: torch.device, budget_s: float, **kw):
    """Time ``fn`` with pytest-benchmark (GPU: every timer reading drains the queue first). :func:`plan` has
    already run it twice, so no further warm-up round."""
    if dev.type == "cuda":
        benchmark._timer = synced_timer  # pytest-benchmark reads the clock through this attribute
    rounds, iterations = plan(fn, dev, budget_s, **kw)
    benchmark.extra_info.update(rounds=rounds, iterations=iterations)
    return benchmark.pedantic(fn, rounds=rounds, iterations=iterations)


def thread_info(dev: torch.device) -> dict:
    return {"threads": torch.get_num_threads()} if dev.type == "cpu" else {"gpu": torch.cuda.get_device_name(dev)}


# ---- memory saved for backward --------------------------------------------------------------------------------


def saved_bytes(fn, inputs=()) -> tuple[int, int]:
    """(all, extra): bytes of the distinct storages autograd saves for backward while ``fn()`` runs, and of those
    that are not the storage of one of ``inputs`` (the memory a graph holds beyond its inputs). Views of one
    storage count once."""
    seen: dict = {}

    def pack(t):
        st = t.untyped_storage()
        seen[(st.data_ptr(), str(t.device))] = st.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    del out
    own = {(t.untyped_storage().data_ptr(), str(t.device)) for t in inputs}
    return sum(seen.values()), sum(v for k, v in seen.items() if k not in own)

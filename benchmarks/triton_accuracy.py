"""Accuracy of the Triton backend's math, for docs/triton_accuracy.md.

1. The elementary functions that triton_kernels.py builds from primitives (and the primitives it wraps), in ulps
   against a 50-digit mpmath reference, fp32 and fp64, over each function's domain.
2. Every activation's forward and both gradients in fp32, against the fp64 eager composite on the same inputs,
   next to the eager backend's own fp32 error on those inputs.

Runs the kernels where triton runs them: on the GPU when one is present (``--device cuda``), else under Triton's
interpreter (TRITON_INTERPRET=1 is set here before triton loads). Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import math
import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

import mpmath  # noqa: E402
import numpy as np  # noqa: E402
import triton  # noqa: E402

import bregman_kernels as bk  # noqa: E402
from bregman_kernels.backends import eager, triton_ops  # noqa: E402
from bregman_kernels.backends import triton_math as M  # noqa: E402

mpmath.mp.dps = 50
FUNCS = M.UNARY_FUNCS


def _mixed(rng, lo, hi, n, logspan=None):
    """Uniform on [lo, hi], plus log-uniform magnitudes over ``logspan`` (both signs where lo < 0)."""
    parts = [rng.uniform(lo, hi, n)]
    if logspan is not None:
        mag = np.exp(rng.uniform(*logspan, n))
        parts.append(mag if lo >= 0 else mag * rng.choice([-1.0, 1.0], n))
    return np.concatenate(parts)


def _domain(name: str, rng, n: int):
    """Samples over the function's domain, where the kernels use it (tan/asin: inside the clamp bounds)."""
    if name == "exp":
        return _mixed(rng, -103.0, 88.0, n, (-30, 4))
    if name == "log":
        return _mixed(rng, 0.0, 4.0, n, (-100, 88))
    if name == "log1p":
        return np.concatenate([_mixed(rng, 0.0, 4.0, n, (-40, 80)), -np.exp(rng.uniform(-40, -0.01, n)),
                               -1 + np.exp(rng.uniform(-16, -1, n))])
    if name in ("expm1", "sinh", "cosh"):
        return _mixed(rng, -20.0, 20.0, n, (-40, 4.4))
    if name in ("tanh", "sigmoid", "atan", "asinh"):
        return _mixed(rng, -20.0, 20.0, n, (-40, 40))
    if name == "tan":
        return np.concatenate([rng.uniform(-1.5707, 1.5707, n), (math.pi / 2 - 1e-5) - np.exp(rng.uniform(-12, 0, n))])
    # asin
    return np.concatenate([rng.uniform(-1, 1, n), 1 - np.exp(rng.uniform(-11.5, 0, n)), np.exp(rng.uniform(-40, 0, n))])


_MP = {"exp": mpmath.exp, "log": mpmath.log, "log1p": mpmath.log1p, "expm1": mpmath.expm1, "tanh": mpmath.tanh,
       "sigmoid": lambda v: 1 / (1 + mpmath.exp(-v)), "sinh": mpmath.sinh, "cosh": mpmath.cosh,
       "asinh": mpmath.asinh, "atan": mpmath.atan, "tan": mpmath.tan, "asin": mpmath.asin}


def _ulps(got: np.ndarray, ref: list, dtype) -> float:
    """Max |got − ref| in units of the last place of ref rounded to ``dtype`` (finite, nonzero refs)."""
    worst = 0.0
    for g, r in zip(got.tolist(), ref):
        rf = float(r)
        if not math.isfinite(rf) or rf == 0.0 or abs(rf) < np.finfo(dtype).tiny:
            continue
        ulp = float(np.spacing(dtype(abs(rf))))
        worst = max(worst, float(abs(mpmath.mpf(g) - r) / ulp))
    return worst


def elementary(device: str, n: int) -> list[tuple]:
    rows = []
    rng = np.random.default_rng(0)
    for code, name in enumerate(FUNCS):
        xs = _domain(name, rng, n)
        row = [name]
        for tdt, ndt in ((torch.float32, np.float32), (torch.float64, np.float64)):
            x = torch.from_numpy(xs).to(tdt).to(device)
            out = torch.empty_like(x)
            with triton_ops._quiet():
                M.unary_kernel[(triton.cdiv(x.numel(), 1024),)](x, out, x.numel(), FN=code,
                                                                FP64=tdt == torch.float64, BLOCK=1024)
            ref = [_MP[name](mpmath.mpf(v)) for v in x.cpu().double().tolist()]
            row.append(_ulps(out.cpu().double().numpy(), ref, ndt))
        rows.append(tuple(row))
    return rows


def _samples(act, n, rng):
    """x: N(0, 3²) with a tail to ±1e4; z: over the range, log-spaced toward the bounds and beyond them."""
    x = np.concatenate([rng.normal(0, 3, n), rng.normal(0, 3, n) * np.exp(rng.uniform(0, 8, n))])
    lo = act.lo if math.isfinite(act.lo) else -30.0
    hi = act.hi if math.isfinite(act.hi) else 30.0
    near = np.exp(rng.uniform(-14, -1, n)) * (hi - lo)
    z = np.concatenate([rng.uniform(lo, hi, n), lo + near if math.isfinite(act.lo) else rng.uniform(lo, hi, n)])
    if math.isfinite(act.hi):
        z[::3] = hi - near[: len(z[::3])]
    if act.kind in ("softplus", "relu"):
        z[1::4] = np.exp(rng.uniform(-12, 4, len(z[1::4])))
    return torch.from_numpy(x), torch.from_numpy(rng.permutation(z))


def _relerr(got, ref):
    # relative error; 0 where both are NaN, or where both are below fp32's smallest normal (underflow, not error)
    tiny = 1.1754943508222875e-38
    d = (got.double() - ref).abs() / ref.abs().clamp_min(tiny)
    d[(got.double() == ref) | (got.isnan() & ref.isnan()) | ((ref.abs() < tiny) & (got.double().abs() < tiny))] = 0.0
    return d


def activations(device: str, n: int) -> list[tuple]:
    rows = []
    rng = np.random.default_rng(1)
    for name in ("sigmoid", "tanh", "scaled_tanh", "atan", "sin", "asinh", "isru", "softplus", "softplus10", "relu"):
        act = bk.get_activation(name)
        x64, z64 = _samples(act, n, rng)
        x, z = x64.float(), z64.float()
        g = torch.ones_like(x)
        lo, hi = act.bounds(1e-5, torch.float32)
        ref = (eager.forward(x.double(), z.double(), act.code, act.param, lo, hi),
               *eager.backward(g.double(), x.double(), z.double(), act.code, act.param, lo, hi))
        dev = [t.to(device) for t in (g, x, z)]
        tri = (triton_ops.triton_fwd(*dev[1:], act.code, act.param, lo, hi),
               *triton_ops.triton_bwd(*dev, act.code, act.param, lo, hi))
        eag = (eager.forward(x, z, act.code, act.param, lo, hi), *eager.backward(g, x, z, act.code, act.param, lo, hi))
        row = [name]
        for t, e, r in zip(tri, eag, ref):
            et, ee = _relerr(t.cpu(), r), _relerr(e, r)
            row += [et.max().item(), ee.max().item(), et.quantile(0.999).item()]
        rows.append(tuple(row))
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("-n", type=int, default=4000, help="samples per function / activation part")
    a = p.parse_args()
    where = torch.cuda.get_device_name() if a.device == "cuda" else "Triton interpreter (CPU, numpy)"
    print(f"Kernels run on: {where}; torch {torch.__version__}, triton {triton.__version__}\n")
    print("| function | fp32 max ulp | fp64 max ulp |\n|---|---|---|")
    for name, e32, e64 in elementary(a.device, a.n):
        print(f"| {name} | {e32:.2f} | {e64:.2f} |")
    print("\n| activation | y: triton | y: eager | y: triton p99.9 | ∂x: triton | ∂x: eager | ∂x: triton p99.9 "
          "| ∂z: triton | ∂z: eager | ∂z: triton p99.9 |\n|---|---|---|---|---|---|---|---|---|---|")
    for row in activations(a.device, a.n):
        print(f"| {row[0]} | " + " | ".join(f"{v:.2e}" for v in row[1:]) + " |")


if __name__ == "__main__":
    main()

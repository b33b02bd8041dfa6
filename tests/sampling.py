"""Test inputs over each activation's whole domain: interior, within 1e-6 of the range and clamp bounds, at the
clamp bounds exactly, beyond them; x mostly moderate with some large values."""

import math

import torch

import bregman_kernels as bk

EPS = 1e-5
ACTIVATIONS = ["sigmoid", "tanh", "scaled_tanh", "atan", "sin", "asinh", "isru", "softplus", "softplus10", "relu"]
DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]


def _z_points(act, lo_b, hi_b):
    if act.kind == "asinh":
        return [0.0, 1e-3, -1e-3, 1e-30, 19.9, 20.5, -21.0, 25.0, -30.0, 5.0]
    pts = [lo_b, math.nextafter(lo_b, math.inf), math.nextafter(lo_b, -math.inf), act.lo + 1e-6, act.lo - 0.5]
    if math.isfinite(act.hi):
        pts += [hi_b, math.nextafter(hi_b, -math.inf), math.nextafter(hi_b, math.inf), act.hi - 1e-6,
                act.hi + 0.5, 0.5 * (act.lo + act.hi), act.hi - 1e-3, act.lo + 1e-3]
    else:
        pts += [1e-3, 2e-5, 0.05, 0.5, 1.0, 10.0, 50.0]
    return pts


def sample(name, dtype, n=1023, seed=0):
    """(x, z) of ``n`` elements in ``dtype`` covering the domain of activation ``name``."""
    act = bk.get_activation(name)
    lo_b, hi_b = act.bounds(EPS, torch.float64)
    gen = torch.Generator().manual_seed(seed)
    u = torch.rand(n, generator=gen, dtype=torch.float64)
    if act.kind == "asinh":
        z = (u * 2 - 1) * 25
    elif math.isfinite(act.hi):
        z = act.lo + (act.hi - act.lo) * u
    else:
        z = torch.exp(u * 10 - 7)  # (1e-3, 20) log-uniform
    pts = torch.tensor(_z_points(act, lo_b, hi_b), dtype=torch.float64)
    z[: pts.numel()] = pts[:n]
    x = torch.randn(n, generator=gen, dtype=torch.float64) * 1.5
    extra = torch.tensor([0.0, 8.0, -8.0, 1e-4], dtype=torch.float64)[: max(0, n - pts.numel())]
    x[pts.numel(): pts.numel() + extra.numel()] = extra
    x[: pts.numel()] = torch.where(torch.arange(pts.numel()) % 2 == 0, 0.0, x[: pts.numel()])
    return x.to(dtype), z.to(dtype)

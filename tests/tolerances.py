"""One tolerance table for every backend, and the comparison against the fp64 oracle.

An output of dtype D may differ from the oracle by
    OUT_ULP[D]·|ref|  (rounding the result once to D)  +  K·UNIT[D]·|ref|  (a few roundings in the compute type)
    + the conditioning term (the oracle's own change when u = x + ρ⁻¹(zc) moves by K·UNIT[D]·(|x| + |ρ⁻¹(zc)|))
    + ATOL[D] (underflow).
UNIT is the compute type's unit roundoff (fp32 for 16-bit inputs); for fp64 it is the fp64 oracle's accuracy.
"""

import oracle
import torch

UNIT = {torch.float64: 1e-11, torch.float32: 2.0**-24, torch.float16: 2.0**-24, torch.bfloat16: 2.0**-24}
OUT_ULP = {torch.float64: 0.0, torch.float32: 0.0, torch.float16: 2.0**-11, torch.bfloat16: 2.0**-8}
ATOL = {torch.float64: 1e-290, torch.float32: 1e-35, torch.float16: 6e-8, torch.bfloat16: 1e-35}
K = 16


def check_against_oracle(act, x, z, g, lo, hi, outs, what=""):
    """Assert that outs = (y, ∂L/∂x, ∂L/∂z) of dtype x.dtype match the fp64 oracle within the table."""
    dt = x.dtype
    beta = act.param or 1.0
    (ref, spread) = oracle.conditioning(x, z, g, act.kind, lo, hi, beta, K * UNIT[dt])
    for name, out, r, s in zip(("y", "grad_x", "grad_z"), outs, ref, spread):
        assert out.dtype == dt and out.shape == x.shape, f"{what} {name}: {out.dtype} {tuple(out.shape)}"
        o = out.double()
        nan_out, nan_ref = o.isnan(), r.isnan()
        assert torch.equal(nan_out, nan_ref), f"{what} {name}: NaN pattern differs at {_first(nan_out ^ nan_ref)}"
        tol = (OUT_ULP[dt] + K * UNIT[dt]) * r.abs() + s + ATOL[dt]
        err = (o - r).abs()
        same_inf = o.isinf() & r.isinf() & (o == r)
        bad = ~(err <= tol) & ~same_inf & ~nan_ref
        if bad.any():
            i = _first(bad)
            raise AssertionError(f"{what} {name}: {int(bad.sum())} elements off; first at {i}: x={x[i].item()!r} "
                                 f"z={z[i].item()!r} got {o[i].item()!r} want {r[i].item()!r} tol {tol[i].item():.3g}")


def _first(mask):
    return tuple(int(i) for i in mask.nonzero()[0])

"""Errors no worse than ~2× PyTorch's own: each backend against the plain composite run in the same dtype.

Both are measured against the fp64 oracle over the domain sample, on the elements where PyTorch's composite is
finite (it overflows where ours must not: those are pinned in test_pitfalls.py). Max absolute error per output;
allowed: 2 × PyTorch's + FLOOR ulps of the largest reference value. (In fp64 PyTorch's composite is the oracle
itself; fp64 is held to the oracle tolerance in test_op.py.)
"""

import oracle
import pytest
import torch
from sampling import ACTIVATIONS, DTYPES, EPS, sample
from test_op import CASES, IDS, run

import bregman_kernels as bk

ULP = {torch.float64: 2.0**-52, torch.float32: 2.0**-23, torch.float16: 2.0**-10, torch.bfloat16: 2.0**-7}
FLOOR = 4


def _composite_in(dtype, x, z, g, act, lo, hi):
    x = x.detach().to(dtype).requires_grad_()
    z = z.detach().to(dtype).requires_grad_()
    y = oracle.bregman(x, z, act.kind, lo, hi, act.param or 1.0)
    gx, gz = torch.autograd.grad(y, (x, z), g.to(dtype))
    return y.detach(), gx, gz


@pytest.mark.parametrize("dtype", [d for d in DTYPES if d != torch.float64], ids=str)
@pytest.mark.parametrize("backend,device", CASES, ids=IDS)
def test_no_worse_than_twice_pytorch(backend, device, dtype):
    for name in ACTIVATIONS:
        act = bk.get_activation(name)
        x, z = sample(name, dtype, n=511, seed=5)
        g = torch.randn(x.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(2)).to(dtype)
        lo, hi = act.bounds(EPS, dtype)
        ref = oracle.bregman_with_grads(x, z, g, act.kind, lo, hi, act.param or 1.0)
        ours = [o.cpu() for o in run(x.to(device), z.to(device), g.to(device), name, backend)]
        theirs = _composite_in(dtype, x, z, g, act, lo, hi)
        for what, o, t, r in zip(("y", "grad_x", "grad_z"), ours, theirs, ref):
            ok = t.double().isfinite() & r.isfinite()
            e_ours = (o.double() - r)[ok].abs().max().item()
            e_torch = (t.double() - r)[ok].abs().max().item()
            allowed = 2 * e_torch + FLOOR * ULP[dtype] * r[ok].abs().max().item()
            assert e_ours <= allowed, f"{name} {what}: ours {e_ours:.3g}, PyTorch {e_torch:.3g}, allowed {allowed:.3g}"

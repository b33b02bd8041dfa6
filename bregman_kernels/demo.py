"""Self-check and speed demo: every available backend on real-shaped tensors against the plain autograd composite.

    python -m bregman_kernels.demo [--device cpu|cuda] [--numel N] [--activation NAME]
"""

from __future__ import annotations

import argparse
import time

import torch

from . import available_backends, bregman_activation, get_activation


def _plain(x, z, act, eps):
    """What one writes without this package: ρ(x + ρ⁻¹(clamp(z))) with torch ops and autograd."""
    lo, hi = act.bounds(eps, x.dtype)
    zc = torch.clamp(z, lo, hi) if act.kind not in ("asinh",) else z
    return act.rho(x + act.rho_inv(zc))


def _time(fn, reps):
    fn()
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / reps


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--numel", type=int, default=1 << 20)
    p.add_argument("--activation", default="tanh")
    p.add_argument("--reps", type=int, default=5)
    a = p.parse_args(argv)
    act = get_activation(a.activation)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(a.numel, generator=gen).to(a.device)
    lo = act.lo if act.lo > -1e30 else -3.0
    hi = act.hi if act.hi < 1e30 else 3.0
    z = (lo + (hi - lo) * torch.rand(a.numel, generator=gen)).to(a.device)
    ref = _plain(x.double(), z.double(), act, 1e-5)
    print(f"Bregman activation '{act.name}' on {a.numel} fp32 elements ({a.device}, {torch.get_num_threads()} threads)")
    print(f"{'backend':>8} {'max |err| vs fp64':>18} {'fwd+bwd ms':>11} {'speed-up':>9}")

    def step(fn):
        xr, zr = x.detach().requires_grad_(), z.detach().requires_grad_()
        fn(xr, zr).sum().backward()

    base = _time(lambda: step(lambda xx, zz: _plain(xx, zz, act, 1e-5)), a.reps)
    print(f"{'plain':>8} {(_plain(x, z, act, 1e-5).double() - ref).abs().max().item():>18.3g} "
          f"{base * 1e3:>11.2f} {1.0:>8.2f}x")
    for b in available_backends(a.device):
        err = (bregman_activation(x, z, act, backend=b).double() - ref).abs().max().item()
        t = _time(lambda b=b: step(lambda xx, zz: bregman_activation(xx, zz, act, backend=b)), a.reps)
        print(f"{b:>8} {err:>18.3g} {t * 1e3:>11.2f} {base / t:>8.2f}x")


if __name__ == "__main__":
    main()

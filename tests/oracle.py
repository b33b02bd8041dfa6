"""An independent fp64 oracle: the Bregman activation written plainly with torch ops, autograd through it.

Written apart from bregman_kernels' own math (no shared code): torch built-ins where they are accurate in fp64,
the stable textbook form where the plain one cancels even in fp64 (softplus inverse, the bent identity for u < 0).
"""


import torch
import torch.nn.functional as F

A_ST, B_ST = 1.7159, 0.6666


def _inverse(kind, zc, beta):
    return {
        "sigmoid": lambda: torch.logit(zc),
        "tanh": lambda: torch.atanh(zc),
        "scaled_tanh": lambda: torch.atanh(zc / A_ST) / B_ST,
        "atan": lambda: torch.tan(zc),
        "sin": lambda: torch.asin(zc),
        "asinh": lambda: torch.sinh(zc),
        "isru": lambda: zc / torch.sqrt(1 - zc * zc),
        "softplus": lambda: zc + torch.log(-torch.expm1(-beta * zc)) / beta,
        "relu": lambda: zc - 1 / (4 * zc),
    }[kind]()


def _forward(kind, u, beta):
    if kind == "relu":
        h = torch.sqrt(u * u + 1)
        return torch.where(u < 0, 0.5 / (h - u), 0.5 * (u + h))
    return {
        "sigmoid": lambda: torch.sigmoid(u),
        "tanh": lambda: torch.tanh(u),
        "scaled_tanh": lambda: A_ST * torch.tanh(B_ST * u),
        "atan": lambda: torch.atan(u),
        "sin": lambda: torch.sin(u),
        "asinh": lambda: torch.asinh(u),
        "isru": lambda: u / torch.sqrt(1 + u * u),
        "softplus": lambda: F.softplus(u, beta=beta, threshold=30.0),
    }[kind]()


def bregman(x, z, kind, lo, hi, beta=1000.0):
    """y = ρ(x + ρ⁻¹(clamp(z, lo, hi))) in the dtype of x and z (fp64 for the oracle)."""
    return _forward(kind, x + inverse(z, kind, lo, hi, beta), beta)


def inverse(z, kind, lo, hi, beta=1000.0):
    """ρ⁻¹(clamp(z, lo, hi)). The clamp passes the gradient for lo ≤ z ≤ hi, bounds included (written with
    comparisons: torch.clamp with scalar bounds passes none exactly at a bound in recent releases)."""
    zc = torch.where(z < lo, lo, torch.where(z > hi, hi, z))
    return _inverse(kind, zc, beta)


def bregman_with_grads(x, z, g, kind, lo, hi, beta=1000.0):
    """(y, ∂L/∂x, ∂L/∂z) in fp64 for upstream gradient g, by autograd through the plain composite."""
    x = x.detach().double().requires_grad_()
    z = z.detach().double().requires_grad_()
    y = bregman(x, z, kind, lo, hi, beta)
    gx, gz = torch.autograd.grad(y, (x, z), g.double())
    return y.detach(), gx, gz


def conditioning(x, z, g, kind, lo, hi, beta, rel):
    """How much (y, ∂L/∂x, ∂L/∂z) move when u = x + ρ⁻¹(zc) is perturbed by rel·(|x| + |ρ⁻¹(zc)|): the error
    a backend incurs, whatever its formulas, from rounding u once in a precision of unit roundoff ``rel``."""
    x, z = x.double(), z.double()
    delta = rel * (x.abs() + inverse(z, kind, lo, hi, beta).abs())
    ref = bregman_with_grads(x, z, g, kind, lo, hi, beta)
    moved = [bregman_with_grads(x + s * delta, z, g, kind, lo, hi, beta) for s in (1.0, -1.0)]
    return ref, [torch.maximum((a - r).abs(), (b - r).abs()).nan_to_num(0.0) for r, a, b in zip(ref, *moved)]

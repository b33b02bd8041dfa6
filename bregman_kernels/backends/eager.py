"""The "eager" backend: the math contract written with torch ops (any device, any float dtype).

It is the reference every other backend mirrors (csrc/bregman_math.h, triton_kernels.py) and runs as the
``bregman_kernels::eager_fwd`` / ``eager_bwd`` custom ops. Notation, per element:
    zc = clamp(z, lo, hi)          (lo, hi: clamp bounds already holding eps; NaN passes through)
    u  = x + ρ⁻¹(zc),  y = ρ(u)
    ∂y/∂x = ρ'(u),     ∂y/∂z = ρ'(u) · (ρ⁻¹)'(zc)  where lo ≤ z ≤ hi, else 0
16-bit inputs are computed in fp32 and rounded once; fp64 in fp64.
"""

from __future__ import annotations

import math

import torch

from .. import activations as A

_LN2 = math.log(2.0)
# asinh: beyond |z| > _ASINH_BIG, sinh(z) = sign(z)·e^|z|/2 to within e^-2|z| relative; the scaled form is used.
_ASINH_BIG = 20.0


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


# ---- shared pieces --------------------------------------------------------------------------------------------


def _inv_hypot1(u):
    # 1/√(1 + u²) without overflowing u²: for |u| > 1, (1/|u|) / √(1 + 1/u²)
    a = u.abs()
    r = 1.0 / a.clamp_min(1.0)
    return torch.where(a > 1, r * torch.rsqrt(1 + r * r), torch.rsqrt(1 + a * a))


def _a_minus(t):
    # A − t for scaled_tanh's A as (A_HI − t) + A_LO, A_HI the compute type's A (A_HI − t exact near the bound)
    if t.dtype == torch.float64:
        return (A.SCALED_TANH_A - t) + A.SCALED_TANH_A_LO64
    return (A.SCALED_TANH_A_HI32 - t) + A.SCALED_TANH_A_LO32


def _atanh_scaled(z, a_minus):
    # atanh(z/a) = ½·log1p(2|z| / (a − |z|)), odd in z; a − |z| accurate near the bound
    t = z.abs()
    return torch.copysign(0.5 * torch.log1p(2 * t / a_minus(t)), z)


def _dtanh(u, b):
    # d/du tanh(b·u) = 4t / (1 + t)², t = e^{−2b|u|}: no cancellation in 1 − tanh² at saturation
    t = torch.exp(-2 * b * u.abs())
    return 4 * t / ((1 + t) * (1 + t))


def _logit(z):
    # logit(z) = log(z / (1 − z)); for z ≥ ¼ as log1p((2z − 1) / (1 − z)), 2z − 1 exact: accurate near z = ½
    return torch.where(z < 0.25, torch.log(z / (1 - z)), torch.log1p((2 * z - 1) / (1 - z)))


def _one_minus_sq(z):
    # 1 − z² as (1 − z)(1 + z): exact factors near ±1
    return (1 - z) * (1 + z)


# ---- ρ⁻¹, ρ, ρ', (ρ⁻¹)' per activation (asinh has its own joint formulas below) -----------------------------


def _inv(z, code, p):
    if code == A.SIGMOID:
        return _logit(z)
    if code == A.TANH:
        return _atanh_scaled(z, lambda t: 1 - t)
    if code == A.SCALED_TANH:
        return _atanh_scaled(z, _a_minus) / A.SCALED_TANH_B
    if code == A.ATAN:
        return torch.tan(z)
    if code == A.SIN:
        return torch.asin(z)
    if code == A.ASINH:
        return torch.sinh(z)
    if code == A.ISRU:
        # z / √(1 − z²)
        return z * torch.rsqrt(_one_minus_sq(z))
    if code == A.SOFTPLUS:
        # log(expm1(βz))/β = z + log(−expm1(−βz))/β: no overflow for large βz, accurate for small βz
        return z + torch.log(-torch.expm1(-p * z)) / p
    if code == A.RELU:
        # inverse of the bent identity (u + √(u² + 1))/2: z − 1/(4z)
        return z - 0.25 / z
    raise ValueError(f"unknown activation code {code}")


def _rho(u, code, p):
    if code == A.SIGMOID:
        return torch.sigmoid(u)
    if code == A.TANH:
        return torch.tanh(u)
    if code == A.SCALED_TANH:
        return A.SCALED_TANH_A * torch.tanh(A.SCALED_TANH_B * u)
    if code == A.ATAN:
        return torch.atan(u)
    if code == A.SIN:
        return torch.sin(u)
    if code == A.ASINH:
        return torch.asinh(u)
    if code == A.ISRU:
        # u/√(1 + u²); for |u| > 1 as sign(u)/√(1 + 1/u²) (finite at ±inf)
        r = 1.0 / u.abs().clamp_min(1.0)
        return torch.where(u.abs() > 1, torch.copysign(torch.rsqrt(1 + r * r), u), u * torch.rsqrt(1 + u * u))
    if code == A.SOFTPLUS:
        # softplus_β(u) = (max(βu, 0) + log1p(e^{−|βu|})) / β
        t = p * u
        return (torch.relu(t) + torch.log1p(torch.exp(-t.abs()))) / p
    if code == A.RELU:
        # (u + h)/2 for u ≥ 0, 1/(2(h − u)) for u < 0 (no cancellation), h = √(u² + 1)
        h = 1.0 / _inv_hypot1(u)
        return torch.where(u >= 0, 0.5 * (u + h), 0.5 / (h - u))
    raise ValueError(f"unknown activation code {code}")


def _drho(u, code, p):
    if code == A.SIGMOID:
        # σ'(u) = e^{−|u|} / (1 + e^{−|u|})²
        e = torch.exp(-u.abs())
        return e / ((1 + e) * (1 + e))
    if code == A.TANH:
        return _dtanh(u, 1.0)
    if code == A.SCALED_TANH:
        return (A.SCALED_TANH_A * A.SCALED_TANH_B) * _dtanh(u, A.SCALED_TANH_B)
    if code == A.ATAN:
        return 1.0 / (1 + u * u)
    if code == A.SIN:
        return torch.cos(u)
    if code == A.ISRU:
        # (1 + u²)^{−3/2}
        r = _inv_hypot1(u)
        return r * r * r
    if code == A.SOFTPLUS:
        return torch.sigmoid(p * u)
    if code == A.RELU:
        # ρ'(u) = (1 + u/h)/2 = (1 + isru(u))/2 for u ≥ 0;  ρ(u)/h for u < 0 (no cancellation)
        return torch.where(u >= 0, 0.5 * (1 + _rho(u, A.ISRU, p)), _rho(u, A.RELU, p) * _inv_hypot1(u))
    raise ValueError(f"unknown activation code {code}")


def _dinv(z, inv, code, p):
    if code == A.SIGMOID:
        return 1.0 / (z * (1 - z))
    if code == A.TANH:
        return 1.0 / _one_minus_sq(z)
    if code == A.SCALED_TANH:
        # A / (B·(A − z)(A + z))
        t = z.abs()
        return A.SCALED_TANH_A / (A.SCALED_TANH_B * _a_minus(t) * (A.SCALED_TANH_A + t))
    if code == A.ATAN:
        return 1 + inv * inv
    if code == A.SIN:
        return torch.rsqrt(_one_minus_sq(z))
    if code == A.ISRU:
        # (1 − z²)^{−3/2}
        r = torch.rsqrt(_one_minus_sq(z))
        return r * r * r
    if code == A.SOFTPLUS:
        return -1.0 / torch.expm1(-p * z)
    if code == A.RELU:
        return 1 + 0.25 / (z * z)
    raise ValueError(f"unknown activation code {code}")


# ---- asinh: ρ⁻¹ = sinh overflows for |z| > ~89 (fp32); beyond _ASINH_BIG work with log|u| -----------------------


def _asinh_big(x, z):
    # |z| = m > 20, s = sign(z):  u = x + sinh(z) = s·(e^m/2)·w,  w = 1 + 2·s·x·e^{−m}
    # L = log|u| = m − ln2 + log|w|,  y = sign(u)·asinh(e^L)
    m = z.abs()
    s = torch.sign(z)
    xe = torch.where(x.abs() == math.inf, x, x * torch.exp(-m))
    w = 1 + 2 * s * xe
    su = s * torch.sign(w)
    L = m - _LN2 + torch.log(w.abs())
    return m, su, L


def _asinh_fwd(x, z):
    m, su, L = _asinh_big(x, z)
    # asinh(e^L) = L + log(1 + √(1 + e^{−2L})) for L > 0, else asinh(e^L) directly
    Lp = L.clamp_min(0.0)
    big = su * torch.where(L > 0, L + torch.log(1 + torch.sqrt(1 + torch.exp(-2 * Lp))), torch.asinh(torch.exp(L)))
    small = torch.asinh(x + torch.sinh(z.clamp(-_ASINH_BIG, _ASINH_BIG)))
    return torch.where(m > _ASINH_BIG, big, small)


def _asinh_bwd(x, z):
    # ρ'(u) = 1/√(1 + u²);  ∂y/∂z = cosh(z)·ρ'(u)
    m, _, L = _asinh_big(x, z)
    Lp, Ln = L.clamp_min(0.0), L.clamp_max(0.0)
    q = torch.exp(-2 * Lp)
    # L > 0: ρ'(u) = e^{−L}/√(1 + e^{−2L});  cosh(z)·ρ'(u) = e^{m−ln2−L}/√(1 + e^{−2L}) = 1/(|w|·√(1 + e^{−2L}))
    # L ≤ 0: ρ'(u) = 1/√(1 + e^{2L});         cosh(z)·ρ'(u) = e^{m−ln2}·ρ'(u)
    d_big = torch.where(L > 0, torch.exp(-Lp) * torch.rsqrt(1 + q), torch.rsqrt(1 + torch.exp(2 * Ln)))
    dz_big = torch.where(L > 0, torch.exp(m - _LN2 - L) * torch.rsqrt(1 + q), torch.exp(m - _LN2) * d_big)
    zs = z.clamp(-_ASINH_BIG, _ASINH_BIG)
    d_small = _inv_hypot1(x + torch.sinh(zs))
    dz_small = torch.cosh(zs) * d_small
    big = m > _ASINH_BIG
    return torch.where(big, d_big, d_small), torch.where(big, dz_big, dz_small)


# ---- forward / backward ---------------------------------------------------------------------------------------


def _clamp(z, lo, hi):
    # torch.clamp propagates NaN; an infinite bound is no clamp on that side
    if lo == -math.inf and hi == math.inf:
        return z
    return torch.clamp(z, None if lo == -math.inf else lo, None if hi == math.inf else hi)


def _y(x, zc, code, p):
    if code == A.ASINH:
        return _asinh_fwd(x, zc)
    return _rho(x + _inv(zc, code, p), code, p)


def _grads(x, zc, code, p):
    """(∂y/∂x, ∂y/∂z) at the clamped point, before the clamp mask."""
    if code == A.ASINH:
        return _asinh_bwd(x, zc)
    inv = _inv(zc, code, p)
    d = _drho(x + inv, code, p)
    return d, d * _dinv(zc, inv, code, p)


def _like(result: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """``result`` in ``ref``'s dtype and in the layout of torch.empty_like(ref) (the layout every backend gives)."""
    out = torch.empty_like(ref)
    out.copy_(result)
    return out


def forward(x, z, code: int, param: float, lo: float, hi: float) -> torch.Tensor:
    ct = compute_dtype(x.dtype)
    xc, zf = x.to(ct), z.to(ct)
    return _like(_y(xc, _clamp(zf, lo, hi), code, param), x)


def backward(grad, x, z, code: int, param: float, lo: float, hi: float):
    ct = compute_dtype(x.dtype)
    g, xc, zf = grad.to(ct), x.to(ct), z.to(ct)
    d, dz = _grads(xc, _clamp(zf, lo, hi), code, param)
    zero = g == 0
    # torch.clamp's convention: gradient passes for lo ≤ z ≤ hi (inclusive), 0 outside; NaN z passes (NaN out).
    outside = (zf < lo) | (zf > hi)
    gx = torch.where(zero, 0.0, g * d)
    gz = torch.where(zero | outside, 0.0, g * dz)
    return _like(gx, x), _like(gz, z)


def rho(u: torch.Tensor, code: int, param: float) -> torch.Tensor:
    return _rho(u.to(compute_dtype(u.dtype)), code, param).to(u.dtype)


def rho_inv(z: torch.Tensor, code: int, param: float) -> torch.Tensor:
    return _inv(z.to(compute_dtype(z.dtype)), code, param).to(z.dtype)

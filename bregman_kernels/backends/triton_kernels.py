"""Triton kernels of the Bregman activation: the formulas of ``backends/eager.py``, one by one, in Triton.

Per element (notation of eager.py): zc = clamp(z, lo, hi) with NaN passing, u = x + ρ⁻¹(zc), y = ρ(u);
∂y/∂x = ρ'(u), ∂y/∂z = ρ'(u)·(ρ⁻¹)'(zc) where lo ≤ z ≤ hi, else 0; both exactly 0 where grad is 0.

The elementary functions come from triton_math.py (Triton primitives only, so that the kernels also run under
Triton's interpreter). ``FP64`` selects fp64 arithmetic; 16-bit and fp32 inputs compute in fp32. Clamps are
written with comparisons and ``tl.where`` (tl.minimum/tl.maximum would turn NaN into a bound).
"""

import triton
import triton.language as tl

from .triton_math import (
    LN2,
    asin,
    asinh,
    atan,
    cosh,
    exp,
    expm1,
    log,
    log1p,
    rsqrt,
    sgn,
    sigmoid,
    sinh,
    sqrt,
    tan,
    tanh,
)

# Activation codes (activations.py); tests check that they agree.
SIGMOID: tl.constexpr = tl.constexpr(0)
TANH: tl.constexpr = tl.constexpr(1)
SCALED_TANH: tl.constexpr = tl.constexpr(2)
ATAN: tl.constexpr = tl.constexpr(3)
SIN: tl.constexpr = tl.constexpr(4)
ASINH: tl.constexpr = tl.constexpr(5)
ISRU: tl.constexpr = tl.constexpr(6)
SOFTPLUS: tl.constexpr = tl.constexpr(7)
RELU: tl.constexpr = tl.constexpr(8)

ST_A: tl.constexpr = tl.constexpr(1.7159)  # scaled_tanh(u) = A·tanh(B·u)
ST_A_HI: tl.constexpr = tl.constexpr(1.71589994430542)  # fp32(A); A = A_HI + A_LO (activations.py)
ST_A_LO: tl.constexpr = tl.constexpr(5.5694580058940346e-08)
ST_A_LO64: tl.constexpr = tl.constexpr(1.9184653865522706e-17)  # A − fp64(A)
ST_B: tl.constexpr = tl.constexpr(0.6666)
ASINH_BIG: tl.constexpr = tl.constexpr(20.0)  # eager._ASINH_BIG


# ---- pieces shared by the activations (eager.py's helpers) -----------------------------------------------------


@triton.jit
def _inv_hypot1(u):
    # 1/√(1 + u²) without overflowing u²: for |u| > 1, (1/|u|)/√(1 + 1/u²)
    a = tl.abs(u)
    r = 1.0 / tl.where(a < 1.0, 1.0, a)
    return tl.where(a > 1.0, r * rsqrt(1.0 + r * r), rsqrt(1.0 + a * a))


@triton.jit
def _st_a_minus(t, FP64: tl.constexpr):
    # A − t for scaled_tanh's A as (A_HI − t) + A_LO, A_HI the compute type's A (A_HI − t exact near the bound)
    if FP64:
        return (-t + ST_A) + ST_A_LO64
    else:
        return (-t + ST_A_HI) + ST_A_LO


@triton.jit
def _atanh_scaled(z, a_minus_t):
    # atanh(z/a) = ½·log1p(2|z|/(a − |z|)), odd in z; a_minus_t = a − |z|
    return sgn(z, 0.5 * log1p(2.0 * tl.abs(z) / a_minus_t))


@triton.jit
def _dtanh(u, b):
    # d/du tanh(b·u) = 4t/(1 + t)², t = e^{−2b|u|}
    t = exp(tl.abs(u) * (-2.0 * b))
    return 4.0 * t / ((1.0 + t) * (1.0 + t))


@triton.jit
def _logit(z):
    # logit(z) = log(z/(1 − z)) for z < ¼, log1p((2z − 1)/(1 − z)) above
    return tl.where(z < 0.25, log(z / (1.0 - z)), log1p((2.0 * z - 1.0) / (1.0 - z)))


@triton.jit
def _one_minus_sq(z):
    # 1 − z² = (1 − z)(1 + z)
    return (1.0 - z) * (1.0 + z)


@triton.jit
def _isru(u):
    # u/√(1 + u²); sign(u)/√(1 + 1/u²) for |u| > 1
    a = tl.abs(u)
    r = 1.0 / tl.where(a < 1.0, 1.0, a)
    return tl.where(a > 1.0, sgn(u, rsqrt(1.0 + r * r)), u * rsqrt(1.0 + u * u))


@triton.jit
def _bent(u):
    # (u + h)/2 for u ≥ 0, 1/(2(h − u)) for u < 0, h = √(u² + 1)
    h = 1.0 / _inv_hypot1(u)
    return tl.where(u >= 0, 0.5 * (u + h), 0.5 / (h - u))


# ---- ρ⁻¹, ρ, ρ', (ρ⁻¹)' per activation (asinh has its own joint formulas below) -----------------------------


@triton.jit
def _inv(z, p, ACT: tl.constexpr, FP64: tl.constexpr):
    if ACT == SIGMOID:
        r = _logit(z)
    elif ACT == TANH:
        r = _atanh_scaled(z, 1.0 - tl.abs(z))
    elif ACT == SCALED_TANH:
        r = _atanh_scaled(z, _st_a_minus(tl.abs(z), FP64)) / ST_B
    elif ACT == ATAN:
        r = tan(z)
    elif ACT == SIN:
        r = asin(z, FP64)
    elif ACT == ISRU:
        # z/√(1 − z²)
        r = z * rsqrt(_one_minus_sq(z))
    elif ACT == SOFTPLUS:
        # log(expm1(βz))/β = z + log(−expm1(−βz))/β
        r = z + log(-expm1(z * (-p))) / p
    else:
        tl.static_assert(ACT == RELU)
        # inverse of the bent identity: z − 1/(4z)
        r = z - 0.25 / z
    return r


@triton.jit
def _rho(u, p, ACT: tl.constexpr, FP64: tl.constexpr):
    if ACT == SIGMOID:
        r = sigmoid(u)
    elif ACT == TANH:
        r = tanh(u, FP64)
    elif ACT == SCALED_TANH:
        r = tanh(u * ST_B, FP64) * ST_A
    elif ACT == ATAN:
        r = atan(u, FP64)
    elif ACT == SIN:
        r = tl.sin(u)
    elif ACT == ISRU:
        r = _isru(u)
    elif ACT == SOFTPLUS:
        # softplus_β(u) = (max(βu, 0) + log1p(e^{−|βu|}))/β
        t = u * p
        r = (tl.where(t < 0, 0.0, t) + log1p(exp(-tl.abs(t)))) / p
    else:
        tl.static_assert(ACT == RELU)
        r = _bent(u)
    return r


@triton.jit
def _drho(u, p, ACT: tl.constexpr):
    if ACT == SIGMOID:
        # σ'(u) = e^{−|u|}/(1 + e^{−|u|})²
        e = exp(-tl.abs(u))
        r = e / ((1.0 + e) * (1.0 + e))
    elif ACT == TANH:
        r = _dtanh(u, 1.0)
    elif ACT == SCALED_TANH:
        r = _dtanh(u, ST_B) * (ST_A * ST_B)
    elif ACT == ATAN:
        r = 1.0 / (1.0 + u * u)
    elif ACT == SIN:
        r = tl.cos(u)
    elif ACT == ISRU:
        # (1 + u²)^{−3/2}
        h = _inv_hypot1(u)
        r = h * h * h
    elif ACT == SOFTPLUS:
        r = sigmoid(u * p)
    else:
        tl.static_assert(ACT == RELU)
        # (1 + isru(u))/2 for u ≥ 0;  ρ(u)/√(1 + u²) for u < 0
        r = tl.where(u >= 0, 0.5 * (1.0 + _isru(u)), _bent(u) * _inv_hypot1(u))
    return r


@triton.jit
def _dinv(z, inv, p, ACT: tl.constexpr, FP64: tl.constexpr):
    if ACT == SIGMOID:
        r = 1.0 / (z * (1.0 - z))
    elif ACT == TANH:
        r = 1.0 / _one_minus_sq(z)
    elif ACT == SCALED_TANH:
        # A/(B·(A − |z|)(A + |z|))
        t = tl.abs(z)
        r = (tl.zeros_like(z) + ST_A) / (_st_a_minus(t, FP64) * ST_B * (t + ST_A))
    elif ACT == ATAN:
        r = 1.0 + inv * inv
    elif ACT == SIN:
        r = rsqrt(_one_minus_sq(z))
    elif ACT == ISRU:
        # (1 − z²)^{−3/2}
        h = rsqrt(_one_minus_sq(z))
        r = h * h * h
    elif ACT == SOFTPLUS:
        r = -1.0 / expm1(z * (-p))
    else:
        tl.static_assert(ACT == RELU)
        r = 1.0 + 0.25 / (z * z)
    return r


# ---- asinh: ρ⁻¹ = sinh overflows for |z| > ~89 (fp32); beyond ASINH_BIG work with log|u| ------------------------


@triton.jit
def _asinh_big(x, z):
    # |z| = m > 20, s = sign(z):  u = x + sinh(z) = s·(e^m/2)·w,  w = 1 + 2·s·x·e^{−m};  L = log|u| = m − ln2 + log|w|
    m = tl.abs(z)
    s = tl.where(z < 0, -1.0, 1.0)
    xe = tl.where(tl.abs(x) == float("inf"), x, x * exp(-m))
    w = 1.0 + 2.0 * s * xe
    su = tl.where(w < 0, -s, s)
    L = m - LN2 + log(tl.abs(w))
    return m, su, L


@triton.jit
def _asinh_small_z(z):
    # clamp(z, −20, 20), NaN passes
    return tl.where(z < -ASINH_BIG, -ASINH_BIG, tl.where(z > ASINH_BIG, ASINH_BIG, z))


@triton.jit
def _asinh_fwd(x, z):
    y = asinh(x + sinh(_asinh_small_z(z)))
    # the |z| > 20 form is evaluated only in blocks that hold such a z (a branch per block, not per element)
    if tl.max(tl.abs(z), axis=0) > ASINH_BIG:
        m, su, L = _asinh_big(x, z)
        # asinh(e^L) = L + log(1 + √(1 + e^{−2L})) for L > 0, else asinh(e^L) directly
        Lp = tl.where(L < 0, 0.0, L)
        big = su * tl.where(L > 0, L + log(1.0 + sqrt(1.0 + exp(-2.0 * Lp))), asinh(exp(L)))
        y = tl.where(m > ASINH_BIG, big, y)
    return y


@triton.jit
def _asinh_bwd(x, z):
    # ρ'(u) = 1/√(1 + u²);  ∂y/∂z = cosh(z)·ρ'(u)
    zs = _asinh_small_z(z)
    d = _inv_hypot1(x + sinh(zs))
    dz = cosh(zs) * d
    if tl.max(tl.abs(z), axis=0) > ASINH_BIG:
        m, su, L = _asinh_big(x, z)
        Lp = tl.where(L < 0, 0.0, L)
        Ln = tl.where(L > 0, 0.0, L)
        q = exp(-2.0 * Lp)
        # L > 0: ρ'(u) = e^{−L}/√(1 + e^{−2L});  cosh(z)·ρ'(u) = e^{m−ln2−L}/√(1 + e^{−2L})
        # L ≤ 0: ρ'(u) = 1/√(1 + e^{2L});         cosh(z)·ρ'(u) = e^{m−ln2}·ρ'(u)
        d_big = tl.where(L > 0, exp(-Lp) * rsqrt(1.0 + q), rsqrt(1.0 + exp(2.0 * Ln)))
        dz_big = tl.where(L > 0, exp(m - LN2 - L) * rsqrt(1.0 + q), exp(m - LN2) * d_big)
        big = m > ASINH_BIG
        d = tl.where(big, d_big, d)
        dz = tl.where(big, dz_big, dz)
    return d, dz


# ---- kernels: one program per BLOCK elements of a flat range, 64-bit offsets ---------------------------------


@triton.jit
def _load(ptr, offs, mask, FP64: tl.constexpr):
    v = tl.load(ptr + offs, mask=mask, other=0.5)
    if FP64:
        return v.to(tl.float64)
    else:
        return v.to(tl.float32)


@triton.jit
def _store(ptr, offs, v, mask):
    if ptr.dtype.element_ty == tl.bfloat16:
        # fp32 → bf16 rounded to nearest even on the bits: b + 0x7FFF + (bit 16 of b), top half (the interpreter's
        # cast truncates); NaN converted directly (its payload could carry into the sign)
        b = v.to(tl.uint32, bitcast=True)
        r = ((b + 0x7FFF + ((b >> 16) & 1)) >> 16).to(tl.uint16).to(tl.bfloat16, bitcast=True)
        out = tl.where(v != v, v.to(tl.bfloat16), r)
    else:
        out = v.to(ptr.dtype.element_ty)
    tl.store(ptr + offs, out, mask=mask)


@triton.jit
def _bounds(z, lo, hi):
    # the bounds as tensors of z's type: a comparison with a float constant would round the constant to fp32
    return tl.zeros_like(z) + lo, tl.zeros_like(z) + hi


@triton.jit
def _fwd_block(x_ptr, z_ptr, out_ptr, n, param, lo, hi, ACT: tl.constexpr, FP64: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = _load(x_ptr, offs, mask, FP64)
    z = _load(z_ptr, offs, mask, FP64)
    # zc = clamp(z, lo, hi), NaN passes
    lo, hi = _bounds(z, lo, hi)
    zc = tl.where(z < lo, lo, tl.where(z > hi, hi, z))
    if ACT == ASINH:
        y = _asinh_fwd(x, zc)
    else:
        # y = ρ(x + ρ⁻¹(zc))
        y = _rho(x + _inv(zc, param, ACT, FP64), param, ACT, FP64)
    _store(out_ptr, offs, y, mask)


@triton.jit
def _bwd_block(g_ptr, x_ptr, z_ptr, gx_ptr, gz_ptr, n, param, lo, hi, ACT: tl.constexpr, FP64: tl.constexpr,
               BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    g = _load(g_ptr, offs, mask, FP64)
    x = _load(x_ptr, offs, mask, FP64)
    z = _load(z_ptr, offs, mask, FP64)
    lo, hi = _bounds(z, lo, hi)
    zc = tl.where(z < lo, lo, tl.where(z > hi, hi, z))
    if ACT == ASINH:
        d, dz = _asinh_bwd(x, zc)
    else:
        # d = ρ'(u), dz = ρ'(u)·(ρ⁻¹)'(zc), u = x + ρ⁻¹(zc)
        inv = _inv(zc, param, ACT, FP64)
        d = _drho(x + inv, param, ACT)
        dz = d * _dinv(zc, inv, param, ACT, FP64)
    # exactly 0 where g == 0; the z-gradient passes for lo ≤ z ≤ hi (inclusive), NaN z passes
    zero = g == 0
    outside = (z < lo) | (z > hi)
    gx = tl.where(zero, 0.0, g * d)
    gz = tl.where(zero | outside, 0.0, g * dz)
    _store(gx_ptr, offs, gx, mask)
    _store(gz_ptr, offs, gz, mask)


@triton.jit
def fwd_kernel(x_ptr, z_ptr, out_ptr, n, param, lo, hi, ACT: tl.constexpr, BLOCK: tl.constexpr):
    """fp32/fp16/bf16 forward: fp32 compute, param/lo/hi as fp32 arguments."""
    _fwd_block(x_ptr, z_ptr, out_ptr, n, param, lo, hi, ACT, False, BLOCK)


@triton.jit
def fwd_kernel_f64(x_ptr, z_ptr, out_ptr, n, PARAM: tl.constexpr, LO: tl.constexpr, HI: tl.constexpr,
                   ACT: tl.constexpr, BLOCK: tl.constexpr):
    """fp64 forward: param/lo/hi as compile-time constants (a float argument would be rounded to fp32)."""
    _fwd_block(x_ptr, z_ptr, out_ptr, n, PARAM, LO, HI, ACT, True, BLOCK)


@triton.jit
def bwd_kernel(g_ptr, x_ptr, z_ptr, gx_ptr, gz_ptr, n, param, lo, hi, ACT: tl.constexpr, BLOCK: tl.constexpr):
    """fp32/fp16/bf16 backward."""
    _bwd_block(g_ptr, x_ptr, z_ptr, gx_ptr, gz_ptr, n, param, lo, hi, ACT, False, BLOCK)


@triton.jit
def bwd_kernel_f64(g_ptr, x_ptr, z_ptr, gx_ptr, gz_ptr, n, PARAM: tl.constexpr, LO: tl.constexpr,
                   HI: tl.constexpr, ACT: tl.constexpr, BLOCK: tl.constexpr):
    """fp64 backward."""
    _bwd_block(g_ptr, x_ptr, z_ptr, gx_ptr, gz_ptr, n, PARAM, LO, HI, ACT, True, BLOCK)

"""Triton kernels of the Bregman activation: the formulas of ``backends/eager.py``, one by one, in Triton.

Per element (notation of eager.py): zc = clamp(z, lo, hi) with NaN passing, u = x + ρ⁻¹(zc), y = ρ(u);
∂y/∂x = ρ'(u), ∂y/∂z = ρ'(u)·(ρ⁻¹)'(zc) where lo ≤ z ≤ hi, else 0; both exactly 0 where grad is 0.

Only Triton primitives are used (exp, log, sqrt, sin, cos, where, arithmetic): libdevice functions do not run
under Triton's interpreter (TRITON_INTERPRET=1), so log1p, expm1, tanh, sinh, asinh, atan, tan and asin are built
here from them, and the same formulas run on the GPU. docs/triton_accuracy.md lists their measured accuracy.
``FP64`` selects fp64 arithmetic and fp64 polynomials; 16-bit and fp32 inputs compute in fp32.
Clamps are written with comparisons and ``tl.where`` (tl.minimum/tl.maximum would turn NaN into a bound).
"""

import triton
import triton.language as tl

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
ST_B: tl.constexpr = tl.constexpr(0.6666)
LN2: tl.constexpr = tl.constexpr(0.6931471805599453)
PI_2: tl.constexpr = tl.constexpr(1.5707963267948966)
PI_4: tl.constexpr = tl.constexpr(0.7853981633974483)
ASINH_BIG: tl.constexpr = tl.constexpr(20.0)  # eager._ASINH_BIG
ASINH_LOG: tl.constexpr = tl.constexpr(268435456.0)  # 2^28: asinh(a) = log(2a) to within 1/(4a²) beyond


# ---- elementary functions from primitives ---------------------------------------------------------------------


@triton.jit
def _sgn(v, r):
    # r with the sign of v (v < 0 → −r); NaN v gives r, which is NaN wherever v is
    return tl.where(v < 0, -r, r)


@triton.jit
def _rsqrt(v):
    return 1.0 / tl.sqrt(v)


@triton.jit
def _log1p(a):
    # log1p(a) = log(u)·a/(u − 1), u = 1 + a (Goldberg: the rounding of u cancels); a when u == 1; +inf at +inf
    u = 1.0 + a
    r = tl.where(u == 1.0, a, tl.log(u) * (a / (u - 1.0)))
    return tl.where(u == float("inf"), u, r)


@triton.jit
def _expm1(a):
    # expm1(a) = (u − 1)·a/log(u), u = e^a (Kahan: the rounding of u cancels); a when u == 1, −1 when u − 1 == −1
    u = tl.exp(a)
    um1 = u - 1.0
    r = tl.where(um1 == 0.0, a, um1 * (a / tl.log(u)))
    r = tl.where(um1 == -1.0, -1.0, r)
    return tl.where(u == float("inf"), u, r)


@triton.jit
def _tanh(u):
    # tanh|u| = −e/(2 + e), e = expm1(−2|u|) ∈ (−1, 0]: no cancellation near 0, exact 1 at saturation
    e = _expm1(-2.0 * tl.abs(u))
    return _sgn(u, -e / (2.0 + e))


@triton.jit
def _sigmoid(u):
    # σ(u) = 1/(1 + e) for u ≥ 0, e/(1 + e) for u < 0, e = e^{−|u|}
    e = tl.exp(-tl.abs(u))
    return tl.where(u >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


@triton.jit
def _sinh(a):
    # sinh|a| = (e + e/(e + 1))/2, e = expm1(|a|): both terms ≥ 0
    e = _expm1(tl.abs(a))
    return _sgn(a, 0.5 * (e + e / (e + 1.0)))


@triton.jit
def _cosh(a):
    return 0.5 * (tl.exp(a) + tl.exp(-a))


@triton.jit
def _asinh(v):
    # asinh|v| = log1p(a + a²/(1 + √(1 + a²))), a = |v|;  log(a) + ln2 beyond 2^28 (a² would overflow)
    a = tl.abs(v)
    small = _log1p(a + a * a / (1.0 + tl.sqrt(1.0 + a * a)))
    return _sgn(v, tl.where(a > ASINH_LOG, tl.log(a) + LN2, small))


@triton.jit
def _atan(v, FP64: tl.constexpr):
    # atan|v| = y0 + atan(t): t = −1/a (y0 = π/2) beyond tan(3π/8), (a − 1)/(a + 1) (y0 = π/4) above T,
    # else a (y0 = 0); atan(t) = t + t·s·P(s), s = t² (Cephes atanf; fp64: t + t·s·P(s)/Q(s), T = 0.66)
    a = tl.abs(v)
    big = a > 2.414213562373095
    if FP64:
        mid = (a > 0.66) & (a <= 2.414213562373095)
    else:
        mid = (a > 0.4142135623730950) & (a <= 2.414213562373095)
    zero = tl.zeros_like(a)
    t = tl.where(big, -1.0 / a, tl.where(mid, (a - 1.0) / (a + 1.0), a))
    y0 = tl.where(big, PI_2, tl.where(mid, PI_4, zero))
    s = t * t
    if FP64:
        p = (((-8.750608600031904122785e-1 * s - 1.615753718733365076637e1) * s - 7.500855792314704667340e1) * s
             - 1.228866684490136173410e2) * s - 6.485021904942025371773e1
        q = ((((s + 2.485846490142306297962e1) * s + 1.650270098316988542046e2) * s + 4.328810604912902668951e2) * s
             + 4.853903996359136964868e2) * s + 1.945506571482613964425e2
        # the low bits of π/2 (π/4) lost by the fp64 constant
        lowbits = tl.where(big, 6.123233995736765886130e-17, tl.where(mid, 3.061616997868382943065e-17, zero))
        r = y0 + (t * (s * p / q) + t + lowbits)
    else:
        p = ((8.05374449538e-2 * s - 1.38776856032e-1) * s + 1.99777106478e-1) * s - 3.33329491539e-1
        r = y0 + (p * s * t + t)
    return _sgn(v, r)


@triton.jit
def _tan(v, FP64: tl.constexpr):
    # |v| > π/4: r = |v| − π/2 (π/2 in three parts: exact near the pole), tan|v| = −1/tan(r); else r = |v|;
    # tan(r) = r + r·s·P(s), s = r² (Cephes tanf; fp64: r + r·s·P(s)/Q(s))
    a = tl.abs(v)
    j = tl.where(a > PI_4, 2.0, tl.zeros_like(a))
    if FP64:
        r = ((a - j * 7.853981554508209228515625e-1) - j * 7.94662735614792836714e-9) - j * 3.06161699786838294307e-17
        s = r * r
        p = (-1.30936939181383777646e4 * s + 1.15351664838587416140e6) * s - 1.79565251976484877988e7
        q = (((s + 1.36812963470692954678e4) * s - 1.32089234440210967447e6) * s + 2.50083801823357915839e7) * s \
            - 5.38695755929454629881e7
        t = r + r * (s * p / q)
    else:
        r = ((a - j * 0.78515625) - j * 2.4187564849853515625e-4) - j * 3.77489497744594108e-8
        s = r * r
        t = (((((9.38540185543e-3 * s + 3.11992232697e-3) * s + 2.44301354525e-2) * s + 5.34112807005e-2) * s
              + 1.33387994085e-1) * s + 3.33331568548e-1) * s * r + r
    return _sgn(v, tl.where(j > 0, -1.0 / t, t))


@triton.jit
def _asin(z, FP64: tl.constexpr):
    # asin(z) = atan(z/√((1 − z)(1 + z))): exact factors near ±1, atan's condition number ≤ 1
    return _atan(z * _rsqrt((1.0 - z) * (1.0 + z)), FP64)


# ---- pieces shared by the activations (eager.py's helpers) -----------------------------------------------------


@triton.jit
def _inv_hypot1(u):
    # 1/√(1 + u²) without overflowing u²: for |u| > 1, (1/|u|)/√(1 + 1/u²)
    a = tl.abs(u)
    r = 1.0 / tl.where(a < 1.0, 1.0, a)
    return tl.where(a > 1.0, r * _rsqrt(1.0 + r * r), _rsqrt(1.0 + a * a))


@triton.jit
def _atanh_scaled(z, a):
    # atanh(z/a) = ½·log1p(2|z|/(a − |z|)), odd in z
    t = tl.abs(z)
    return _sgn(z, 0.5 * _log1p(2.0 * t / (-t + a)))


@triton.jit
def _dtanh(u, b):
    # d/du tanh(b·u) = 4t/(1 + t)², t = e^{−2b|u|}
    t = tl.exp(tl.abs(u) * (-2.0 * b))
    return 4.0 * t / ((1.0 + t) * (1.0 + t))


@triton.jit
def _logit(z):
    # logit(z) = log(z/(1 − z)) for z < ¼, log1p((2z − 1)/(1 − z)) above
    return tl.where(z < 0.25, tl.log(z / (1.0 - z)), _log1p((2.0 * z - 1.0) / (1.0 - z)))


@triton.jit
def _one_minus_sq(z):
    # 1 − z² = (1 − z)(1 + z)
    return (1.0 - z) * (1.0 + z)


@triton.jit
def _isru(u):
    # u/√(1 + u²); sign(u)/√(1 + 1/u²) for |u| > 1
    a = tl.abs(u)
    r = 1.0 / tl.where(a < 1.0, 1.0, a)
    return tl.where(a > 1.0, _sgn(u, _rsqrt(1.0 + r * r)), u * _rsqrt(1.0 + u * u))


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
        r = _atanh_scaled(z, 1.0)
    elif ACT == SCALED_TANH:
        r = _atanh_scaled(z, ST_A) / ST_B
    elif ACT == ATAN:
        r = _tan(z, FP64)
    elif ACT == SIN:
        r = _asin(z, FP64)
    elif ACT == ISRU:
        # z/√(1 − z²)
        r = z * _rsqrt(_one_minus_sq(z))
    elif ACT == SOFTPLUS:
        # log(expm1(βz))/β = z + log(−expm1(−βz))/β
        r = z + tl.log(-_expm1(z * (-p))) / p
    else:
        tl.static_assert(ACT == RELU)
        # inverse of the bent identity: z − 1/(4z)
        r = z - 0.25 / z
    return r


@triton.jit
def _rho(u, p, ACT: tl.constexpr, FP64: tl.constexpr):
    if ACT == SIGMOID:
        r = _sigmoid(u)
    elif ACT == TANH:
        r = _tanh(u)
    elif ACT == SCALED_TANH:
        r = _tanh(u * ST_B) * ST_A
    elif ACT == ATAN:
        r = _atan(u, FP64)
    elif ACT == SIN:
        r = tl.sin(u)
    elif ACT == ISRU:
        r = _isru(u)
    elif ACT == SOFTPLUS:
        # softplus_β(u) = (max(βu, 0) + log1p(e^{−|βu|}))/β
        t = u * p
        r = (tl.where(t < 0, 0.0, t) + _log1p(tl.exp(-tl.abs(t)))) / p
    else:
        tl.static_assert(ACT == RELU)
        r = _bent(u)
    return r


@triton.jit
def _drho(u, p, ACT: tl.constexpr):
    if ACT == SIGMOID:
        # σ'(u) = e^{−|u|}/(1 + e^{−|u|})²
        e = tl.exp(-tl.abs(u))
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
        r = _sigmoid(u * p)
    else:
        tl.static_assert(ACT == RELU)
        # (1 + isru(u))/2 for u ≥ 0;  ρ(u)/√(1 + u²) for u < 0
        r = tl.where(u >= 0, 0.5 * (1.0 + _isru(u)), _bent(u) * _inv_hypot1(u))
    return r


@triton.jit
def _dinv(z, inv, p, ACT: tl.constexpr):
    if ACT == SIGMOID:
        r = 1.0 / (z * (1.0 - z))
    elif ACT == TANH:
        r = 1.0 / _one_minus_sq(z)
    elif ACT == SCALED_TANH:
        a = tl.zeros_like(z) + ST_A
        r = a / ((a - z) * ST_B * (a + z))
    elif ACT == ATAN:
        r = 1.0 + inv * inv
    elif ACT == SIN:
        r = _rsqrt(_one_minus_sq(z))
    elif ACT == ISRU:
        # (1 − z²)^{−3/2}
        h = _rsqrt(_one_minus_sq(z))
        r = h * h * h
    elif ACT == SOFTPLUS:
        r = -1.0 / _expm1(z * (-p))
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
    xe = tl.where(tl.abs(x) == float("inf"), x, x * tl.exp(-m))
    w = 1.0 + 2.0 * s * xe
    su = tl.where(w < 0, -s, s)
    L = m - LN2 + tl.log(tl.abs(w))
    return m, su, L


@triton.jit
def _asinh_small_z(z):
    # clamp(z, −20, 20), NaN passes
    return tl.where(z < -ASINH_BIG, -ASINH_BIG, tl.where(z > ASINH_BIG, ASINH_BIG, z))


@triton.jit
def _asinh_fwd(x, z):
    m, su, L = _asinh_big(x, z)
    # asinh(e^L) = L + log(1 + √(1 + e^{−2L})) for L > 0, else asinh(e^L) directly
    Lp = tl.where(L < 0, 0.0, L)
    big = su * tl.where(L > 0, L + tl.log(1.0 + tl.sqrt(1.0 + tl.exp(-2.0 * Lp))), _asinh(tl.exp(L)))
    small = _asinh(x + _sinh(_asinh_small_z(z)))
    return tl.where(m > ASINH_BIG, big, small)


@triton.jit
def _asinh_bwd(x, z):
    # ρ'(u) = 1/√(1 + u²);  ∂y/∂z = cosh(z)·ρ'(u)
    m, su, L = _asinh_big(x, z)
    Lp = tl.where(L < 0, 0.0, L)
    Ln = tl.where(L > 0, 0.0, L)
    q = tl.exp(-2.0 * Lp)
    # L > 0: ρ'(u) = e^{−L}/√(1 + e^{−2L});  cosh(z)·ρ'(u) = e^{m−ln2−L}/√(1 + e^{−2L})
    # L ≤ 0: ρ'(u) = 1/√(1 + e^{2L});         cosh(z)·ρ'(u) = e^{m−ln2}·ρ'(u)
    d_big = tl.where(L > 0, tl.exp(-Lp) * _rsqrt(1.0 + q), _rsqrt(1.0 + tl.exp(2.0 * Ln)))
    dz_big = tl.where(L > 0, tl.exp(m - LN2 - L) * _rsqrt(1.0 + q), tl.exp(m - LN2) * d_big)
    zs = _asinh_small_z(z)
    d_small = _inv_hypot1(x + _sinh(zs))
    dz_small = _cosh(zs) * d_small
    big = m > ASINH_BIG
    return tl.where(big, d_big, d_small), tl.where(big, dz_big, dz_small)


# ---- kernels: one program per BLOCK elements of a flat range, 64-bit offsets ---------------------------------


@triton.jit
def _load(ptr, offs, mask, FP64: tl.constexpr):
    v = tl.load(ptr + offs, mask=mask, other=0.5)
    if FP64:
        return v.to(tl.float64)
    else:
        return v.to(tl.float32)


@triton.jit
def _fwd_block(x_ptr, z_ptr, out_ptr, n, param, lo, hi, ACT: tl.constexpr, FP64: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = _load(x_ptr, offs, mask, FP64)
    z = _load(z_ptr, offs, mask, FP64)
    # zc = clamp(z, lo, hi), NaN passes
    zc = tl.where(z < lo, lo, tl.where(z > hi, hi, z))
    if ACT == ASINH:
        y = _asinh_fwd(x, zc)
    else:
        # y = ρ(x + ρ⁻¹(zc))
        y = _rho(x + _inv(zc, param, ACT, FP64), param, ACT, FP64)
    tl.store(out_ptr + offs, y.to(out_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _bwd_block(g_ptr, x_ptr, z_ptr, gx_ptr, gz_ptr, n, param, lo, hi, ACT: tl.constexpr, FP64: tl.constexpr,
               BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    g = _load(g_ptr, offs, mask, FP64)
    x = _load(x_ptr, offs, mask, FP64)
    z = _load(z_ptr, offs, mask, FP64)
    zc = tl.where(z < lo, lo, tl.where(z > hi, hi, z))
    if ACT == ASINH:
        d, dz = _asinh_bwd(x, zc)
    else:
        # d = ρ'(u), dz = ρ'(u)·(ρ⁻¹)'(zc), u = x + ρ⁻¹(zc)
        inv = _inv(zc, param, ACT, FP64)
        d = _drho(x + inv, param, ACT)
        dz = d * _dinv(zc, inv, param, ACT)
    # exactly 0 where g == 0; the z-gradient passes for lo ≤ z ≤ hi (inclusive), NaN z passes
    zero = g == 0
    outside = (z < lo) | (z > hi)
    gx = tl.where(zero, 0.0, g * d)
    gz = tl.where(zero | outside, 0.0, g * dz)
    tl.store(gx_ptr + offs, gx.to(gx_ptr.dtype.element_ty), mask=mask)
    tl.store(gz_ptr + offs, gz.to(gz_ptr.dtype.element_ty), mask=mask)


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

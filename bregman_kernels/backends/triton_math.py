"""Elementary functions for the Triton kernels, built from Triton primitives only.

libdevice (tanh, log1p, atan, …) does not run under Triton's interpreter (TRITON_INTERPRET=1), so these are
written with arithmetic, sqrt, sin, cos, floor, comparisons, where and bit casts, and the same code runs on the
GPU. fp32 exp and log are own implementations too (numpy's fp32 exp is off by 2.2 ulp; Triton's fp32 tl.exp on
NVIDIA GPUs is ex2.approx of x·log₂e). Stable forms: Goldberg's log1p, Kahan's expm1, Cephes' polynomials and
argument reductions (fp32: the single-precision ones; fp64, selected by ``FP64``: the double-precision rational
ones; tan always the fp64 one). docs/triton_accuracy.md gives the measured accuracy of each.
"""

import triton
import triton.language as tl

LN2: tl.constexpr = tl.constexpr(0.6931471805599453)
PI_2: tl.constexpr = tl.constexpr(1.5707963267948966)
PIO2_HI32: tl.constexpr = tl.constexpr(1.5707963705062866)  # fp32(π/2)
PIO2_LO32: tl.constexpr = tl.constexpr(-4.371139006309477e-08)  # π/2 − fp32(π/2)
PI_4: tl.constexpr = tl.constexpr(0.7853981633974483)
ASINH_LOG: tl.constexpr = tl.constexpr(268435456.0)  # 2^28: asinh(a) = log(2a) to within 1/(4a²) beyond


@triton.jit
def sgn(v, r):
    # r with the sign of v (v < 0 → −r); NaN v gives r, which is NaN wherever v is
    return tl.where(v < 0, -r, r)


@triton.jit
def sqrt(v):
    # correctly rounded square root (fp32 tl.sqrt is an approximation on NVIDIA GPUs; fp64's is exact)
    if v.dtype == tl.float64:
        r = tl.sqrt(v)
    else:
        r = tl.sqrt_rn(v)
    return r


@triton.jit
def rsqrt(v):
    return 1.0 / sqrt(v)


@triton.jit
def exp(x):
    # fp64: the platform's exp. fp32: e^x = 2^n·e^r, n = round(x·log2 e), r = x − n·ln2 (ln2 in two parts, exact
    # products), e^r = 1 + r + r²·P(r) (Cephes expf, < 1 ulp), 2^n applied as two exact powers of two (one rounding
    # in the subnormal range); x clamped to [−104, 89] first (e^x is 0 below, inf above), NaN passes
    if x.dtype == tl.float64:
        y = tl.exp(x)
    else:
        xc = tl.where(x < -104.0, -104.0, tl.where(x > 89.0, 89.0, x))
        xc = tl.where(xc != xc, 0.0, xc)
        n = tl.floor(xc * 1.44269504088896341 + 0.5)
        r = (xc - n * 0.693359375) - n * -2.12194440e-4
        p = (((((1.9875691500e-4 * r + 1.3981999507e-3) * r + 8.3334519073e-3) * r + 4.1665795894e-2) * r
              + 1.6666665459e-1) * r + 5.0000001201e-1) * (r * r) + r + 1.0
        ni = n.to(tl.int32)
        n1 = ni >> 1
        # 2^k = bits (k + 127) << 23, for k = ⌊n/2⌋ and n − ⌊n/2⌋ (both within [−75, 64])
        s1 = ((n1 + 127) << 23).to(tl.float32, bitcast=True)
        s2 = ((ni - n1 + 127) << 23).to(tl.float32, bitcast=True)
        y = p * s1 * s2
        y = tl.where(x < -104.0, 0.0, tl.where(x > 89.0, float("inf"), y))
        y = tl.where(x != x, x, y)
    return y


@triton.jit
def log(x):
    # fp64: the platform's log. fp32 (Cephes logf, < 1 ulp): x = m·2^e, m ∈ [√½, √2) from the bits (subnormals
    # scaled by 2^23 first), f = m − 1, log x = f − f²/2 + f³·P(f) + e·ln2 (ln2 in two parts)
    if x.dtype == tl.float64:
        r = tl.log(x)
    else:
        sub = x < 1.1754943508222875e-38
        b = tl.where(sub, x * 8388608.0, x).to(tl.int32, bitcast=True)
        m = ((b & 0x007FFFFF) | 0x3F000000).to(tl.float32, bitcast=True)
        low = m < 0.7071067811865476
        e = (((b >> 23) & 0xFF) - tl.where(low, 127, 126) - tl.where(sub, 23, 0)).to(tl.float32)
        f = tl.where(low, m + m - 1.0, m - 1.0)
        s = f * f
        p = (((((((7.0376836292e-2 * f - 1.1514610310e-1) * f + 1.1676998740e-1) * f - 1.2420140846e-1) * f
                 + 1.4249322787e-1) * f - 1.6668057665e-1) * f + 2.0000714765e-1) * f - 2.4999993993e-1) * f \
            + 3.3333331174e-1
        y = p * f * s + e * -2.12194440e-4 - 0.5 * s
        r = (f + y) + e * 0.693359375
        # log 0 = −inf, log(x < 0) = NaN, log inf = inf, NaN passes
        r = tl.where(x == 0.0, float("-inf"), tl.where(x < 0.0, float("nan"), r))
        r = tl.where((x == float("inf")) | (x != x), x, r)
    return r


@triton.jit
def log1p(a):
    # log1p(a) = log(u)·a/(u − 1), u = 1 + a (Goldberg: the rounding of u cancels); a when u == 1; +inf at +inf
    u = 1.0 + a
    r = tl.where(u == 1.0, a, log(u) * (a / (u - 1.0)))
    return tl.where(u == float("inf"), u, r)


@triton.jit
def expm1(a):
    # expm1(a) = (u − 1)·a/log(u), u = e^a (Kahan: the rounding of u cancels); a when u == 1, −1 when u − 1 == −1
    u = exp(a)
    um1 = u - 1.0
    r = tl.where(um1 == 0.0, a, um1 * (a / log(u)))
    r = tl.where(um1 == -1.0, -1.0, r)
    return tl.where(u == float("inf"), u, r)


@triton.jit
def tanh(u, FP64: tl.constexpr):
    # tanh|u| = a + a·s·P(s), s = u², for |u| < 0.625 (Cephes tanhf; fp64: a + a·s·P(s)/Q(s));
    # 1 − 2/(e^{2|u|} + 1) above (1 at saturation, e^{2|u|} = inf included)
    a = tl.abs(u)
    s = a * a
    if FP64:
        p = (-9.64399179425052238628e-1 * s - 9.92877231001918586564e1) * s - 1.61468768441708447952e3
        q = ((s + 1.12811678491632931402e2) * s + 2.23548839060100448583e3) * s + 4.84406305325125486048e3
        small = a + a * (s * p / q)
    else:
        small = ((((-5.70498872745e-3 * s + 2.06390887954e-2) * s - 5.37397155531e-2) * s + 1.33314422036e-1) * s
                 - 3.33332819422e-1) * s * a + a
    return sgn(u, tl.where(a < 0.625, small, 1.0 - 2.0 / (exp(2.0 * a) + 1.0)))


@triton.jit
def sigmoid(u):
    # σ(u) = 1/(1 + e^{−u}) as torch.sigmoid computes it (1/inf = 0 where e^{−u} overflows)
    return 1.0 / (1.0 + exp(-u))


@triton.jit
def sinh(a):
    # sinh|a| = (e + e/(e + 1))/2, e = expm1(|a|): both terms ≥ 0
    e = expm1(tl.abs(a))
    return sgn(a, 0.5 * (e + e / (e + 1.0)))


@triton.jit
def cosh(a):
    return 0.5 * (exp(a) + exp(-a))


@triton.jit
def asinh(v):
    # asinh|v| = log1p(a + a²/(1 + √(1 + a²))), a = |v|;  log(a) + ln2 beyond 2^28 (a² would overflow)
    a = tl.abs(v)
    small = log1p(a + a * a / (1.0 + sqrt(1.0 + a * a)))
    return sgn(v, tl.where(a > ASINH_LOG, log(a) + LN2, small))


@triton.jit
def atan(v, FP64: tl.constexpr):
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
        # the low parts of π/2 (π/4) lost by the fp32 constant
        lowbits = tl.where(big, PIO2_LO32, tl.where(mid, 0.5 * PIO2_LO32, zero))
        r = y0 + (p * s * t + t + lowbits)
    return sgn(v, r)


@triton.jit
def tan(v):
    # in fp64 for every input type (an fp32 tan's ~2 ulp reach u = x + tan(zc) amplified where x ≈ −tan(zc)):
    # |v| > π/4: r = |v| − π/2 (π/2 in three parts: exact near the pole), tan|v| = −1/tan(r); else r = |v|;
    # tan(r) = r + r·s·P(s)/Q(s), s = r² (Cephes tan)
    a = tl.abs(v.to(tl.float64))
    j = tl.where(a > PI_4, 2.0, tl.zeros_like(a))
    r = ((a - j * 7.853981554508209228515625e-1) - j * 7.94662735614792836714e-9) - j * 3.06161699786838294307e-17
    s = r * r
    p = (-1.30936939181383777646e4 * s + 1.15351664838587416140e6) * s - 1.79565251976484877988e7
    q = (((s + 1.36812963470692954678e4) * s - 1.32089234440210967447e6) * s + 2.50083801823357915839e7) * s \
        - 5.38695755929454629881e7
    t = r + r * (s * p / q)
    return sgn(v, tl.where(j > 0, -1.0 / t, t)).to(v.dtype)


@triton.jit
def asin(z, FP64: tl.constexpr):
    # fp64: asin(z) = atan(z/√((1 − z)(1 + z))): exact factors near ±1, atan's condition number ≤ 1.
    # fp32 (Cephes asinf): |z| ≤ ½: a + a·w·P(w), w = z²;  |z| > ½: π/2 − 2·asin(√w), w = (1 − |z|)/2 exact,
    # as PIO2_HI + (PIO2_LO − 2·asin(√w)): one rounding at the end
    if FP64:
        r = atan(z * rsqrt((1.0 - z) * (1.0 + z)), FP64)
    else:
        a = tl.abs(z)
        flag = a > 0.5
        w = tl.where(flag, 0.5 * (1.0 - a), a * a)
        t = tl.where(flag, sqrt(w), a)
        p = ((((4.2163199048e-2 * w + 2.4181311049e-2) * w + 4.5470025998e-2) * w + 7.4953002686e-2) * w
             + 1.6666752422e-1) * w * t + t
        r = sgn(z, tl.where(flag, PIO2_HI32 + (PIO2_LO32 - (p + p)), p))
    return r


# ---- accuracy probe: one elementary function over a tensor (tests and benchmarks/triton_accuracy.py) -------------
UNARY_FUNCS = ("exp", "log", "log1p", "expm1", "tanh", "sigmoid", "sinh", "cosh", "asinh", "atan", "tan", "asin")


@triton.jit
def unary_kernel(x_ptr, out_ptr, n, FN: tl.constexpr, FP64: tl.constexpr, BLOCK: tl.constexpr):
    """out = UNARY_FUNCS[FN](x) as the kernels compute it."""
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask, other=0.5)
    if FN == 0:
        y = exp(x)
    elif FN == 1:
        y = log(x)
    elif FN == 2:
        y = log1p(x)
    elif FN == 3:
        y = expm1(x)
    elif FN == 4:
        y = tanh(x, FP64)
    elif FN == 5:
        y = sigmoid(x)
    elif FN == 6:
        y = sinh(x)
    elif FN == 7:
        y = cosh(x)
    elif FN == 8:
        y = asinh(x)
    elif FN == 9:
        y = atan(x, FP64)
    elif FN == 10:
        y = tan(x)
    else:
        y = asin(x, FP64)
    tl.store(out_ptr + offs, y, mask=mask)

"""High-precision reference values (mpmath, 50 digits) for pinned inputs; derivatives by mpmath.diff."""

import mpmath as mp

mp.mp.dps = 50
A_ST, B_ST = mp.mpf("1.7159"), mp.mpf("0.6666")

_INV = {
    "sigmoid": lambda z, b: mp.log(z / (1 - z)),
    "tanh": lambda z, b: mp.atanh(z),
    "scaled_tanh": lambda z, b: mp.atanh(z / A_ST) / B_ST,
    "atan": lambda z, b: mp.tan(z),
    "sin": lambda z, b: mp.asin(z),
    "asinh": lambda z, b: mp.sinh(z),
    "isru": lambda z, b: z / mp.sqrt(1 - z * z),
    "softplus": lambda z, b: mp.log(mp.expm1(b * z)) / b,
    "relu": lambda z, b: z - 1 / (4 * z),
}
_RHO = {
    "sigmoid": lambda u, b: 1 / (1 + mp.exp(-u)),
    "tanh": lambda u, b: mp.tanh(u),
    "scaled_tanh": lambda u, b: A_ST * mp.tanh(B_ST * u),
    "atan": lambda u, b: mp.atan(u),
    "sin": lambda u, b: mp.sin(u),
    "asinh": lambda u, b: mp.asinh(u),
    "isru": lambda u, b: u / mp.sqrt(1 + u * u),
    "softplus": lambda u, b: mp.log1p(mp.exp(b * u)) / b,
    "relu": lambda u, b: (u + mp.sqrt(u * u + 1)) / 2,
}


def reference(kind, x, z, lo, hi, beta=1000.0):
    """(y, ∂y/∂x, ∂y/∂z) as Python floats for finite float inputs; lo/hi: clamp bounds (±inf: none)."""
    b = mp.mpf(beta)
    xm, zm = mp.mpf(x), mp.mpf(z)
    inside = lo <= z <= hi
    zc = min(max(zm, mp.mpf(lo)), mp.mpf(hi))

    def y_of(xv, zv):
        return _RHO[kind](xv + _INV[kind](zv, b), b)

    y = y_of(xm, zc)
    if kind == "asinh":  # |u| up to e^|z|: a numerical derivative would need |z|/2.3 more digits
        u = xm + mp.sinh(zc)
        gx = 1 / mp.sqrt(1 + u * u)
        gz = mp.cosh(zc) * gx
    else:
        gx = mp.diff(lambda t: y_of(t, zc), xm)
        gz = mp.diff(lambda s: y_of(xm, s), zc) if inside else mp.mpf(0)
    return float(y), float(gx), float(gz)

"""Registry of the activations ρ of the Bregman activation y = ρ(x + ρ⁻¹(clamp(z, lo + eps, hi − eps))).

Each entry carries its name, the range (lo, hi) of ρ, its parameter and the integer code shared by every
backend (``csrc/bregman_math.h`` and the Triton kernels use the same codes). The scalar math itself lives once
per language: ``backends/eager.py`` (torch ops, the reference of the contract), ``csrc/bregman_math.h`` (C++ and
CUDA) and ``backends/triton_kernels.py``; docs/math.md derives every formula.
"""

from __future__ import annotations

import math
import re
import struct
from dataclasses import dataclass
from fractions import Fraction

import torch

# Codes shared with csrc/bregman_math.h (enum Act) and the Triton kernels; tests check that they agree.
SIGMOID, TANH, SCALED_TANH, ATAN, SIN, ASINH, ISRU, SOFTPLUS, RELU = range(9)

# scaled_tanh(u) = A · tanh(B · u), LeCun's constants as in bregmanet.
SCALED_TANH_A = 1.7159
SCALED_TANH_B = 0.6666
# In fp32, A − z near the bound needs A beyond fp32: A = A_HI + A_LO with A_HI = fp32(A) (A_HI − z is exact).
SCALED_TANH_A_HI32 = struct.unpack("f", struct.pack("f", SCALED_TANH_A))[0]
SCALED_TANH_A_LO32 = SCALED_TANH_A - SCALED_TANH_A_HI32
# in fp64 too A is not a double: A = SCALED_TANH_A + A_LO64 (the decimal 1.7159 minus its double, exactly)
SCALED_TANH_A_LO64 = float(Fraction("1.7159") - Fraction(SCALED_TANH_A))
# bregmanet's β for a bare "softplus".
SOFTPLUS_DEFAULT_BETA = 1000.0

_INF = math.inf


@dataclass(frozen=True)
class Activation:
    """One activation ρ: ``name`` (as given to :func:`get_activation`, canonical), its family ``kind``, the
    integer ``code`` shared by all backends, the range ``(lo, hi)`` of ρ and its parameter ``param``
    (β for softplus, 0.0 otherwise)."""

    name: str
    kind: str
    code: int
    lo: float
    hi: float
    param: float = 0.0

    def bounds(self, eps: float, dtype: torch.dtype) -> tuple[float, float]:
        """Clamp bounds (lo + eps, hi − eps) rounded once to the compute type of ``dtype`` (fp64 for fp64
        inputs, fp32 for fp32/fp16/bf16). Infinite ends stay infinite (no clamp on that side)."""
        return _bounds(self.lo, self.hi, float(eps), dtype == torch.float64)

    def rho(self, u: torch.Tensor) -> torch.Tensor:
        """ρ(u), evaluated stably (16-bit inputs computed in fp32)."""
        from .backends import eager

        return eager.rho(u, self.code, self.param)

    def rho_inv(self, z: torch.Tensor) -> torch.Tensor:
        """ρ⁻¹(z) for z inside (lo, hi), evaluated stably (no clamp)."""
        from .backends import eager

        return eager.rho_inv(z, self.code, self.param)

    def rho_at_zero(self) -> float:
        """ρ(0): the value bregmanet's 'option E' shortcut pads new channels with."""
        return float(self.rho(torch.zeros((), dtype=torch.float64)))


def _round_f32(v: float) -> float:
    return struct.unpack("f", struct.pack("f", v))[0] if math.isfinite(v) else v


_BOUNDS: dict = {}  # plain dict caches (torch.compile traces them without warnings, unlike lru_cache)
_REGISTRY: dict = {}


def _bounds(lo: float, hi: float, eps: float, fp64: bool) -> tuple[float, float]:
    # rounded to the compute type, then moved inside (lo, hi) if rounding reached a range end: with a small eps,
    # fp32(π/2 − eps) can be fp32(π/2) > π/2, where tan changes sign
    key = (lo, hi, eps, fp64)
    if key not in _BOUNDS:
        blo, bhi = lo + eps, hi - eps
        if not fp64:
            blo, bhi = _round_f32(blo), _round_f32(bhi)
        step = _next_f64 if fp64 else _next_f32
        while math.isfinite(blo) and blo <= lo:
            blo = step(blo, math.inf)
        while math.isfinite(bhi) and bhi >= hi:
            bhi = step(bhi, -math.inf)
        _BOUNDS[key] = (blo, bhi)
    return _BOUNDS[key]


def _next_f64(v: float, toward: float) -> float:
    return math.nextafter(v, toward)


def _next_f32(v: float, toward: float) -> float:
    bits = struct.unpack("<i", struct.pack("<f", v))[0]
    bits += 1 if (toward > v) == (v >= 0) else -1
    if v == 0:
        bits = 1 if toward > 0 else -2147483647
    return struct.unpack("<f", struct.pack("<i", bits))[0]


_FIXED = {
    "sigmoid": (SIGMOID, 0.0, 1.0),
    "tanh": (TANH, -1.0, 1.0),
    "scaled_tanh": (SCALED_TANH, -SCALED_TANH_A, SCALED_TANH_A),
    "atan": (ATAN, -math.pi / 2, math.pi / 2),
    "sin": (SIN, -1.0, 1.0),
    "asinh": (ASINH, -_INF, _INF),
    "isru": (ISRU, -1.0, 1.0),
    "relu": (RELU, 0.0, _INF),
}
_SOFTPLUS = re.compile(r"softplus((?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)?")
NAMES = (*_FIXED, "softplus", "softplus<beta>")


def get_activation(name: str | Activation) -> Activation:
    """Registry entry for ``name``: one of sigmoid, tanh, scaled_tanh, atan, sin, asinh, isru, relu (the smooth
    bent identity (u + √(u² + 1)) / 2, as in bregmanet), softplus (β = 1000) or softplus<β> (e.g. softplus10)."""
    if isinstance(name, Activation):
        return name
    if isinstance(name, str) and name in _REGISTRY:
        return _REGISTRY[name]
    act = _parse(name)
    _REGISTRY[name] = act
    return act


def _parse(name) -> Activation:
    if not isinstance(name, str):
        raise TypeError(f"activation must be a string, got {type(name).__name__}")
    if name in _FIXED:
        code, lo, hi = _FIXED[name]
        return Activation(name, name, code, lo, hi)
    m = _SOFTPLUS.fullmatch(name)
    if m:
        beta = float(m.group(1)) if m.group(1) else SOFTPLUS_DEFAULT_BETA
        if not (1e-30 <= beta <= 1e30):
            raise ValueError(f"softplus needs 1e-30 <= β <= 1e30 (finite and nonzero in fp32), got {name!r}")
        return Activation(name, "softplus", SOFTPLUS, 0.0, _INF, beta)
    raise ValueError(f"unknown activation {name!r}; valid: {', '.join(NAMES)}")

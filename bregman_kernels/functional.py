"""The public op: y = ρ(x + ρ⁻¹(clamp(z, lo + eps, hi − eps)))."""

from __future__ import annotations

import math
import numbers

import torch
import torch.autograd.forward_ad as fwAD

from . import backends
from .activations import Activation, get_activation

_FLOATS = (torch.float32, torch.float64, torch.float16, torch.bfloat16)


def _check(x, z, eps) -> None:
    for name, t in (("x", x), ("z", z)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"bregman_activation: {name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dtype not in _FLOATS:
            raise TypeError(f"bregman_activation: {name} has dtype {t.dtype}; expected float32, float64, float16 "
                            "or bfloat16")
    if x.device != z.device:
        raise ValueError(f"bregman_activation: x is on {x.device} but z is on {z.device}; move both to one device")
    if not isinstance(eps, numbers.Real) or isinstance(eps, bool) or not (math.isfinite(eps) and eps >= 0):
        raise ValueError(f"bregman_activation: eps must be a finite number >= 0, got {eps!r}")


def _reject_forward_ad(x, z) -> None:
    """Forward-mode AD (torch.func.jvp/jacfwd, torch.autograd.forward_ad) would pass zero tangents through the
    custom ops (they have no jvp rule): raise instead of returning a wrong derivative."""
    msg = "bregman_activation: forward-mode AD (jvp, jacfwd, forward_ad) is not supported; use reverse mode"
    if fwAD.unpack_dual(x).tangent is not None or fwAD.unpack_dual(z).tangent is not None:
        raise RuntimeError(msg)
    try:
        if torch._C._functorch.maybe_current_level() is None:
            return
        from torch._functorch.pyfunctorch import retrieve_current_functorch_interpreter

        jvp = retrieve_current_functorch_interpreter().key() == torch._C._functorch.TransformType.Jvp
    except (AttributeError, ImportError, AssertionError):  # private API of this torch release: skip the check
        return
    if jvp:
        raise RuntimeError(msg)


def bregman_activation(x: torch.Tensor, z: torch.Tensor, activation: str | Activation = "tanh", *,
                       eps: float = 1e-5, backend: str = "auto") -> torch.Tensor:
    """Bregman activation y = ρ(x + ρ⁻¹(clamp(z, lo + eps, hi − eps))), one fused pass forward and backward.

    x: pre-activation; z: previous representation (in ρ's range (lo, hi)). x and z broadcast against each other
    and are promoted to a common floating dtype (like ``x + z``); the gradient of a broadcast input is summed
    back to its shape. 16-bit inputs are computed in fp32 (the clamp too) and rounded once. NaN in gives NaN out.
    backend: "auto", "eager", "cpp", "cuda" or "triton" (see :func:`available_backends`).
    """
    act = get_activation(activation)
    _check(x, z, eps)
    if not torch.compiler.is_compiling():
        _reject_forward_ad(x, z)
    if x.dtype != z.dtype:
        dtype = torch.result_type(x, z)  # like x + z: a 0-dim tensor does not widen the other's dtype
        x, z = x.to(dtype), z.to(dtype)
    if x.shape != z.shape:
        try:
            x, z = torch.broadcast_tensors(x, z)
        except RuntimeError:
            raise ValueError(f"bregman_activation: shapes {tuple(x.shape)} and {tuple(z.shape)} do not "
                             "broadcast") from None
    lo, hi = act.bounds(float(eps), x.dtype)
    if not lo < hi:
        raise ValueError(f"bregman_activation: eps={eps} leaves an empty clamp interval for {act.name} "
                         f"(range ({act.lo}, {act.hi}))")
    _, fwd = backends.resolve(backend, x.device.type)
    return fwd(x, z, act.code, act.param, lo, hi)

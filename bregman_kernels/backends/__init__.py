"""Backend selection, in Python and outside the ops.

A backend is a name, the device types it serves and a forward op (with autograd) of ops.py. ``"auto"`` takes the
first available backend of ``AUTO_ORDER`` for the inputs' device (``BREGMAN_KERNELS_BACKEND`` overrides it); an
explicitly requested backend that cannot run raises with the reason.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass

import torch

log = logging.getLogger("bregman_kernels")

ENV_BACKEND = "BREGMAN_KERNELS_BACKEND"
AUTO_ORDER = {"cuda": ("cuda", "triton", "eager"), "cpu": ("cpp", "eager")}


@dataclass(frozen=True)
class Backend:
    name: str
    device_types: tuple[str, ...] | None  # None: every device type
    load: Callable[[], object]  # returns the forward op; raises with the reason when unavailable

    def serves(self, device_type: str) -> bool:
        return self.device_types is None or device_type in self.device_types


class BackendUnavailable(RuntimeError):
    """An explicitly requested backend cannot run here; the message says why."""


def _load_eager():
    from .. import ops

    return ops.eager_fwd


def _dispatcher_has(op_name: str, key: str) -> bool:
    return torch._C._dispatch_has_kernel_for_dispatch_key(op_name, key)


def _load_cpp():
    from .. import ops
    from . import cpp

    cpp.load()
    if not _dispatcher_has("bregman_kernels::fused_fwd", "CPU"):
        raise BackendUnavailable("the C++ extension loaded but registered no CPU kernel")
    return ops.fused_fwd


def _load_cuda():
    from .. import ops
    from . import cpp

    if not torch.cuda.is_available():
        raise BackendUnavailable("no CUDA device is available")
    cpp.load_cuda()
    if not _dispatcher_has("bregman_kernels::fused_fwd", "CUDA"):
        raise BackendUnavailable("the CUDA extension loaded but registered no CUDA kernel")
    return ops.fused_fwd


def _load_triton():
    try:
        importlib.import_module("triton")
    except ImportError as e:
        raise BackendUnavailable(f"triton is not installed ({e})") from None
    if not torch.cuda.is_available() and os.environ.get("TRITON_INTERPRET") != "1":
        raise BackendUnavailable("no CUDA device (set TRITON_INTERPRET=1 before importing triton to interpret)")
    from . import triton_ops

    return triton_ops.triton_fwd


BACKENDS = {
    "eager": Backend("eager", None, _load_eager),
    "cpp": Backend("cpp", ("cpu",), _load_cpp),
    "cuda": Backend("cuda", ("cuda",), _load_cuda),
    "triton": Backend("triton", ("cuda", "cpu"), _load_triton),
}


_LOADED: dict = {}  # name -> (forward op, None) or (None, reason); plain dicts trace cleanly under torch.compile
_AUTO: dict = {}


def _try_load(name: str):
    if name not in _LOADED:
        try:
            _LOADED[name] = BACKENDS[name].load(), None
        except (BackendUnavailable, ImportError, OSError, RuntimeError) as e:
            _LOADED[name] = None, str(e)
    return _LOADED[name]


def why_unavailable(name: str, device_type: str) -> str | None:
    """None when backend ``name`` can run on ``device_type``, else the reason."""
    if name not in BACKENDS:
        return f"unknown backend {name!r}; valid: {', '.join(BACKENDS)} or 'auto'"
    if not BACKENDS[name].serves(device_type):
        return f"backend {name!r} does not run on {device_type} tensors"
    if name == "triton" and device_type == "cpu" and os.environ.get("TRITON_INTERPRET") != "1":
        return "triton runs on CPU tensors only under TRITON_INTERPRET=1"
    return _try_load(name)[1]


def available_backends(device: str | torch.device = "cpu") -> list[str]:
    """The backends usable for tensors on ``device``."""
    device_type = torch.device(device).type
    return [n for n in BACKENDS if why_unavailable(n, device_type) is None]


def _auto(device_type: str) -> str:
    if device_type not in _AUTO:
        _AUTO[device_type] = _pick(device_type)
    return _AUTO[device_type]


def _pick(device_type: str) -> str:
    order = AUTO_ORDER.get(device_type, ("eager",))
    reasons = []
    for n in order:
        why = why_unavailable(n, device_type)
        if why is None:
            if reasons:
                log.warning("bregman_kernels: backend 'auto' on %s took %r (%s)", device_type, n, "; ".join(reasons))
            return n
        reasons.append(f"{n}: {why}")
    raise BackendUnavailable(f"no backend for {device_type} tensors: {'; '.join(reasons)}")


def resolve(name: str, device_type: str) -> tuple[str, object]:
    """(backend name, forward op) for a request ``name`` on ``device_type``."""
    name = resolve_name(name, device_type)
    return name, _LOADED[name][0]


@torch.compiler.assume_constant_result
def resolve_name(name: str, device_type: str) -> str:
    """The backend that serves request ``name`` on ``device_type``, loaded; raises with the reason if none.
    Under torch.compile this runs eagerly and its result is a constant: loading an extension is not traced."""
    if name == "auto":
        name = os.environ.get(ENV_BACKEND) or _auto(device_type)
    why = why_unavailable(name, device_type)
    if why is not None:
        if name not in BACKENDS:
            raise ValueError(why)
        raise BackendUnavailable(f"backend {name!r} is unavailable for {device_type} tensors: {why}")
    return name

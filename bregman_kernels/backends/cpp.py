"""Loading of the C++ extensions: ``bregman_kernels._C`` (CPU kernels) and ``bregman_kernels._C_cuda`` (CUDA
kernels). Both register kernels for ``bregman_kernels::fused_fwd`` / ``fused_bwd`` per dispatch key."""

from __future__ import annotations

import functools
import importlib

_HINT = "build it with `pip install --no-build-isolation -e .` (see README, Building)"


def _import(module: str, what: str):
    from . import BackendUnavailable

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise BackendUnavailable(f"the {what} extension is not built ({e}); {_HINT}") from None


@functools.cache
def load():
    """Import the CPU extension (registers the CPU kernels)."""
    return _import("bregman_kernels._C", "C++ CPU")


@functools.cache
def load_cuda():
    """Import the CUDA extension (registers the CUDA kernels)."""
    load()
    return _import("bregman_kernels._C_cuda", "CUDA")

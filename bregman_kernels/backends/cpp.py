"""Loading of the C++ extensions: ``bregman_kernels._C`` (CPU kernels) and ``bregman_kernels._C_cuda`` (CUDA
kernels). Both register kernels for ``bregman_kernels::fused_fwd`` / ``fused_bwd`` per dispatch key when imported.
setup.py records why it did not build ``_C_cuda`` (skipped, no toolkit, version mismatch, compile error) in
``bregman_kernels/_cuda_build.txt``; :func:`load_cuda`'s error repeats that reason."""

from __future__ import annotations

import functools
import importlib
import os

_HINT = "build it with `pip install --no-build-isolation -e .` (see docs/building.md)"
CUDA_STATUS_FILE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "_cuda_build.txt")


def _import(module: str, what: str, reason: str | None = None):
    from . import BackendUnavailable

    try:
        return importlib.import_module(module)
    except ImportError as e:
        why = f"the {what} extension is not built: {reason}" if reason else f"the {what} extension is not built ({e})"
        raise BackendUnavailable(f"{why}; {_HINT}") from None


def cuda_build_status() -> str | None:
    """Why setup.py did not build the CUDA extension, or None when it did (or left no record)."""
    try:
        with open(CUDA_STATUS_FILE) as f:
            return f.read().strip() or None
    except OSError:
        return None


@functools.cache
def load():
    """Import the CPU extension (registers the CPU kernels)."""
    return _import("bregman_kernels._C", "C++ CPU")


@functools.cache
def load_cuda():
    """Import the CUDA extension (registers the CUDA kernels); the error says why when it was not built."""
    load()
    return _import("bregman_kernels._C_cuda", "CUDA", cuda_build_status())

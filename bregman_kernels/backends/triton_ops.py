"""The "triton" backend: ``bregman_kernels::triton_fwd`` / ``triton_bwd``, registered with ``triton_op``.

The kernels (triton_kernels.py) run over a flat range of elements. Inputs whose strides all equal those of the
outputs (``torch.empty_like(x)`` / ``empty_like(z)``, always dense) are read in place, in storage order; any other
layout (non-dense views, slices, expanded stride-0 tensors, mixed layouts) is first copied with ``.contiguous()``,
and the result copied into the ``empty_like`` output when that is not contiguous. Under TRITON_INTERPRET=1 (set
before triton is imported) the same kernels run on CPU tensors, and the ops are opaque custom ops (see _register).

Launch heuristic (elementwise, memory-bound, no autotuning): num_warps = 4 (128 threads) and BLOCK = 1024
elements per program for fp32/fp64, 2048 for fp16/bf16, so that every thread moves 32 bytes per fp32/16-bit
tensor (two 128-bit accesses; four for fp64); a 1-D grid of ⌈n/BLOCK⌉ programs, 64-bit offsets. To measure on
a GPU: BLOCK ∈ {512 … 8192} × num_warps ∈ {2, 4, 8} at 64 Mi elements, forward and backward, against the
bandwidth of a plain copy in the same run.
fp64 passes param/lo/hi as compile-time constants (Triton types a Python float argument as fp32): each distinct
(activation, eps) compiles once.
"""

from __future__ import annotations

import contextlib

import torch
import triton
from torch.library import triton_op, wrap_triton

from .. import ops
from . import triton_kernels as K

NUM_WARPS = 4  # Triton's default, left implicit in the launch (not every torch.compile release forwards it)
# TRITON_INTERPRET=1 was set before triton was imported: the kernels are interpreted (numpy, CPU tensors)
INTERPRETED = not isinstance(K.fwd_kernel, triton.runtime.jit.JITFunction)


def _quiet():
    # numpy, the interpreter's arithmetic, warns about inf/NaN in lanes that tl.where discards or the mask drops
    if INTERPRETED:
        import numpy

        return numpy.errstate(all="ignore")
    return contextlib.nullcontext()


def block_size(dtype: torch.dtype) -> int:
    """Elements per program: 16 bytes per thread and access (see the module docstring)."""
    return 2048 if dtype in (torch.float16, torch.bfloat16) else 1024


def _dims(t: torch.Tensor) -> tuple:
    # strides of the dimensions that matter (size > 1)
    return tuple(s for n, s in zip(t.shape, t.stride(), strict=True) if n > 1)


def _inputs(outs: tuple, ins: tuple) -> tuple:
    """Inputs in the outputs' layout: unchanged when every stride matches the (dense) outputs', else contiguous."""
    ref = _dims(outs[0])
    if all(_dims(t) == ref for t in (*outs, *ins)):
        return ins
    return tuple(t.contiguous() for t in ins)


def _targets(outs: tuple, ins: tuple) -> tuple:
    # the kernel writes the outputs directly when they share the inputs' layout, else contiguous buffers
    return tuple(o if _dims(o) == _dims(ins[0]) else torch.empty(o.shape, dtype=o.dtype, device=o.device)
                 for o in outs)


def _launch(kernel, kernel_f64, tensors: tuple, n: int, act: int, param: float, lo: float, hi: float):
    dtype = tensors[0].dtype
    block = block_size(dtype)
    grid = (triton.cdiv(n, block),)
    dev = tensors[0].device
    # launch on the inputs' GPU (and its current stream), whichever GPU is current
    guard = torch.cuda.device(dev) if dev.type == "cuda" else contextlib.nullcontext()
    with _quiet(), guard:
        if dtype == torch.float64:
            wrap_triton(kernel_f64)[grid](*tensors, n, PARAM=param, LO=lo, HI=hi, ACT=act, BLOCK=block)
        else:
            wrap_triton(kernel)[grid](*tensors, n, param, lo, hi, ACT=act, BLOCK=block)


def _register(name: str, schema: str, fake):
    """triton_op on the GPU (torch.compile sees into the kernels). Interpreted kernels are plain Python that
    tracing cannot record (wrap_triton hands them back unwrapped), so there the op is an opaque custom op."""
    if INTERPRETED:
        def dec(fn):
            op = torch.library.custom_op(name, fn, mutates_args=(), schema=schema)
            op.register_fake(fake)
            return op
        return dec
    return triton_op(name, mutates_args=(), schema=schema)


@_register("bregman_kernels::triton_fwd", ops.FWD_SCHEMA, ops._fake_fwd)
def _triton_fwd(x: torch.Tensor, z: torch.Tensor, act: int, param: float, lo: float, hi: float) -> torch.Tensor:
    out = torch.empty_like(x)
    n = out.numel()
    if n == 0:
        return out
    ins = _inputs((out,), (x, z))
    (dst,) = _targets((out,), ins)
    _launch(K.fwd_kernel, K.fwd_kernel_f64, (*ins, dst), n, act, param, lo, hi)
    if dst is not out:
        out.copy_(dst)
    return out


@_register("bregman_kernels::triton_bwd", ops.BWD_SCHEMA, ops._fake_bwd)
def _triton_bwd(grad: torch.Tensor, x: torch.Tensor, z: torch.Tensor, act: int, param: float, lo: float,
                hi: float) -> tuple[torch.Tensor, torch.Tensor]:
    gx, gz = torch.empty_like(x), torch.empty_like(z)
    n = gx.numel()
    if n == 0:
        return gx, gz
    ins = _inputs((gx, gz), (grad, x, z))
    dgx, dgz = _targets((gx, gz), ins)
    _launch(K.bwd_kernel, K.bwd_kernel_f64, (*ins, dgx, dgz), n, act, param, lo, hi)
    if dgx is not gx:
        gx.copy_(dgx)
    if dgz is not gz:
        gz.copy_(dgz)
    return gx, gz


triton_fwd = torch.ops.bregman_kernels.triton_fwd.default
triton_bwd = torch.ops.bregman_kernels.triton_bwd.default
ops.register_autograd("bregman_kernels::triton_fwd", triton_bwd)
ops.register_vmap(triton_fwd, triton_bwd)

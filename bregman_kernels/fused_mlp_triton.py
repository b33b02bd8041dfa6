"""Triton implementation of the fused MLP ops (``bregman_kernels::mlp_triton_fwd`` / ``mlp_triton_bwd``, schemas
and meaning in fused_mlp.py): the GPU path, and under TRITON_INTERPRET=1 the same kernels on CPU tensors (the tests).

One program per BLOCK_B samples runs every layer. The state h is a (BLOCK_B, WP) tile, WP = the next power of
two ≥ every width (input included), padded columns kept at 0. Per layer: a = h Wᵀ + b and z = h Rᵀ (or h) as
broadcast products summed over the input axis (no tl.dot: widths ≤ 32 and fp64 too), then the per-element math
of backends/triton_kernels.py (the formulas of backends/eager.py). Parameters are packed into one flat buffer
per call (a cat inside the op) with an int64 table per layer: n_in, n_out, offsets of W, b, R (−1: identity)
and the row of hs its output is saved to (−1: last layer). The backward adds each program's gradient sums to
the flat gradient buffer with atomics (order of the adds, hence the last bits in fp32, vary between runs on a
GPU) and splits it into fresh tensors.
"""

from __future__ import annotations

import contextlib

import torch
import triton
import triton.language as tl
from torch.library import triton_op, wrap_triton

from . import fused_mlp as FM
from .backends import triton_kernels as K
from .backends import triton_ops

BLOCK_B = 32  # samples per program
META = 6  # int64 entries per layer in the table
INTERPRETED = triton_ops.INTERPRETED


@triton.jit
def _unit_fwd(a, z, MODE: tl.constexpr, ACT: tl.constexpr, PARAM: tl.constexpr, LO: tl.constexpr,
              HI: tl.constexpr, FP64: tl.constexpr):
    if MODE == 1:
        # ρ(a + ρ⁻¹(clamp(z, lo, hi))), NaN passing the clamp
        lo, hi = K._bounds(z, LO, HI)
        zc = tl.where(z < lo, lo, tl.where(z > hi, hi, z))
        if ACT == K.ASINH:
            # asinh's kernel formulas branch per 1-D block: run them on the flattened tile
            y = tl.reshape(K._asinh_fwd(tl.reshape(a, [a.numel]), tl.reshape(zc, [a.numel])), a.shape)
        else:
            y = K._rho(a + K._inv(zc, PARAM, ACT, FP64), PARAM, ACT, FP64)
    else:
        # ρ(a + z) (euclidean) or ρ(a) (standard); ACT 9: max(u, 0) with NaN passing
        if MODE == 2:
            u = a + z
        else:
            u = a
        if ACT == 9:
            y = tl.where(u < 0, 0.0, u)
        elif ACT == K.ASINH:
            y = K.asinh(u)
        else:
            y = K._rho(u, PARAM, ACT, FP64)
    return y


@triton.jit
def _unit_bwd(g, a, z, MODE: tl.constexpr, ACT: tl.constexpr, PARAM: tl.constexpr, LO: tl.constexpr,
              HI: tl.constexpr, FP64: tl.constexpr):
    if MODE == 1:
        lo, hi = K._bounds(z, LO, HI)
        zc = tl.where(z < lo, lo, tl.where(z > hi, hi, z))
        if ACT == K.ASINH:
            d, dz = K._asinh_bwd(tl.reshape(a, [a.numel]), tl.reshape(zc, [a.numel]))
            d = tl.reshape(d, a.shape)
            dz = tl.reshape(dz, a.shape)
        else:
            # d = ρ'(u), dz = ρ'(u)·(ρ⁻¹)'(zc), u = a + ρ⁻¹(zc)
            inv = K._inv(zc, PARAM, ACT, FP64)
            d = K._drho(a + inv, PARAM, ACT)
            dz = d * K._dinv(zc, inv, PARAM, ACT, FP64)
        # exactly 0 where g == 0; z's gradient passes for lo ≤ z ≤ hi
        zero = g == 0
        ga = tl.where(zero, 0.0, g * d)
        gz = tl.where(zero | (z < lo) | (z > hi), 0.0, g * dz)
    else:
        if MODE == 2:
            u = a + z
        else:
            u = a
        # g·ρ'(u); asinh' = 1/√(1 + u²); ReLU' = [u > 0]
        if ACT == 9:
            d = tl.where(u > 0, 1.0, 0.0)
        elif ACT == K.ASINH:
            d = K._inv_hypot1(u)
        else:
            d = K._drho(u, PARAM, ACT)
        ga = g * d
        gz = ga
    return ga, gz


@triton.jit
def _layer(p_ptr, meta_ptr, ly, h, rows_ok, cols, MODE: tl.constexpr):
    """(a, z, n_in, n_out, W, R, r_off, save_row, offsets) of layer ly (index) for the tile h."""
    m = meta_ptr + ly * 6
    n_in = tl.load(m)
    n_out = tl.load(m + 1)
    w_off = tl.load(m + 2)
    b_off = tl.load(m + 3)
    r_off = tl.load(m + 4)
    save_row = tl.load(m + 5)
    o = cols[:, None]
    i = cols[None, :]
    wmask = (o < n_out) & (i < n_in)
    W = tl.load(p_ptr + w_off + o * n_in + i, mask=wmask, other=0.0)
    bias = tl.load(p_ptr + b_off + cols, mask=cols < n_out, other=0.0)
    # a[s, o] = Σ_i h[s, i]·W[o, i] + b[o]
    a = tl.sum(h[:, None, :] * W[None, :, :], axis=2) + bias[None, :]
    if MODE != 0:
        # z[s, o] = Σ_i h[s, i]·R[o, i] (offset map) or h[s, o] (identity)
        R = tl.load(p_ptr + r_off + o * n_in + i, mask=wmask & (r_off >= 0), other=0.0)
        z = tl.where(r_off >= 0, tl.sum(h[:, None, :] * R[None, :, :], axis=2), h)
    else:
        R = W
        z = h
    return a, z, n_in, n_out, W, R, r_off, save_row


@triton.jit
def mlp_fwd_kernel(x_ptr, sx0, sx1, p_ptr, meta_ptr, y_ptr, hs_ptr, B, L, MODE: tl.constexpr, ACT: tl.constexpr,
                   PARAM: tl.constexpr, LO: tl.constexpr, HI: tl.constexpr, FP64: tl.constexpr, WP: tl.constexpr,
                   BLOCK: tl.constexpr):
    rows = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    rows_ok = rows < B
    cols = tl.arange(0, WP)
    n0 = tl.load(meta_ptr)
    h = tl.load(x_ptr + rows[:, None] * sx0 + cols[None, :] * sx1, mask=rows_ok[:, None] & (cols[None, :] < n0),
                other=0.0)
    n_out = n0
    for ly in range(L):
        a, z, n_in, n_out, W, R, r_off, save_row = _layer(p_ptr, meta_ptr, ly, h, rows_ok, cols, MODE)
        # h_{l+1} = unit(a, z); padded columns back to 0
        h = tl.where(cols[None, :] < n_out, _unit_fwd(a, z, MODE, ACT, PARAM, LO, HI, FP64), 0.0)
        # save h_{l+1} (feature-major rows of hs) for the backward
        tl.store(hs_ptr + (save_row + cols[None, :]) * B + rows[:, None], h,
                 mask=rows_ok[:, None] & (cols[None, :] < n_out) & (save_row >= 0))
    tl.store(y_ptr + rows[:, None] * n_out + cols[None, :], h, mask=rows_ok[:, None] & (cols[None, :] < n_out))


@triton.jit
def mlp_bwd_kernel(g_ptr, sg0, sg1, x_ptr, sx0, sx1, hs_ptr, p_ptr, meta_ptr, gp_ptr, gx_ptr, B, L,
                   MODE: tl.constexpr, ACT: tl.constexpr, PARAM: tl.constexpr, LO: tl.constexpr, HI: tl.constexpr,
                   FP64: tl.constexpr, WP: tl.constexpr, BLOCK: tl.constexpr):
    rows = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    rows_ok = rows < B
    cols = tl.arange(0, WP)
    n_last = tl.load(meta_ptr + (L - 1) * 6 + 1)
    g = tl.load(g_ptr + rows[:, None] * sg0 + cols[None, :] * sg1, mask=rows_ok[:, None] & (cols[None, :] < n_last),
                other=0.0)
    n0 = tl.load(meta_ptr)
    for k in range(L):
        ly = L - 1 - k
        # h_l: the input x for layer 0, else saved row block of layer ly − 1 (ly: layer index)
        prev_row = tl.load(meta_ptr + (ly - 1) * 6 + 5, mask=ly > 0, other=0)
        n_prev = tl.load(meta_ptr + ly * 6)
        h_saved = tl.load(hs_ptr + (prev_row + cols[None, :]) * B + rows[:, None],
                          mask=rows_ok[:, None] & (cols[None, :] < n_prev) & (ly > 0), other=0.0)
        h_x = tl.load(x_ptr + rows[:, None] * sx0 + cols[None, :] * sx1,
                      mask=rows_ok[:, None] & (cols[None, :] < n0) & (ly == 0), other=0.0)
        h = tl.where(ly > 0, h_saved, h_x)
        a, z, n_in, n_out, W, R, r_off, save_row = _layer(p_ptr, meta_ptr, ly, h, rows_ok, cols, MODE)
        ga, gz = _unit_bwd(g, a, z, MODE, ACT, PARAM, LO, HI, FP64)
        ok = rows_ok[:, None] & (cols[None, :] < n_out)
        ga = tl.where(ok, ga, 0.0)
        gz = tl.where(ok, gz, 0.0)
        m = meta_ptr + ly * 6
        w_off = tl.load(m + 2)
        b_off = tl.load(m + 3)
        o = cols[:, None]
        i = cols[None, :]
        wmask = (o < n_out) & (i < n_in)
        # gW[o, i] += Σ_s ga[s, o]·h[s, i];  gb[o] += Σ_s ga[s, o]
        tl.atomic_add(gp_ptr + w_off + o * n_in + i, tl.sum(ga[:, :, None] * h[:, None, :], axis=0), mask=wmask)
        tl.atomic_add(gp_ptr + b_off + cols, tl.sum(ga, axis=0), mask=cols < n_out)
        # gh[s, i] = Σ_o ga[s, o]·W[o, i] + (Σ_o gz[s, o]·R[o, i], or gz[s, i] for the identity)
        gh = tl.sum(ga[:, :, None] * W[None, :, :], axis=1)
        if MODE != 0:
            # gR[o, i] += Σ_s gz[s, o]·h[s, i] (offset maps)
            tl.atomic_add(gp_ptr + r_off + o * n_in + i, tl.sum(gz[:, :, None] * h[:, None, :], axis=0),
                          mask=wmask & (r_off >= 0))
            gh += tl.where(r_off >= 0, tl.sum(gz[:, :, None] * R[None, :, :], axis=1), gz)
        g = gh
    tl.store(gx_ptr + rows[:, None] * n0 + cols[None, :], g, mask=rows_ok[:, None] & (cols[None, :] < n0))


# ---- launchers ------------------------------------------------------------------------------------------------

_TABLES: dict = {}  # (widths, offset layers, device) -> (int64 table, sizes, packing order)


def _table(x, weights, offset_layers):
    widths = (x.shape[1], *(w.shape[0] for w in weights))
    key = (widths, tuple(offset_layers), str(x.device))
    if key not in _TABLES:
        L = len(weights)
        rows, pos, save, sizes = [], 0, 0, []
        w_off, b_off, r_off = [], [], [-1] * L
        for n_in, n_out in zip(widths[:-1], widths[1:], strict=True):
            w_off.append(pos)
            pos += n_in * n_out
            sizes.append(n_in * n_out)
        for n_out in widths[1:]:
            b_off.append(pos)
            pos += n_out
            sizes.append(n_out)
        for ly in offset_layers:
            r_off[ly] = pos
            pos += widths[ly] * widths[ly + 1]
            sizes.append(widths[ly] * widths[ly + 1])
        for ly in range(L):
            row = save if ly + 1 < L else -1
            save += widths[ly + 1] if ly + 1 < L else 0
            rows += [widths[ly], widths[ly + 1], w_off[ly], b_off[ly], r_off[ly], row]
        table = torch.tensor(rows, dtype=torch.int64, device=x.device)
        _TABLES[key] = (table, sizes, max(widths))
    return _TABLES[key]


def _on(x):
    # launch on x's GPU (and its current stream), whichever GPU is current
    return torch.cuda.device(x.device) if x.device.type == "cuda" else contextlib.nullcontext()


def _consts(x, act, param, lo, hi):
    return dict(ACT=act, PARAM=float(param), LO=float(lo), HI=float(hi), FP64=x.dtype == torch.float64)


def _check(x, weights):
    if x.dtype not in (torch.float32, torch.float64) or max(x.shape[1], *(w.shape[0] for w in weights)) > 128:
        raise RuntimeError("mlp_triton: fp32/fp64 and widths ≤ 128 only")


def _register(name: str, fake):
    if INTERPRETED:
        def dec(fn):
            op = torch.library.custom_op(name, fn, mutates_args=(), schema=_SCHEMAS[name])
            op.register_fake(fake)
            return op
        return dec

    def dec(fn):
        op = triton_op(name, mutates_args=(), schema=_SCHEMAS[name])(fn)
        op.register_fake(fake)
        return op
    return dec


_SCHEMAS = {"bregman_kernels::mlp_triton_fwd": FM.FWD_SCHEMA, "bregman_kernels::mlp_triton_bwd": FM.BWD_SCHEMA}


@_register("bregman_kernels::mlp_triton_fwd", FM._fake_fwd)
def _mlp_triton_fwd(x: torch.Tensor, weights: list[torch.Tensor], biases: list[torch.Tensor],
                    offsets: list[torch.Tensor], offset_layers: list[int], mode: int, act: int, param: float,
                    lo: float, hi: float) -> tuple[torch.Tensor, torch.Tensor]:
    _check(x, weights)
    table, _, wmax = _table(x, weights, offset_layers)
    B, L = x.shape[0], len(weights)
    y = x.new_empty(B, weights[-1].shape[0])
    hs = x.new_empty(sum(w.shape[1] for w in weights[1:]), B)
    if B == 0:
        return y, hs
    flat = torch.cat([t.reshape(-1) for t in (*weights, *biases, *offsets)])
    with triton_ops._quiet(), _on(x):
        wrap_triton(mlp_fwd_kernel)[(triton.cdiv(B, BLOCK_B),)](
            x, x.stride(0), x.stride(1), flat, table, y, hs, B, L, MODE=mode, WP=triton.next_power_of_2(wmax),
            BLOCK=BLOCK_B, **_consts(x, act, param, lo, hi))
    return y, hs


@_register("bregman_kernels::mlp_triton_bwd", FM._fake_bwd)
def _mlp_triton_bwd(grad: torch.Tensor, x: torch.Tensor, hs: torch.Tensor, weights: list[torch.Tensor],
                    biases: list[torch.Tensor], offsets: list[torch.Tensor], offset_layers: list[int], mode: int,
                    act: int, param: float, lo: float, hi: float
                    ) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
    _check(x, weights)
    table, sizes, wmax = _table(x, weights, offset_layers)
    B, L = x.shape[0], len(weights)
    gx = x.new_empty(x.shape)
    params = (*weights, *biases, *offsets)
    gflat = x.new_zeros(sum(sizes))
    if B > 0:
        flat = torch.cat([t.reshape(-1) for t in params])
        with triton_ops._quiet(), _on(x):
            wrap_triton(mlp_bwd_kernel)[(triton.cdiv(B, BLOCK_B),)](
                grad, grad.stride(0), grad.stride(1), x, x.stride(0), x.stride(1), hs, flat, table, gflat, gx, B, L,
                MODE=mode, WP=triton.next_power_of_2(wmax), BLOCK=BLOCK_B, **_consts(x, act, param, lo, hi))
    pieces = [g.view(t.shape) for g, t in zip(torch.split_with_sizes_copy(gflat, sizes), params, strict=True)]
    return gx, pieces[:L], pieces[L:2 * L], pieces[2 * L:]


# ---- the flat ops (fused_mlp_flat.py) on the GPU: the same kernels, the table pointing into the flat tensor --------


def _flat_table(x, widths, offset_layers):
    key = ("flat", tuple(widths), tuple(offset_layers), str(x.device))
    if key not in _TABLES:
        rows, pos, save, L = [], 0, 0, len(widths) - 1
        for ly in range(L):
            n_in, n_out = widths[ly], widths[ly + 1]
            r_off = pos + n_in * n_out + n_out if ly in offset_layers else -1
            rows += [n_in, n_out, pos, pos + n_in * n_out, r_off, save if ly + 1 < L else -1]
            pos += n_in * n_out * (2 if ly in offset_layers else 1) + n_out
            save += n_out if ly + 1 < L else 0
        _TABLES[key] = (torch.tensor(rows, dtype=torch.int64, device=x.device), [pos], max(widths))
    return _TABLES[key]


def mlp_flat_fwd_triton(x, params, widths, offset_layers, mode, act, param, lo, hi):
    """mlp_flat_fwd with the Triton kernel (the CUDA kernel of the op; CPU tensors under the interpreter)."""
    table, (size,), wmax = _flat_table(x, widths, offset_layers)
    if params.numel() != size or x.dtype not in (torch.float32, torch.float64) or wmax > 128:
        raise RuntimeError(f"mlp_flat_fwd: params needs {size} values, fp32/fp64 and widths ≤ 128")
    B, L = x.shape[0], len(widths) - 1
    y = x.new_empty(B, widths[-1])
    hs = x.new_empty(sum(widths[1:-1]), B)
    if B > 0:
        with triton_ops._quiet(), _on(x):
            wrap_triton(mlp_fwd_kernel)[(triton.cdiv(B, BLOCK_B),)](
                x, x.stride(0), x.stride(1), params.contiguous(), table, y, hs, B, L, MODE=mode,
                WP=triton.next_power_of_2(wmax), BLOCK=BLOCK_B, **_consts(x, act, param, lo, hi))
    return y, hs


def mlp_flat_bwd_triton(grad, x, hs, params, widths, offset_layers, mode, act, param, lo, hi):
    """mlp_flat_bwd with the Triton kernel: the gradient buffer is in the flat layout already."""
    table, _, wmax = _flat_table(x, widths, offset_layers)
    B, L = x.shape[0], len(widths) - 1
    gx = x.new_empty(x.shape)
    gp = torch.zeros_like(params)
    if B > 0:
        with triton_ops._quiet(), _on(x):
            wrap_triton(mlp_bwd_kernel)[(triton.cdiv(B, BLOCK_B),)](
                grad, grad.stride(0), grad.stride(1), x, x.stride(0), x.stride(1), hs, params.contiguous(), table, gp,
                gx, B, L, MODE=mode, WP=triton.next_power_of_2(wmax), BLOCK=BLOCK_B,
                **_consts(x, act, param, lo, hi))
    return gx, gp


mlp_triton_fwd = torch.ops.bregman_kernels.mlp_triton_fwd.default
mlp_triton_bwd = torch.ops.bregman_kernels.mlp_triton_bwd.default
FM.define_family("mlp_triton", define=False)

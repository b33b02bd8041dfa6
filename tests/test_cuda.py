"""The CUDA C++ backend ("cuda", bregman_kernels._C_cuda) on a GPU: values against the eager contract and the fp64
oracle, a tensor over 2^31 elements, CUDA-graph capture and replay, a non-default stream, unaligned storage.
Every test skips with the reason when no GPU or no CUDA extension is present."""

from __future__ import annotations

import math

import pytest
import torch

import bregman_kernels as bk
from bregman_kernels import ops
from bregman_kernels.backends import why_unavailable

pytestmark = pytest.mark.gpu

_WHY = "no CUDA device" if not torch.cuda.is_available() else why_unavailable("cuda", "cuda")
if _WHY is not None:
    pytest.skip(f"CUDA backend unavailable: {_WHY}", allow_module_level=True)

NAMES = ["sigmoid", "tanh", "scaled_tanh", "atan", "sin", "asinh", "isru", "softplus", "softplus10", "relu"]
# (rtol, atol) of the CUDA kernel against eager on the same GPU in the same dtype (libdevice vs ATen transcendentals,
# a few ulps of the compute type; 16-bit outputs rarely one ulp apart)
TOL = {torch.float64: (1e-12, 1e-13), torch.float32: (2e-5, 2e-6), torch.float16: (2e-3, 1e-5),
       torch.bfloat16: (1.6e-2, 1e-5)}


def sample(act, n, dtype, device="cuda", seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = 3 * torch.randn(n, generator=gen, dtype=torch.float64)
    lo = -40.0 if act.lo == -math.inf else act.lo
    hi = 40.0 if act.hi == math.inf else act.hi
    z = lo + (hi - lo) * torch.rand(n, generator=gen, dtype=torch.float64)
    z[:7] = torch.tensor([lo, hi, lo + 1e-6, hi - 1e-6, lo - 0.5, hi + 0.5, math.nan], dtype=torch.float64)
    g = torch.randn(n, generator=gen, dtype=torch.float64)
    g[::5] = 0
    return (t.to(device=device, dtype=dtype) for t in (x, z, g))


def fused(act, dtype, x, z, g):
    lo, hi = act.bounds(1e-5, dtype)
    return (ops.fused_fwd(x, z, act.code, act.param, lo, hi), *ops.fused_bwd(g, x, z, act.code, act.param, lo, hi))


def eager(act, dtype, x, z, g):
    lo, hi = act.bounds(1e-5, dtype)
    return (ops.eager_fwd(x, z, act.code, act.param, lo, hi), *ops.eager_bwd(g, x, z, act.code, act.param, lo, hi))


@pytest.mark.parametrize("dtype", list(TOL), ids=str)
@pytest.mark.parametrize("name", NAMES)
def test_matches_eager_and_fp64_oracle(name, dtype):
    act = bk.get_activation(name)
    x, z, g = sample(act, 4099, dtype)
    rtol, atol = TOL[dtype]
    got = fused(act, dtype, x, z, g)
    for a, b in zip(got, eager(act, dtype, x, z, g), strict=True):
        assert a.dtype == dtype and a.is_cuda
        torch.testing.assert_close(a, b, rtol=rtol, atol=atol, equal_nan=True)
    # the CPU eager composite in fp64 is the oracle for the fp64 kernel
    if dtype == torch.float64:
        ref = eager(act, dtype, *(t.cpu() for t in (x, z, g)))
        for a, b in zip(got, ref, strict=True):
            torch.testing.assert_close(a.cpu(), b, rtol=1e-12, atol=1e-13, equal_nan=True)


def test_unaligned_and_strided_storage():
    act = bk.get_activation("atan")
    x, z, g = sample(act, 4099, torch.float16)
    for sl in (slice(1, None), slice(3, 4000)):  # storage offsets break 16-byte alignment: scalar path
        got = fused(act, torch.float16, x[sl], z[sl], g[sl])
        want = fused(act, torch.float16, x[sl].clone(), z[sl].clone(), g[sl].clone())
        for a, b in zip(got, want, strict=True):
            assert torch.equal(a.nan_to_num(7), b.nan_to_num(7))
    xt, zt, gt = (t[:4096].reshape(64, 64).t() for t in (x, z, g))
    for a, b in zip(fused(act, torch.float16, xt, zt, gt),
                    fused(act, torch.float16, xt.contiguous(), zt.contiguous(), gt.contiguous()), strict=True):
        assert torch.equal(a.nan_to_num(7), b.nan_to_num(7)) and a.stride() == torch.empty_like(xt).stride()


def test_empty_launches_nothing():
    act = bk.get_activation("tanh")
    x = torch.empty(0, 3, device="cuda")
    y, gx, gz = fused(act, torch.float32, x, x.clone(), x.clone())
    torch.cuda.synchronize()
    assert y.shape == gx.shape == gz.shape == (0, 3)


@pytest.mark.slow
def test_more_than_2_pow_31_elements_fp16():
    """64-bit indexing: n = 2^31 + 1024 fp16 elements (x, z, y: 12 GiB; the backward reuses x's memory)."""
    n = 2**31 + 1024
    free, _ = torch.cuda.mem_get_info()
    if free < 6 * n * 2 + (1 << 30):
        pytest.skip(f"needs ~{6 * n * 2 / 2**30:.0f} GiB of free GPU memory, {free / 2**30:.0f} GiB free")
    act = bk.get_activation("tanh")
    lo, hi = act.bounds(1e-5, torch.float16)
    x = torch.full((n,), 0.25, dtype=torch.float16, device="cuda")
    z = torch.full((n,), 0.5, dtype=torch.float16, device="cuda")
    x[-7:] = torch.arange(7, device="cuda", dtype=torch.float16) / 8
    y = ops.fused_fwd(x, z, act.code, act.param, lo, hi)
    want = ops.eager_fwd(x[-4096:], z[-4096:], act.code, act.param, lo, hi)
    rtol, atol = TOL[torch.float16]
    torch.testing.assert_close(y[-4096:], want, rtol=rtol, atol=atol)
    torch.testing.assert_close(y[[0, 2**31 - 1, 2**31]], want[[0, 0, 0]], rtol=rtol, atol=atol)
    del y
    gx, gz = ops.fused_bwd(x, x, z, act.code, act.param, lo, hi)
    gxe, gze = ops.eager_bwd(x[-4096:], x[-4096:], z[-4096:], act.code, act.param, lo, hi)
    torch.testing.assert_close((gx[-4096:], gz[-4096:]), (gxe, gze), rtol=rtol, atol=atol)
    del x, z, gx, gz
    torch.cuda.empty_cache()


def test_cuda_graph_capture_and_replay():
    act = bk.get_activation("softplus")
    x, z, g = sample(act, 10_000, torch.float32, seed=3)
    static = [t.clone() for t in (x, z, g)]
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up outside the capture
        fused(act, torch.float32, *static)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        outs = fused(act, torch.float32, *static)
    x2, z2, g2 = sample(act, 10_000, torch.float32, seed=4)
    for s, new in zip(static, (x2, z2, g2), strict=True):
        s.copy_(new)
    graph.replay()
    torch.cuda.synchronize()
    for a, b in zip(outs, fused(act, torch.float32, x2, z2, g2), strict=True):
        assert torch.equal(a.nan_to_num(7), b.nan_to_num(7))


def test_non_default_stream():
    act = bk.get_activation("relu")
    x, z, g = sample(act, 1 << 20, torch.float32, seed=5)
    want = fused(act, torch.float32, x, z, g)
    torch.cuda.synchronize()
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        x2, z2 = x * 1, z * 1  # produced on the side stream: the kernel must run after them, on the same stream
        got = fused(act, torch.float32, x2, z2, g)
    stream.synchronize()
    for a, b in zip(got, want, strict=True):
        assert torch.equal(a.nan_to_num(7), b.nan_to_num(7))


def test_autograd_and_compile_on_gpu():
    x = torch.randn(33, 17, device="cuda", dtype=torch.float64, requires_grad=True)
    z = (torch.rand(33, 17, device="cuda", dtype=torch.float64) * 1.8 - 0.9).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: bk.bregman_activation(a, b, "tanh", backend="cuda"), (x, z))
    f = torch.compile(lambda a, b: bk.bregman_activation(a, b, "tanh", backend="cuda"), fullgraph=True)
    torch.testing.assert_close(f(x, z), bk.bregman_activation(x, z, "tanh", backend="eager"))

"""The C++ CPU backend ("cpp", bregman_kernels._C) against the eager contract, and the CUDA extension's registration.

Every instruction set the CPU offers (default, avx2, avx512) is run, so CI covers the portable fallback too. The full
oracle matrix (fp64 reference, every layout and edge case) is tests/test_op.py, parametrized over the backends.
"""

from __future__ import annotations

import math

import pytest
import torch

import bregman_kernels as bk
from bregman_kernels import activations as A
from bregman_kernels import ops
from bregman_kernels.backends import cpp

C = pytest.importorskip("bregman_kernels._C", reason="the C++ CPU extension is not built")

NAMES = ["sigmoid", "tanh", "scaled_tanh", "atan", "sin", "asinh", "isru", "softplus", "softplus10", "relu"]
DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]
# (rtol, atol) of cpp against eager in the same dtype: both compute in fp32/fp64 and round once, so they differ by
# a few ulps of the compute type (fp32: Sleef vs ATen's transcendentals) and rarely by one ulp of the 16-bit output
TOL = {torch.float64: (1e-12, 1e-13), torch.float32: (2e-5, 2e-6), torch.float16: (2e-3, 1e-5),
       torch.bfloat16: (1.6e-2, 1e-5)}


@pytest.fixture(params=C.capabilities())
def capability(request):
    previous = C.set_capability(request.param)
    yield request.param
    C.set_capability(previous)


def sample(act: A.Activation, n: int, dtype: torch.dtype, seed: int = 0):
    """x ~ 3·N(0, 1); z over ρ's whole range: uniform, within 1e-6 of the bounds, beyond them, NaN; g with zeros."""
    gen = torch.Generator().manual_seed(seed)
    x = 3 * torch.randn(n, generator=gen, dtype=torch.float64)
    lo = -40.0 if act.lo == -math.inf else act.lo
    hi = 40.0 if act.hi == math.inf else act.hi
    z = lo + (hi - lo) * torch.rand(n, generator=gen, dtype=torch.float64)
    edges = torch.tensor([lo, hi, lo + 1e-6, hi - 1e-6, lo - 0.5, hi + 0.5, math.nan, 0.0, 1e-7], dtype=torch.float64)
    z[: len(edges)] = edges
    x[len(edges): len(edges) + 3] = torch.tensor([math.nan, math.inf, -math.inf])
    g = torch.randn(n, generator=gen, dtype=torch.float64)
    g[::5] = 0
    return x.to(dtype), z.to(dtype), g.to(dtype)


def both(act, dtype, x, z, g):
    lo, hi = act.bounds(1e-5, dtype)
    args = (act.code, act.param, lo, hi)
    return ((ops.fused_fwd(x, z, *args), *ops.fused_bwd(g, x, z, *args)),
            (ops.eager_fwd(x, z, *args), *ops.eager_bwd(g, x, z, *args)))


def test_codes_agree_with_registry():
    names = C.act_names()
    codes = [A.SIGMOID, A.TANH, A.SCALED_TANH, A.ATAN, A.SIN, A.ASINH, A.ISRU, A.SOFTPLUS, A.RELU]
    assert list(range(len(names))) == codes
    for code, name in enumerate(names):
        assert bk.get_activation(name).code == code, name


def test_backend_listed_and_kernels_registered():
    assert "cpp" in bk.available_backends("cpu")
    assert torch._C._dispatch_has_kernel_for_dispatch_key("bregman_kernels::fused_fwd", "CPU")
    assert torch._C._dispatch_has_kernel_for_dispatch_key("bregman_kernels::fused_bwd", "CPU")
    assert C.capability() in C.capabilities() and "default" in C.capabilities()


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", NAMES)
def test_matches_eager(capability, name, dtype):
    act = bk.get_activation(name)
    x, z, g = sample(act, 1031, dtype)
    rtol, atol = TOL[dtype]
    for got, want, what in zip(*both(act, dtype, x, z, g), ("y", "gx", "gz"), strict=True):
        assert got.dtype == dtype
        torch.testing.assert_close(got, want, rtol=rtol, atol=atol, equal_nan=True, msg=lambda m, w=what: f"{w}: {m}")


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("name", ["tanh", "asinh", "softplus"])
def test_layouts_bitwise_equal_contiguous(capability, name, dtype):
    """Transposed, sliced (storage offset) and expanded inputs give bit-identical results to contiguous copies, in
    outputs laid out like torch.empty_like(x)."""
    act = bk.get_activation(name)
    x, z, g = (t.reshape(23, 45) for t in sample(act, 23 * 45, dtype, seed=1))
    cases = {
        "transposed": (x.t(), z.t(), g.t()),
        "sliced": (x[1:, 3:], z[1:, 3:], g[1:, 3:]),
        "mixed": (x.t(), z.t().contiguous(), g.t().contiguous()),
        "expanded": (x[:1].expand(23, 45), z, g[:1, :1].expand(23, 45)),
    }
    for case, (xs, zs, gs) in cases.items():
        (y, gx, gz), _ = both(act, dtype, xs, zs, gs)
        (yc, gxc, gzc), _ = both(act, dtype, xs.contiguous(), zs.contiguous(), gs.contiguous())
        for got, want in ((y, yc), (gx, gxc), (gz, gzc)):
            assert torch.equal(got.nan_to_num(7.0), want.nan_to_num(7.0)), case
        assert y.stride() == torch.empty_like(xs).stride() and gz.stride() == torch.empty_like(zs).stride(), case
        assert y.data_ptr() not in (xs.data_ptr(), zs.data_ptr())


def test_tan_at_the_fp32_pole(capability):
    """fp32(π/2) > π/2: tan there is negative, tan(−fp32(π/2)) positive (raw op with bounds at ±fp32(π/2))."""
    p = 1.5707963705062866  # fp32(π/2)
    x, z = torch.zeros(19), torch.tensor([p, -p] * 9 + [-p])
    got = torch.ops.bregman_kernels.fused_fwd(x, z, A.ATAN, 0.0, -p, p)
    want = torch.ops.bregman_kernels.eager_fwd(x, z, A.ATAN, 0.0, -p, p)
    torch.testing.assert_close(got, want, rtol=2e-7, atol=0)
    assert (got.sign() == -z.sign()).all()


def test_empty_and_scalar():
    act = bk.get_activation("tanh")
    for shape in [(0,), (3, 0, 2), ()]:
        x, z = torch.zeros(shape), torch.full(shape, 0.5)
        (y, gx, gz), (ye, gxe, gze) = both(act, torch.float32, x, z, torch.ones(shape))
        assert y.shape == gx.shape == gz.shape == torch.Size(shape)
        torch.testing.assert_close((y, gx, gz), (ye, gxe, gze))


def test_nan_propagates_and_zero_grad_is_zero(capability):
    act = bk.get_activation("sigmoid")
    nan = math.nan
    x = torch.tensor([nan, 0.0, 0.0, nan, 0.0])
    z = torch.tensor([0.5, nan, 2.0, nan, -1.0])  # 2.0 and −1.0: beyond the bounds
    g = torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0])
    (y, gx, gz), _ = both(act, torch.float32, x, z, g)
    assert y[:2].isnan().all() and y[3].isnan()
    assert gx[:2].isnan().all() and gz[:2].isnan().all()
    assert gz[2] == 0 and gx[2] > 0
    assert (gx[3:] == 0).all() and (gz[3:] == 0).all()  # exactly 0 where g == 0, even for NaN / outside z


def test_many_threads_large_tensor():
    act = bk.get_activation("atan")
    x, z, g = sample(act, 300_001, torch.float32, seed=2)
    for got, want in zip(*both(act, torch.float32, x, z, g), strict=True):
        torch.testing.assert_close(got, want, rtol=2e-5, atol=2e-6, equal_nan=True)


def test_autograd_through_public_op_with_expanded_grad():
    act = "isru"
    x = torch.randn(7, 9, dtype=torch.float64, requires_grad=True)
    z = (0.999 * torch.rand(9, dtype=torch.float64) * 2 - 0.999).requires_grad_()
    bk.bregman_activation(x, z, act, backend="cpp").sum().backward()
    gx, gz = x.grad.clone(), z.grad.clone()
    x.grad = z.grad = None
    bk.bregman_activation(x, z, act, backend="eager").sum().backward()
    torch.testing.assert_close((gx, gz), (x.grad, z.grad), rtol=1e-12, atol=1e-13)


def test_gradcheck_and_opcheck():
    act = bk.get_activation("softplus10")
    x = torch.randn(11, dtype=torch.float64, requires_grad=True)
    z = (0.1 + torch.rand(11, dtype=torch.float64)).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: bk.bregman_activation(a, b, act, backend="cpp"), (x, z))
    lo, hi = act.bounds(1e-5, torch.float32)
    xf, zf = x.detach().float().requires_grad_(), z.detach().float().requires_grad_()
    torch.library.opcheck(ops.fused_fwd, (xf, zf, act.code, act.param, lo, hi))
    torch.library.opcheck(ops.fused_bwd, (torch.randn(11), xf.detach(), zf.detach(), act.code, act.param, lo, hi))


def test_bad_inputs_raise():
    with pytest.raises(RuntimeError, match="one shape"):
        ops.fused_fwd(torch.zeros(3), torch.zeros(4), A.TANH, 0.0, -1.0, 1.0)
    with pytest.raises(RuntimeError, match="activation code"):
        ops.fused_fwd(torch.zeros(3), torch.zeros(3), 42, 0.0, -1.0, 1.0)
    with pytest.raises(ValueError, match="not built or not supported"):
        C.set_capability("neon9000")


def test_cuda_kernels_registered_when_built():
    """CI compiles the CUDA extension without a GPU: whenever it was built, its import registers the CUDA kernels."""
    try:
        import bregman_kernels._C_cuda  # noqa: F401
    except ImportError as e:
        pytest.skip(f"CUDA extension not built: {cpp.cuda_build_status() or e}")
    for op in ("fused_fwd", "fused_bwd"):
        assert torch._C._dispatch_has_kernel_for_dispatch_key(f"bregman_kernels::{op}", "CUDA")


def test_missing_cuda_extension_says_why(tmp_path, monkeypatch):
    status = tmp_path / "status.txt"
    status.write_text("skipped at build time (BREGMAN_KERNELS_SKIP_CUDA=1)\n")
    monkeypatch.setattr(cpp, "CUDA_STATUS_FILE", str(status))
    with pytest.raises(bk.BackendUnavailable, match="BREGMAN_KERNELS_SKIP_CUDA"):
        cpp._import("bregman_kernels._no_such_extension", "CUDA", cpp.cuda_build_status())

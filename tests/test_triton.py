"""The Triton backend: its elementary functions, launch paths, registration, compile and GPU-only cases.

Without a GPU the kernels run under Triton's interpreter on CPU tensors (conftest.py sets TRITON_INTERPRET=1
before triton loads); the oracle matrix over every activation × dtype × layout is in test_op.py and
test_pitfalls.py, which cover "triton" through available_backends().
"""

import math
import warnings

import numpy as np
import pytest
import torch
from sampling import ACTIVATIONS, DTYPES, EPS, sample

import bregman_kernels as bk
from bregman_kernels import activations as A
from bregman_kernels.backends import eager

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
if "triton" not in bk.available_backends(DEVICE):
    pytest.skip(f"triton backend unavailable: {bk.backends.why_unavailable('triton', DEVICE)}",
                allow_module_level=True)

import triton  # noqa: E402
import triton.language as tl  # noqa: E402

from bregman_kernels.backends import triton_kernels as K  # noqa: E402
from bregman_kernels.backends import triton_math as M  # noqa: E402
from bregman_kernels.backends import triton_ops as T  # noqa: E402

GPU = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
# tolerance of the Triton output against eager in the same dtype, on well-conditioned inputs
RTOL = {torch.float64: 1e-13, torch.float32: 2e-6, torch.float16: 2e-3, torch.bfloat16: 1.6e-2}


def test_codes_match_registry():
    for name in ("SIGMOID", "TANH", "SCALED_TANH", "ATAN", "SIN", "ASINH", "ISRU", "SOFTPLUS", "RELU"):
        assert getattr(K, name).value == getattr(A, name), name
    assert K.ST_A.value == A.SCALED_TANH_A and K.ST_B.value == A.SCALED_TANH_B
    assert K.ST_A_HI.value == A.SCALED_TANH_A_HI32 and K.ST_A_LO.value == A.SCALED_TANH_A_LO32


def test_schemas_match_contract():
    from bregman_kernels import ops

    assert str(T.triton_fwd._schema) == "bregman_kernels::triton_fwd" + ops.FWD_SCHEMA
    assert str(T.triton_bwd._schema) == "bregman_kernels::triton_bwd" + ops.BWD_SCHEMA


# ---- elementary functions built from primitives, against torch's fp64 -------------------------------------------


def _spread(gen, lo, hi, n, logspan, signed):
    mag = torch.exp(torch.empty(n, dtype=torch.float64).uniform_(*logspan, generator=gen))
    if signed:
        mag = mag * (torch.randint(0, 2, (n,), generator=gen) * 2 - 1)
    return torch.cat([torch.empty(n, dtype=torch.float64).uniform_(lo, hi, generator=gen), mag])


_ELEMENTARY = {  # name (of M.UNARY_FUNCS): (reference, samples)
    "exp": (torch.exp, lambda g: _spread(g, -103, 88, 600, (-30, 4), True)),
    "log": (torch.log, lambda g: _spread(g, 0, 4, 600, (-100, 88), False)),
    "log1p": (torch.log1p, lambda g: torch.cat([_spread(g, -0.999, 4, 600, (-40, 80), False),
                                                   -torch.exp(torch.empty(300, dtype=torch.float64)
                                                              .uniform_(-40, -0.01, generator=g))])),
    "expm1": (torch.expm1, lambda g: _spread(g, -20, 20, 600, (-40, 4.4), True)),
    "tanh": (torch.tanh, lambda g: _spread(g, -20, 20, 600, (-40, 40), True)),
    "asinh": (torch.asinh, lambda g: _spread(g, -20, 20, 600, (-40, 40), True)),
    "atan": (torch.atan, lambda g: _spread(g, -20, 20, 600, (-40, 40), True)),
    "tan": (torch.tan, lambda g: torch.cat([torch.empty(600, dtype=torch.float64).uniform_(-1.5707, 1.5707,
                                                                                              generator=g),
                                               1.5707863 - torch.exp(torch.empty(300, dtype=torch.float64)
                                                                     .uniform_(-12, 0, generator=g))])),
    "asin": (torch.asin, lambda g: torch.cat([torch.empty(600, dtype=torch.float64).uniform_(-1, 1, generator=g),
                                                 1 - torch.exp(torch.empty(300, dtype=torch.float64)
                                                               .uniform_(-11.5, 0, generator=g))])),
}
# max error in ulps of the dtype (interpreter, measured: fp32 ≤ 2.3, fp64 ≤ 2.8 against 50 digits,
# docs/triton_accuracy.md); the fp64 bound leaves room for the fp64 reference's own ~1 ulp. On a GPU, fp32 division
# is div.full (≤ 2 ulp where the interpreter's is exact): two more ulps there, until measured
ULP_BOUND = {torch.float32: 3.0 if T.INTERPRETED else 5.0, torch.float64: 4.0}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("name", list(_ELEMENTARY))
def test_elementary_function_accuracy(name, dtype):
    ref_fn, make = _ELEMENTARY[name]
    code = M.UNARY_FUNCS.index(name)
    x = make(torch.Generator().manual_seed(code)).to(dtype)
    ref = ref_fn(x.double())
    out = torch.empty_like(x, device=DEVICE)
    with T._quiet():
        M.unary_kernel[(triton.cdiv(x.numel(), 1024),)](x.to(DEVICE), out, x.numel(), FN=code,
                                                       FP64=dtype == torch.float64, BLOCK=1024)
    out = out.cpu().double()
    ok = torch.isfinite(ref) & (ref.abs() >= torch.finfo(dtype).tiny)
    ulp = torch.from_numpy(np.spacing(ref[ok].abs().to(dtype).numpy()).astype(np.float64))
    err = ((out[ok] - ref[ok]).abs() / ulp).max().item()
    assert err <= ULP_BOUND[dtype], (name, err)
    # the rest (inf, 0, subnormal results) exactly as the reference, or within the dtype's smallest normal
    rest = ~ok & ~ref.isnan()
    assert ((out[rest] == ref[rest]) | ((out[rest] - ref[rest]).abs() < torch.finfo(dtype).tiny)).all()
    assert (out[ref.isnan()].isnan()).all()


def test_exp_log_special_values():
    x = torch.tensor([math.inf, -math.inf, math.nan, 0.0, -0.0, 89.0, 88.72, -104.0, -103.3, 1e-45], device=DEVICE)
    for code, ref in ((0, torch.exp), (1, torch.log), (2, torch.log1p), (3, torch.expm1)):
        out = torch.empty_like(x)
        with T._quiet():
            M.unary_kernel[(1,)](x, out, x.numel(), FN=code, FP64=False, BLOCK=16)
        r = ref(x.double()).float()
        assert torch.equal(out.isnan(), r.isnan()), code
        fin = ~r.isnan()
        assert ((out[fin] == r[fin]) | ((out[fin] - r[fin]).abs() <= 2e-7 * r[fin].abs())).all(), (code, out, r)


# ---- the ops against eager, every activation × dtype ----------------------------------------------------------


def _well_conditioned(name, dtype):
    """(x, z) inside the range, away from cancellation in x + ρ⁻¹(z) and from sin's turning points."""
    x, z = sample(name, dtype, n=255, seed=5)
    inv = eager.rho_inv(z.double(), bk.get_activation(name).code, bk.get_activation(name).param)
    keep = (x.double().abs() + inv.abs() < 3 * (x.double() + inv).abs()) & (x.double() + inv).abs().lt(1.2)
    return x[keep], z[keep]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_matches_eager(name, dtype):
    act = bk.get_activation(name)
    lo, hi = act.bounds(EPS, dtype)
    x, z = _well_conditioned(name, dtype)
    g = torch.linspace(-2, 2, x.numel(), dtype=torch.float64).to(dtype)
    args = (act.code, act.param, lo, hi)
    got = (T.triton_fwd(x.to(DEVICE), z.to(DEVICE), *args), *T.triton_bwd(g.to(DEVICE), x.to(DEVICE), z.to(DEVICE),
                                                                         *args))
    want = (eager.forward(x, z, *args), *eager.backward(g, x, z, *args))
    # 16-bit: both round one fp32 result, which may sit on either side of a rounding boundary: one ulp apart
    atol = {torch.float16: 1e-3, torch.bfloat16: 1e-2}.get(dtype, 0.0)
    for what, a, b in zip(("y", "gx", "gz"), got, want):
        assert a.dtype == dtype
        torch.testing.assert_close(a.cpu(), b, rtol=RTOL[dtype], atol=atol, msg=lambda m, w=what: f"{name} {w}: {m}")


def test_fp64_bounds_are_exact():
    """lo/hi reach fp64 kernels unrounded: z one ulp below lo is outside (zero z-gradient), lo itself inside."""
    act = bk.get_activation("sigmoid")
    lo, hi = act.bounds(EPS, torch.float64)
    z = torch.tensor([math.nextafter(lo, 0), lo, hi, math.nextafter(hi, 2)], dtype=torch.float64, device=DEVICE)
    x, g = torch.zeros_like(z), torch.ones_like(z)
    gx, gz = T.triton_bwd(g, x, z, act.code, act.param, lo, hi)
    assert gz[0] == 0 and gz[1] > 0 and gz[2] > 0 and gz[3] == 0
    y = T.triton_fwd(x, z, act.code, act.param, lo, hi)
    assert y[0].item() == pytest.approx(lo, rel=1e-15) and y[3].item() == pytest.approx(hi, rel=1e-15)


@triton.jit
def _to_bf16(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    K._store(out_ptr, offs, tl.load(x_ptr + offs, mask=mask), mask)


def test_bf16_rounds_to_nearest_even():
    """The fp32 → bf16 store rounds to nearest even exactly as torch does (the interpreter's own cast truncates)."""
    bits = torch.randint(-2**31, 2**31 - 1, (8192,), generator=torch.Generator().manual_seed(0), dtype=torch.int64)
    v = bits.to(torch.int32).view(torch.float32)
    ties = torch.tensor([1 + 2**-8, 1 + 3 * 2**-8, -(1 + 2**-8), 3.3895e38, 3.40282e38, 1e-40, -0.0])
    v = torch.cat([v[~v.isnan()], ties, torch.tensor([math.inf, -math.inf, math.nan])]).to(DEVICE)
    out = torch.empty(v.shape, dtype=torch.bfloat16, device=DEVICE)
    _to_bf16[(triton.cdiv(v.numel(), 1024),)](v, out, v.numel(), BLOCK=1024)
    want = v.to(torch.bfloat16)
    assert torch.equal(out.isnan(), want.isnan())
    fin = ~want.isnan()
    assert torch.equal(out[fin].view(torch.int16), want[fin].view(torch.int16))


# ---- launch paths, layouts, empty tensors -----------------------------------------------------------------------


def _layout_cases():
    base = torch.rand(6, 5, 4, 3, dtype=torch.float64) - 0.5
    t = torch.rand(9, 7, dtype=torch.float64) - 0.5
    yield "contiguous", t, t.flip(0)
    yield "both channels_last", *(b.contiguous(memory_format=torch.channels_last) for b in (base, base.flip(1)))
    yield "both transposed", t.t(), t.flip(1).t()
    yield "mixed", t.t(), t.t().contiguous()
    yield "size-1 dims, odd strides", t[:1].t(), t[1:2].t().contiguous()
    yield "sliced", (torch.rand(12, 10, dtype=torch.float64) - 0.5)[1:10:2, 2:9], t[::2]
    yield "expanded", (torch.rand(1, 7, dtype=torch.float64) - 0.5).expand(9, 7), t


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16], ids=str)
def test_layouts_match_contiguous_and_empty_like(dtype):
    act = bk.get_activation("tanh")
    args = (act.code, act.param, *act.bounds(EPS, dtype))
    for label, x, z in _layout_cases():
        x, z = x.to(dtype).to(DEVICE), (z * 1.5).to(dtype).to(DEVICE)
        g = torch.ones((), dtype=dtype, device=DEVICE).expand(x.shape)  # as from y.sum().backward()
        y = T.triton_fwd(x, z, *args)
        gx, gz = T.triton_bwd(g, x, z, *args)
        assert y.stride() == torch.empty_like(x).stride(), label
        assert gx.stride() == torch.empty_like(x).stride() and gz.stride() == torch.empty_like(z).stride(), label
        for out in (y, gx, gz):
            assert out.data_ptr() not in (x.data_ptr(), z.data_ptr(), g.data_ptr()), label
        xc, zc, gc = x.contiguous(), z.contiguous(), g.contiguous()
        assert torch.equal(y, T.triton_fwd(xc, zc, *args)), label
        for a, b in zip((gx, gz), T.triton_bwd(gc, xc, zc, *args)):
            assert torch.equal(a, b), label


def test_empty_launches_nothing(monkeypatch):
    calls = []
    monkeypatch.setattr(T, "_launch", lambda *a, **k: calls.append(a))
    x = torch.empty(3, 0, 2, device=DEVICE)
    assert T.triton_fwd(x, x, 1, 0.0, -1.0, 1.0).shape == (3, 0, 2)
    gx, gz = T.triton_bwd(x, x, x, 1, 0.0, -1.0, 1.0)
    assert gx.shape == gz.shape == (3, 0, 2) and not calls


def test_block_heuristic():
    assert T.block_size(torch.float32) == T.block_size(torch.float64) == 1024
    assert T.block_size(torch.float16) == T.block_size(torch.bfloat16) == 2048
    assert all(b % (32 * T.NUM_WARPS) == 0 for b in (1024, 2048))


# ---- registration: gradcheck, opcheck, torch.compile ----------------------------------------------------------


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_gradcheck_fp64(name):
    act = bk.get_activation(name)
    x, z = sample(name, torch.float64, n=24, seed=7)
    lo, hi = act.bounds(EPS, torch.float64)
    inside = (z > lo + 1e-6) & (z < hi - 1e-6)  # away from the clamp's kinks
    x, z = x[inside].to(DEVICE).requires_grad_(), z[inside].to(DEVICE).requires_grad_()
    f = lambda a, b: bk.bregman_activation(a, b, name, backend="triton")  # noqa: E731
    assert torch.autograd.gradcheck(f, (x, z), eps=1e-7, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_opcheck(dtype):
    act = bk.get_activation("scaled_tanh")
    lo, hi = act.bounds(EPS, dtype)
    x = torch.randn(5, 7, dtype=dtype, device=DEVICE)
    z = (torch.rand(7, 5, dtype=dtype, device=DEVICE) * 3 - 1.5).t()
    g = torch.randn(5, 7, dtype=dtype, device=DEVICE)
    torch.library.opcheck(T.triton_fwd, (x.requires_grad_(), z, act.code, act.param, lo, hi))
    torch.library.opcheck(T.triton_bwd, (g, x.detach(), z, act.code, act.param, lo, hi))


@pytest.mark.parametrize("name", ["softplus", "asinh", "atan"])
def test_compile_fullgraph_matches_eager(name):
    act = bk.get_activation(name)
    lo, hi = act.bounds(EPS, torch.float32)
    x, z = (t.to(DEVICE) for t in sample(name, torch.float32, n=64, seed=2))

    def f(a, b, op):
        return (op(a, b, act.code, act.param, lo, hi) * 2).sum()

    torch._dynamo.reset()
    compiled = torch.compile(f, fullgraph=True)
    outs = []
    for fn, op in ((compiled, T.triton_fwd), (f, bk.ops.eager_fwd)):
        a, b = x.clone().requires_grad_(), z.clone().requires_grad_()
        loss = fn(a, b, op)
        loss.backward()
        outs.append((loss.detach(), a.grad, b.grad))
    for got, want in zip(*outs):
        torch.testing.assert_close(got, want, rtol=2e-5, atol=1e-6)


def test_vmap():
    act = bk.get_activation("tanh")
    lo, hi = act.bounds(EPS, torch.float32)
    x = torch.randn(3, 5, device=DEVICE)
    z = torch.rand(5, 3, device=DEVICE).t() * 1.6 - 0.8
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a missing batching rule warns about a per-sample loop
        got = torch.func.vmap(lambda a, b: T.triton_fwd(a, b, act.code, act.param, lo, hi))(x, z)
    torch.testing.assert_close(got, T.triton_fwd(x, z, act.code, act.param, lo, hi))


# ---- GPU only ----------------------------------------------------------------------------------------------------


@GPU
def test_cuda_graph_and_side_stream():
    act = bk.get_activation("atan")
    lo, hi = act.bounds(EPS, torch.float32)
    x = torch.randn(4099, device="cuda")
    z = torch.rand(4099, device="cuda") * 3 - 1.5
    want = T.triton_fwd(x, z, act.code, act.param, lo, hi)
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(2):  # warm-up (compiles) off the capture
            T.triton_fwd(x, z, act.code, act.param, lo, hi)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            y = T.triton_fwd(x, z, act.code, act.param, lo, hi)
    torch.cuda.current_stream().wait_stream(s)
    x.mul_(0.5)
    graph.replay()
    torch.cuda.synchronize()
    torch.testing.assert_close(y, T.triton_fwd(x, z, act.code, act.param, lo, hi))
    assert not torch.equal(y, want)


@GPU
@pytest.mark.skipif(torch.cuda.is_available() and torch.cuda.get_device_properties(0).total_memory < 24 * 2**30,
                    reason="needs 24 GiB of GPU memory")
def test_int64_offsets_past_2_31():
    n = 2**31 + 1024
    x = torch.zeros(n, dtype=torch.float16, device="cuda")
    z = torch.full((n,), 0.25, dtype=torch.float16, device="cuda")
    z[-3:] = -0.5
    y = T.triton_fwd(x, z, A.TANH, 0.0, *bk.get_activation("tanh").bounds(EPS, torch.float16))
    assert y[0].item() == 0.25 and (y[-3:] == -0.5).all() and y[-4].item() == 0.25
    del y
    gx, gz = T.triton_bwd(torch.ones_like(x), x, z, A.TANH, 0.0, *bk.get_activation("tanh").bounds(EPS, torch.float16))
    assert gx[-1].item() == pytest.approx(0.75, rel=1e-3) and gz[-1].item() == 1.0


_AOT = """
import sys
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource, compile
from bregman_kernels.backends import triton_kernels as K
target = GPUTarget("cuda", 90, 32)
def sig(names, ptr, scalars):
    return {**{n: ptr for n in names}, "n": "i64", **scalars}
f32 = {"param": "fp32", "lo": "fp32", "hi": "fp32", "ACT": "constexpr", "BLOCK": "constexpr"}
f64 = {"PARAM": "constexpr", "LO": "constexpr", "HI": "constexpr", "ACT": "constexpr", "BLOCK": "constexpr"}
fwd, bwd = ["x_ptr", "z_ptr", "out_ptr"], ["g_ptr", "x_ptr", "z_ptr", "gx_ptr", "gz_ptr"]
for act in range(9):
    for kern, names in ((K.fwd_kernel, fwd), (K.bwd_kernel, bwd)):
        ptr = "*bf16" if act == 1 else "*fp32"
        compile(ASTSource(kern, sig(names, ptr, f32), {"ACT": act, "BLOCK": 1024}), target=target)
for kern, names in ((K.fwd_kernel_f64, fwd), (K.bwd_kernel_f64, bwd)):
    consts = {"PARAM": 1000.0, "LO": 1e-5, "HI": float("inf"), "ACT": 7, "BLOCK": 1024}
    compile(ASTSource(kern, sig(names, "*fp64", f64), consts), target=target)
print("compiled")
"""


@pytest.mark.skipif(torch.cuda.is_available(), reason="the GPU tests compile and run the kernels themselves")
def test_kernels_compile_for_the_gpu():
    """Without a GPU the kernels are only interpreted: compile every one through Triton's real compiler (to sm_90
    PTX and cubin, no device needed) in a process without TRITON_INTERPRET, so that GPU-only failures show here."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["PYTHONPATH"] = os.pathsep.join([os.path.dirname(os.path.dirname(bk.__file__)), env.get("PYTHONPATH", "")])
    r = subprocess.run([sys.executable, "-c", _AOT], env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0 and "compiled" in r.stdout, r.stderr[-3000:]

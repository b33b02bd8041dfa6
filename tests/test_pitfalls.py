"""The fault classes of PITFALLS.md, each as pinned inputs checked against 50-digit references, on every backend."""

import math

import pytest
import torch
from mp_reference import reference
from sampling import ACTIVATIONS, EPS
from test_op import CASES, IDS

import bregman_kernels as bk

F32, F64 = torch.float32, torch.float64
INF = math.inf


def _eval(backend, device, name, xs, zs, dtype, g=None, eps=EPS):
    x = torch.tensor(xs, dtype=dtype, device=device, requires_grad=True)
    z = torch.tensor(zs, dtype=dtype, device=device, requires_grad=True)
    y = bk.bregman_activation(x, z, name, eps=eps, backend=backend)
    g = torch.ones_like(y) if g is None else torch.tensor(g, dtype=dtype, device=device)
    gx, gz = torch.autograd.grad(y, (x, z), g)
    return y.detach().cpu().double(), gx.cpu().double(), gz.cpu().double()


def _assert_ref(backend, device, name, xs, zs, dtype=F32, rtol=2e-6, atol=None, eps=EPS):
    """Values and gradients within rtol of the 50-digit reference (atol: the dtype's smallest normal)."""
    atol = torch.finfo(dtype).tiny if atol is None else atol
    act = bk.get_activation(name)
    lo, hi = act.bounds(eps, dtype)
    got = _eval(backend, device, name, xs, zs, dtype, eps=eps)
    xs_d = torch.tensor(xs, dtype=dtype).double().tolist()
    zs_d = torch.tensor(zs, dtype=dtype).double().tolist()
    for i, (x, z) in enumerate(zip(xs_d, zs_d)):
        want = reference(act.kind, x, z, lo, hi, act.param or 1.0)
        for what, g, w in zip(("y", "grad_x", "grad_z"), got, want):
            v = g[i].item()
            assert math.isfinite(v) and abs(v - w) <= atol + rtol * abs(w), (name, what, x, z, v, w)


@pytest.mark.parametrize("backend,device", CASES, ids=IDS)
def test_softplus_large_beta(backend, device):
    """1, 2: β = 1000 — no overflow of expm1(βz) at z = 0.09 and beyond, no NaN from an unselected branch."""
    y, gx, gz = _eval(backend, device, "softplus", [0.0] * 4, [1e-5, 0.05, 0.5, 10.0], F32)
    torch.testing.assert_close(y, torch.tensor([1e-5, 0.05, 0.5, 10.0], dtype=F32).double(), rtol=4e-7, atol=0)
    _assert_ref(backend, device, "softplus", [0.0, 0.0, 0.0, 0.0, 0.1], [1e-5, 0.05, 0.5, 10.0, 1.0])
    _, gx, gz = _eval(backend, device, "softplus", [0.1], [1.0], F32)
    assert abs(gx.item() - 1) < 1e-6 and abs(gz.item() - 1) < 1e-6


@pytest.mark.parametrize("backend,device", CASES, ids=IDS)
def test_inverse_near_zero_and_bounds(backend, device):
    """3: atanh/logit near 0 keep relative accuracy; 1 − z² near ±1 does not cancel (isru ∂y/∂z = 1)."""
    for name in ("tanh", "scaled_tanh", "atan", "sin", "isru", "asinh"):
        _assert_ref(backend, device, name, [0.0, 0.0, 1e-3], [1e-30, -3e-12, 1e-20])
    _assert_ref(backend, device, "sigmoid", [0.0, 0.0, 1e-6], [0.5, 0.5000001, 0.4999999])
    y, gx, gz = _eval(backend, device, "isru", [0.0], [1 - 2e-5], F32)
    assert abs(gz.item() - 1) < 1e-4, gz
    for name in ("tanh", "isru", "sin", "sigmoid", "scaled_tanh", "atan"):
        act = bk.get_activation(name)
        lo, hi = act.bounds(EPS, F32)
        _assert_ref(backend, device, name, [0.0, 0.3, -0.3, 0.0], [hi, hi, lo, lo], rtol=2e-5)


@pytest.mark.parametrize("backend,device", CASES, ids=IDS)
def test_zero_upstream_gradient_is_exactly_zero(backend, device):
    """4: where grad_output is 0 both gradients are exactly 0, at and beyond the bounds, for any x."""
    xs = [0.0, 1e30, -1e30, INF, -INF, 3.0, float("nan"), 0.0]
    for name in ACTIVATIONS:
        act = bk.get_activation(name)
        lo, hi = act.bounds(EPS, F32)
        zs = [lo, hi if math.isfinite(hi) else 1e30, act.lo - 1, (act.hi + 1) if math.isfinite(act.hi) else 1e38,
              0.5 * lo, lo, 0.1, float("nan")]
        for dtype in (F32, F64, torch.float16, torch.bfloat16):
            _, gx, gz = _eval(backend, device, name, xs, zs, dtype, g=[0.0] * len(xs))
            assert (gx == 0).all() and (gz == 0).all(), (name, dtype, gx, gz)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("backend,device", CASES, ids=IDS)
def test_sixteen_bit_clamp_in_fp32(backend, device, dtype):
    """5: 1 − 1e-5 is 1.0 in fp16/bf16; the clamp runs in fp32, so z = 1 still maps to a finite ρ⁻¹."""
    y, gx, gz = _eval(backend, device, "tanh", [-3.0, 0.0], [1.0, -1.0], dtype)
    want = math.tanh(-3 + math.atanh(1 - 1e-5))  # 0.996; a 16-bit clamp would give tanh(−3 + inf) = 1
    assert abs(y[0].item() - want) <= 2.0**-8 * want and y[0].item() < 1.0
    assert torch.isfinite(gx).all() and torch.isfinite(gz).all()
    assert gz[0] == 0 and gz[1] == 0  # beyond the bounds


@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
@pytest.mark.parametrize("backend,device", CASES, ids=IDS)
def test_clamp_gradient_at_and_beyond_bounds(backend, device, dtype):
    """6: ∂y/∂z passes for lo ≤ z ≤ hi, bounds included, and is 0 strictly outside."""
    for name in ("sigmoid", "tanh", "scaled_tanh", "atan", "sin", "isru", "softplus", "relu"):
        act = bk.get_activation(name)
        lo, hi = act.bounds(EPS, dtype)
        ends = [lo] if not math.isfinite(hi) else [lo, hi]
        at = list(ends)
        out = [torch.nextafter(torch.tensor(v, dtype=dtype), torch.tensor(v + d, dtype=dtype)).item()
               for v, d in zip(ends, (-1.0, 1.0))]
        _, _, gz_at = _eval(backend, device, name, [0.0] * len(at), at, dtype)
        _, _, gz_out = _eval(backend, device, name, [0.0] * len(out), out, dtype)
        assert (gz_at != 0).all() and torch.isfinite(gz_at).all(), (name, gz_at)
        assert (gz_out == 0).all(), (name, gz_out)
        rtol = 1e-3 if dtype == F32 else 1e-8  # ∂y/∂z at x = 0 is 1
        torch.testing.assert_close(gz_at, torch.ones_like(gz_at), rtol=rtol, atol=0)


@pytest.mark.parametrize("backend,device", CASES, ids=IDS)
def test_nan_is_data(backend, device):
    """7: NaN in x or in z comes out as NaN (a min/max clamp would turn NaN into a bound)."""
    nan = float("nan")
    for name in ACTIVATIONS:
        for dtype in (F32, F64, torch.float16, torch.bfloat16):
            y, gx, gz = _eval(backend, device, name, [nan, 0.0, nan], [0.1, nan, nan], dtype)
            assert y.isnan().all(), (name, dtype, y)
            assert gx.isnan().all() and gz.isnan().all(), (name, dtype, gx, gz)


@pytest.mark.parametrize("backend,device", CASES, ids=IDS)
def test_whole_domain_transcendentals(backend, device):
    """8: tan near the pole, sinh for large |z|, the bent identity far left, softplus far out, huge x."""
    _assert_ref(backend, device, "atan", [0.0, 1.0, -2.0], [1.5707963, -1.5707963, 1.5707])
    _assert_ref(backend, device, "asinh", [0.0, 1.0, -5.0, 1e30, 0.0, 3e8],
                [100.0, -100.0, 1000.0, 1000.0, -88.0, 21.0])
    _assert_ref(backend, device, "asinh", [0.0, 2.0], [100.0, -700.0], dtype=F64, rtol=1e-12)
    _assert_ref(backend, device, "relu", [-1e6, -1e15, -3.0, 1e30], [0.5, 0.5, 1e-5, 2.0], rtol=4e-6)
    _assert_ref(backend, device, "softplus", [-0.05, 30.0, -1e3], [0.01, 0.01, 50.0], rtol=4e-6)
    _assert_ref(backend, device, "softplus10", [-8.0, 1e4, 2.0], [0.01, 0.5, 3.0], rtol=4e-6)
    _assert_ref(backend, device, "tanh", [1e30, -1e30, 9.0, -20.0], [0.0, 0.5, 0.5, 0.9], rtol=4e-6)
    _assert_ref(backend, device, "isru", [1e30, -1e20, 1e3, 5e18], [0.0, 0.5, 0.5, 0.0], rtol=4e-6)
    _assert_ref(backend, device, "scaled_tanh", [50.0, -3.0], [1.0, 1.7], rtol=4e-6)
    _assert_ref(backend, device, "sigmoid", [-100.0, 100.0, 30.0], [0.5, 0.5, 0.3], rtol=4e-6)
    # results and gradients that are normal fp32 numbers although e^-|x| is not
    _assert_ref(backend, device, "sigmoid", [-90.0, 100.0, -95.0], [0.99999, 1e-5, 0.9], rtol=4e-6)
    _assert_ref(backend, device, "tanh", [-50.0, 45.0], [0.99999, -0.99999], rtol=4e-6)
    _assert_ref(backend, device, "scaled_tanh", [-75.0], [1.7158], rtol=4e-6)
    # fp64 near the bound: A − |z| with the decimal A = 1.7159 (not its double) to full precision
    _assert_ref(backend, device, "scaled_tanh", [0.0, -5.0, 2.0], [1.71589, 1.7158899, -1.7158899], dtype=F64,
                rtol=1e-13)
    _assert_ref(backend, device, "asinh", [2e19, 1e30, -2e19, 3e38], [0.0, 0.0, 1.0, -5.0], rtol=4e-6)


@pytest.mark.parametrize("backend,device", CASES, ids=IDS)
def test_infinite_pre_activation(backend, device):
    """ρ(±inf) is the limit of ρ (sin: NaN), with zero gradients at the limit."""
    limits = {"sigmoid": (1, 0), "tanh": (1, -1), "scaled_tanh": (1.7159, -1.7159), "atan": (math.pi / 2, -math.pi / 2),
              "asinh": (INF, -INF), "isru": (1, -1), "softplus": (INF, 0), "softplus10": (INF, 0), "relu": (INF, 0)}
    for name, (up, down) in limits.items():
        y, gx, gz = _eval(backend, device, name, [INF, -INF], [0.5, 0.5], F32)
        torch.testing.assert_close(y, torch.tensor([up, down], dtype=F32).double(), rtol=1e-6, atol=0)
        if name in ("softplus", "softplus10", "relu", "asinh"):
            continue  # ρ' → 1 (or 1/|u| for asinh) at +inf: checked by the oracle tests' finite range
        assert (gx == 0).all() and (gz == 0).all(), (name, gx, gz)
    y, _, _ = _eval(backend, device, "sin", [INF], [0.5], F32)
    assert y.isnan().all()


@pytest.mark.parametrize("eps", [0.0, 1e-9, 1e-8, 3e-8])
@pytest.mark.parametrize("backend,device", CASES, ids=IDS)
def test_small_eps_keeps_the_clamp_inside_the_range(backend, device, eps):
    """fp32(π/2 − eps) may round to fp32(π/2) > π/2, where tan changes sign: the bounds stay inside (lo, hi)."""
    for dtype in (F32, F64, torch.bfloat16):
        y = bk.bregman_activation(torch.zeros(2, dtype=dtype, device=device),
                                  torch.tensor([1.5707963, 2.0], dtype=dtype, device=device), "atan", eps=eps,
                                  backend=backend)
        assert (y > 1.5).all(), (dtype, y)
        for name in ("tanh", "sigmoid", "isru", "sin", "scaled_tanh"):
            act = bk.get_activation(name)
            lo, hi = act.bounds(eps, dtype)
            assert act.lo < lo < hi < act.hi
            z = torch.tensor([act.lo - 1, act.lo, act.hi, act.hi + 1], dtype=dtype, device=device)
            y = bk.bregman_activation(torch.zeros_like(z), z, name, eps=eps, backend=backend)
            assert torch.isfinite(y).all() and (y[:2] < y[2:]).all(), (name, dtype, y)


@pytest.mark.parametrize("backend,device", CASES, ids=IDS)
def test_double_backward_raises(backend, device):
    """The backward ops have no derivative: asking for one raises instead of returning a wrong number."""
    x = torch.randn(4, 3, dtype=F64, device=device, requires_grad=True)
    w = torch.randn(3, 3, dtype=F64, device=device, requires_grad=True)
    y = bk.bregman_activation(x @ w, torch.tanh(x), "tanh", backend=backend)
    (g,) = torch.autograd.grad(y.sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="double backward"):
        g.square().sum().backward()


@pytest.mark.parametrize("backend,device", CASES, ids=IDS)
def test_eps_zero_subnormal_bounds(backend, device):
    """eps = 0: the lower bound of sigmoid and softplus is the smallest subnormal, so z = 0 is clamped to it; the
    joint forms (which need a normal z, resp. c = 1 − e^{−βz}) must give way to the plain composition there. And
    an exponential flushed to 0 (e^{−87.5}, e^{−89}) must not pick the wrong branch."""
    for dtype in (F32, F64):
        _assert_ref(backend, device, "softplus", [1.0, -3.0], [0.0, 0.0], dtype=dtype, eps=0.0, rtol=4e-6)
        _assert_ref(backend, device, "sigmoid", [100.0, 89.0, -5.0], [0.0, 0.0, 0.0], dtype=dtype, eps=0.0,
                    rtol=4e-6)
    _assert_ref(backend, device, "softplus1", [87.5], [0.0], eps=0.0, rtol=4e-6)
    # β·z underflows in fp32 here (the true y is 0.038): no NaN from 0/0, the eager contract's answer
    got = _eval(backend, device, "softplus1e-30", [1e32, 3e38], [0.0, 0.0], F32, eps=0.0)
    want = _eval("eager", "cpu", "softplus1e-30", [1e32, 3e38], [0.0, 0.0], F32, eps=0.0)
    for g, w in zip(got, want, strict=True):
        assert torch.isfinite(g).all()
        torch.testing.assert_close(g, w)
    _assert_ref(backend, device, "asinh", [-3e38, 1e37], [89.0, 88.0], rtol=4e-6)

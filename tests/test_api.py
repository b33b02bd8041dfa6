"""Public API, dispatch, registration (opcheck, torch.compile, vmap, autocast) and every error case."""

import math
import os
import subprocess
import sys

import pytest
import torch
from test_op import CASES, IDS

import bregman_kernels as bk
from bregman_kernels import backends, ops

FAMILIES = {"eager": "eager", "cpp": "fused", "cuda": "fused", "triton": "triton"}


def _op_pair(backend):
    ns = torch.ops.bregman_kernels
    fam = FAMILIES[backend]
    return getattr(ns, f"{fam}_fwd").default, getattr(ns, f"{fam}_bwd").default


def _opcheck_samples(device):
    act = bk.get_activation("tanh")
    lo, hi = act.bounds(1e-5, torch.float32)
    gen = torch.Generator().manual_seed(0)
    for dtype in (torch.float32, torch.float64, torch.bfloat16):
        for shape in ((7,), (3, 5)):
            x = torch.randn(shape, generator=gen).to(dtype).to(device)
            z = (torch.rand(shape, generator=gen) * 2 - 1).to(dtype).to(device)
            yield x, z, act.code, 0.0, lo, hi
            yield x.requires_grad_(), z.requires_grad_(), act.code, 0.0, lo, hi
    sp = bk.get_activation("softplus")
    x = torch.randn(4, 6, generator=gen).t().to(device)
    z = torch.rand(4, 6, generator=gen).t().to(device)
    yield x.requires_grad_(), z, sp.code, sp.param, *sp.bounds(1e-5, torch.float32)


@pytest.mark.parametrize("backend,device", CASES, ids=IDS)
def test_opcheck(backend, device):
    fwd, bwd = _op_pair(backend)
    for args in _opcheck_samples(device):
        torch.library.opcheck(fwd, args)
        x, z = args[0].detach(), args[1].detach()
        torch.library.opcheck(bwd, (torch.randn_like(x), x, z, *args[2:]))


@pytest.mark.parametrize("backend,device", CASES, ids=IDS)
def test_gradcheck_fp64(backend, device):
    for name in ("sigmoid", "tanh", "scaled_tanh", "atan", "sin", "asinh", "isru", "softplus10", "relu"):
        act = bk.get_activation(name)
        x = torch.randn(6, dtype=torch.float64, device=device, requires_grad=True)
        if act.kind == "asinh":
            z = torch.tensor([-30.0, -2.0, 0.1, 1.0, 21.0, 0.0], dtype=torch.float64, device=device)
        elif math.isfinite(act.hi):
            z = act.lo + (act.hi - act.lo) * torch.linspace(0.05, 0.95, 6, dtype=torch.float64, device=device)
        else:
            z = torch.linspace(0.05, 3, 6, dtype=torch.float64, device=device)
        z.requires_grad_()
        assert torch.autograd.gradcheck(lambda a, b, n=name: bk.bregman_activation(a, b, n, backend=backend), (x, z))


@pytest.mark.parametrize("backend,device", CASES, ids=IDS)
def test_compile_fullgraph_matches_eager(backend, device):
    torch._dynamo.reset()
    lin = torch.nn.Linear(8, 8).double().to(device)

    def layer(z):
        return bk.bregman_activation(lin(z), z, "atan", backend=backend)

    z = (torch.rand(5, 8, dtype=torch.float64, device=device) - 0.5).requires_grad_()
    z2 = z.detach().clone().requires_grad_()
    y = layer(z)
    y.square().sum().backward()
    grads = [p.grad.clone() for p in lin.parameters()]
    lin.zero_grad()
    yc = torch.compile(layer, fullgraph=True)(z2)
    yc.square().sum().backward()
    torch.testing.assert_close(yc, y)
    torch.testing.assert_close(z2.grad, z.grad)
    for g, p in zip(grads, lin.parameters()):
        torch.testing.assert_close(p.grad, g)


@pytest.mark.parametrize("backend,device", CASES, ids=IDS)
def test_vmap(backend, device):
    x = torch.randn(3, 4, dtype=torch.float64, device=device)
    z = torch.rand(4, dtype=torch.float64, device=device) - 0.5
    got = torch.func.vmap(lambda a: bk.bregman_activation(a, z, "tanh", backend=backend))(x)
    torch.testing.assert_close(got, torch.tanh(x + torch.atanh(z)))


def test_func_grad_raises_clearly():
    """torch.func.grad/jacrev are not supported by torch.library autograd registrations (documented)."""
    x, z = torch.randn(3, dtype=torch.float64), torch.rand(3, dtype=torch.float64) - 0.5
    with pytest.raises(RuntimeError, match="functorch|setup_context"):
        torch.func.grad(lambda a: bk.bregman_activation(a, z, "tanh", backend="eager").sum())(x)


@pytest.mark.parametrize("backend,device", CASES, ids=IDS)
def test_autocast_promotes_like_elementwise_ops(backend, device):
    """Under autocast the op is no autocast op: it runs in the promoted dtype of x and z."""
    lin = torch.nn.Linear(4, 4).to(device)
    z = torch.rand(2, 4, device=device) - 0.5
    dt = torch.bfloat16
    with torch.autocast(device_type=device, dtype=dt):
        x = lin(z)
        y = bk.bregman_activation(x, z, "tanh", backend=backend)
        y16 = bk.bregman_activation(x, z.to(dt), "tanh", backend=backend)
    assert x.dtype == dt and y.dtype == torch.float32 and y16.dtype == dt
    y.sum().backward()
    assert lin.weight.grad is not None and torch.isfinite(lin.weight.grad).all()


def test_zero_dim_tensor_does_not_widen():
    x = torch.randn(3, 4)
    y = bk.bregman_activation(x, torch.tensor(0.5, dtype=torch.float64), "tanh", backend="eager")
    assert y.dtype == (x + torch.tensor(0.5, dtype=torch.float64)).dtype == torch.float32


def test_eps_accepts_numpy_scalars():
    import numpy as np

    x, z = torch.randn(4), torch.rand(4) - 0.5
    torch.testing.assert_close(bk.bregman_activation(x, z, eps=np.float32(1e-5)), bk.bregman_activation(x, z))


def test_mixed_dtypes_promote():
    x = torch.randn(4, dtype=torch.float16)
    z = torch.rand(4, dtype=torch.float64) - 0.5
    y = bk.bregman_activation(x, z, "tanh", backend="eager")
    assert y.dtype == torch.float64
    torch.testing.assert_close(y, torch.tanh(x.double() + torch.atanh(z)))


def test_registry():
    names = ["sigmoid", "tanh", "scaled_tanh", "atan", "sin", "asinh", "isru", "softplus", "relu"]
    assert [bk.get_activation(n).code for n in names] == list(range(9))
    sp = bk.get_activation("softplus")
    assert (sp.kind, sp.param, sp.lo, sp.hi) == ("softplus", 1000.0, 0.0, math.inf)
    assert bk.get_activation("softplus10").param == 10.0
    assert bk.get_activation("softplus2.5").param == 2.5
    assert bk.get_activation("softplus1E3").param == 1000.0 and bk.get_activation("softplus.5").param == 0.5
    assert bk.get_activation("atan").hi == math.pi / 2
    assert bk.get_activation("relu").rho_at_zero() == 0.5
    assert bk.get_activation("sigmoid").rho_at_zero() == 0.5
    tanh = bk.get_activation("tanh")
    assert tanh.bounds(1e-5, torch.float16) == tanh.bounds(1e-5, torch.float32)
    lo, hi = bk.get_activation("tanh").bounds(1e-5, torch.float32)
    assert hi < 1 and torch.tensor(hi, dtype=torch.float32).item() == hi


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda x, z: bk.bregman_activation(x, z, "relu6"), ValueError, "unknown activation 'relu6'; valid: sigmoid"),
        (lambda x, z: bk.bregman_activation(x, z, "softplus0"), ValueError, "β <= 1e30"),
        (lambda x, z: bk.bregman_activation(x, z, "softplus1e-300"), ValueError, "β <= 1e30"),
        (lambda x, z: bk.bregman_activation(x, z, 3), TypeError, "activation must be a string"),
        (lambda x, z: bk.bregman_activation(x.int(), z), TypeError, "x has dtype torch.int32"),
        (lambda x, z: bk.bregman_activation(x, z.to(torch.complex64)), TypeError, "z has dtype torch.complex64"),
        (lambda x, z: bk.bregman_activation(x.tolist(), z), TypeError, "x must be a torch.Tensor"),
        (lambda x, z: bk.bregman_activation(x, z.to("meta")), ValueError, "x is on cpu but z is on meta"),
        (lambda x, z: bk.bregman_activation(x, z[:3]), ValueError, r"shapes \(4,\) and \(3,\) do not broadcast"),
        (lambda x, z: bk.bregman_activation(x, z, eps=-1e-5), ValueError, "eps must be a finite number >= 0"),
        (lambda x, z: bk.bregman_activation(x, z, eps=float("nan")), ValueError, "eps must be"),
        (lambda x, z: bk.bregman_activation(x, z, eps=1.0), ValueError, "empty clamp interval"),
        (lambda x, z: bk.bregman_activation(x, z, backend="cudnn"), ValueError, "unknown backend 'cudnn'"),
        (lambda x, z: bk.bregman_activation(x, z, backend="cuda"), bk.BackendUnavailable,
         "does not run on cpu tensors"),
    ],
)
def test_errors(call, exc, match):
    x, z = torch.randn(4), torch.rand(4) - 0.5
    with pytest.raises(exc, match=match):
        call(x, z)


def test_available_backends_and_reasons():
    assert "eager" in bk.available_backends("cpu")
    assert "cuda" not in bk.available_backends("cpu")
    if not torch.cuda.is_available():
        assert "no CUDA device" in backends.why_unavailable("cuda", "cuda")


def test_env_override(monkeypatch):
    x, z = torch.randn(4), torch.rand(4) - 0.5
    monkeypatch.setenv(backends.ENV_BACKEND, "eager")
    assert backends.resolve("auto", "cpu")[0] == "eager"
    monkeypatch.setenv(backends.ENV_BACKEND, "cuda")
    with pytest.raises(bk.BackendUnavailable, match="cuda"):
        bk.bregman_activation(x, z)


def test_auto_picks_first_available():
    name, op = backends.resolve("auto", "cpu")
    assert name == next(b for b in backends.AUTO_ORDER["cpu"] if b in bk.available_backends("cpu"))
    assert op in (ops.eager_fwd, ops.fused_fwd)


def test_compile_first_call_resolves_backend_outside_the_graph():
    """A fresh process whose first call is compiled (fullgraph) with backend="auto": loading is not traced."""
    code = ("import torch, bregman_kernels as bk\n"
            "f = torch.compile(lambda x, z: bk.bregman_activation(x, z, 'tanh'), fullgraph=True)\n"
            "x = torch.randn(8, requires_grad=True)\n"
            "f(x, torch.rand(8) - 0.5).sum().backward()\n"
            "assert x.grad is not None\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_forward_mode_ad_raises():
    """The ops have no jvp rule: forward-mode AD would silently see zero tangents, so it raises."""
    import torch.autograd.forward_ad as fwAD

    x, z = torch.tensor([0.5, -1.0]), torch.tensor([0.3, 0.2])
    with pytest.raises(RuntimeError, match="forward-mode AD"):
        torch.func.jvp(lambda a: bk.bregman_activation(a, z, "tanh"), (x,), (torch.ones(2),))
    with pytest.raises(RuntimeError, match="forward-mode AD"):
        torch.func.jacfwd(lambda a: bk.bregman_activation(a, z, "tanh"))(x)
    with fwAD.dual_level(), pytest.raises(RuntimeError, match="forward-mode AD"):
        bk.bregman_activation(fwAD.make_dual(x, torch.ones(2)), z)

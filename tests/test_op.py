"""Every backend against the fp64 oracle: every activation × dtype × shape/layout, values and gradients."""

import pytest
import torch
from sampling import ACTIVATIONS, DTYPES, EPS, sample
from tolerances import check_against_oracle

import bregman_kernels as bk

CPU_BACKENDS = bk.available_backends("cpu")
GPU_BACKENDS = bk.available_backends("cuda") if torch.cuda.is_available() else []
CASES = [(b, "cpu") for b in CPU_BACKENDS] + [(b, "cuda") for b in GPU_BACKENDS]
IDS = [f"{b}-{d}" for b, d in CASES]


def run(x, z, g, name, backend):
    """(y, ∂L/∂x, ∂L/∂z) through the public op and autograd."""
    x = x.detach().requires_grad_()
    z = z.detach().requires_grad_()
    y = bk.bregman_activation(x, z, name, eps=EPS, backend=backend)
    gx, gz = torch.autograd.grad(y, (x, z), g)
    return y.detach(), gx, gz


def _grad_like(x, seed=1):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(x.shape, generator=gen, dtype=torch.float64).to(x.dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", ACTIVATIONS)
@pytest.mark.parametrize("backend,device", CASES, ids=IDS)
def test_matches_oracle(backend, device, name, dtype):
    act = bk.get_activation(name)
    x, z = sample(name, dtype)
    g = _grad_like(x)
    g[::7] = 0  # exact zeros upstream: gradients exactly 0 there
    lo, hi = act.bounds(EPS, dtype)
    outs = run(x.to(device), z.to(device), g.to(device), name, backend)
    outs = [o.cpu() for o in outs]
    check_against_oracle(act, x, z, g, lo, hi, outs, f"{backend}/{name}/{dtype}")
    assert (outs[1][::7] == 0).all() and (outs[2][::7] == 0).all()


def _layouts(dtype):
    """(label, x, z) pairs of one shape and different memory layouts, plus the odd shapes."""
    gen = torch.Generator().manual_seed(3)

    def r(*shape):
        return torch.rand(*shape, generator=gen, dtype=torch.float64).to(dtype)

    base = r(8, 6, 5, 3)
    yield "1 element", r(1) * 2 - 1, r(1) * 1.8 - 0.9
    yield "0-dim", torch.tensor(0.3, dtype=dtype), torch.tensor(-0.2, dtype=dtype)
    yield "1023", r(1023) * 2 - 1, r(1023) * 1.8 - 0.9
    yield "2-D", r(31, 33) - 0.5, r(31, 33) - 0.5
    yield "4-D", base - 0.5, base.flip(0) - 0.5
    yield "transposed", (r(33, 31) - 0.5).t(), (r(33, 31) - 0.5).t()
    yield "mixed layouts", (r(33, 31) - 0.5).t(), r(31, 33) - 0.5
    yield "sliced, offset", (r(40, 50) - 0.5)[3:34:2, 5:38:3], (r(40, 50) - 0.5)[7:38:2, 1:34:3]
    yield "expanded z", r(31, 33) - 0.5, (r(1, 33) - 0.5).expand(31, 33)
    yield "expanded x", (r(31, 1) - 0.5).expand(31, 33), r(31, 33) - 0.5
    yield "channels_last", (base - 0.5).contiguous(memory_format=torch.channels_last), base - 0.5
    yield "both channels_last", *((t - 0.5).contiguous(memory_format=torch.channels_last) for t in (base, base.flip(1)))


LAYOUT_ACTS = ["tanh", "atan", "softplus", "asinh"]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16], ids=str)
@pytest.mark.parametrize("name", LAYOUT_ACTS)
@pytest.mark.parametrize("backend,device", CASES, ids=IDS)
def test_layouts(backend, device, name, dtype):
    act = bk.get_activation(name)
    lo, hi = act.bounds(EPS, dtype)
    for label, x, z in _layouts(dtype):
        if act.lo == 0:
            z = z.abs() * 3
        g = _grad_like(x)
        outs = [o.cpu() for o in run(x.to(device), z.to(device), g.to(device), name, backend)]
        xd, zd = x.contiguous(), z.contiguous()
        check_against_oracle(act, xd, zd, g, lo, hi, outs, f"{backend}/{name}/{dtype}/{label}")
        assert outs[0].stride() == torch.empty_like(x).stride(), label


@pytest.mark.parametrize("backend,device", CASES, ids=IDS)
def test_expanded_input_gradient_is_summed(backend, device):
    x = torch.randn(5, 7, dtype=torch.float64, device=device, requires_grad=True)
    z0 = (torch.rand(1, 7, dtype=torch.float64, device=device) * 1.8 - 0.9).requires_grad_()
    y = bk.bregman_activation(x, z0.expand(5, 7), "tanh", backend=backend)
    y.backward(torch.ones_like(y))
    z1 = z0.detach().clone().requires_grad_()
    y1 = bk.bregman_activation(x.detach(), z1, "tanh", backend=backend)  # broadcast inside the op
    y1.backward(torch.ones_like(y1))
    zref = z0.detach().clone().requires_grad_()
    torch.tanh(x.detach() + torch.atanh(zref)).sum().backward()
    assert z0.grad.shape == (1, 7) and z1.grad.shape == (1, 7)
    torch.testing.assert_close(z0.grad, zref.grad)
    torch.testing.assert_close(z1.grad, zref.grad)


@pytest.mark.parametrize("shape", [(0,), (3, 0, 2)], ids=str)
@pytest.mark.parametrize("backend,device", CASES, ids=IDS)
def test_empty(backend, device, shape):
    x = torch.empty(shape, device=device, requires_grad=True)
    z = torch.empty(shape, device=device, requires_grad=True)
    y = bk.bregman_activation(x, z, "atan", backend=backend)
    assert y.shape == shape
    y.sum().backward()
    assert x.grad.shape == shape and z.grad.shape == shape


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("backend,device", CASES, ids=IDS)
def test_identity_at_zero_pre_activation(backend, device, dtype):
    """x = 0 gives back clamp(z) within two ulps of the dtype, except where rounding u = ρ⁻¹(z) alone costs more
    through any formula: ~|u|·ρ'(u)/z ulps of z — softplus at small βz (up to 8), sigmoid near 0 (up to 4)."""
    ulp = {torch.float64: 2.0**-52, torch.float32: 2.0**-23, torch.float16: 2.0**-10, torch.bfloat16: 2.0**-7}[dtype]
    for name in ACTIVATIONS:
        act = bk.get_activation(name)
        _, z = sample(name, dtype, n=257)
        lo, hi = act.bounds(EPS, dtype)
        zc = torch.where(z.double() < lo, lo, torch.where(z.double() > hi, hi, z.double()))
        y = bk.bregman_activation(torch.zeros_like(z).to(device), z.to(device), name, backend=backend).cpu()
        ratio = (y.double() - zc).abs() / (ulp * zc.abs() + 1e-30)
        i = ratio.argmax()
        allowed = {"softplus": 8, "sigmoid": 4}.get(act.kind, 2)
        assert ratio[i] <= allowed, (name, z[i].item(), y[i].item(), ratio[i].item())


@pytest.mark.parametrize("backend,device", CASES, ids=IDS)
def test_output_never_aliases_inputs(backend, device):
    z = torch.rand(16, device=device) * 0.5
    x = torch.zeros(16, device=device)
    y = bk.bregman_activation(x, z, "tanh", backend=backend)
    assert y.data_ptr() not in (x.data_ptr(), z.data_ptr())

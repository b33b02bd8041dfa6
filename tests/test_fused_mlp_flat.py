"""FlatMLP and the flat fused ops: the same function and gradients as BregmanMLP's layer-by-layer path."""

import pytest
import torch

from bregman_kernels import fused_mlp
from bregman_kernels.nn import BregmanMLP

pytestmark = pytest.mark.skipif(bool(fused_mlp._why_no_kernel("cpu")),
                                reason=f"no fused MLP CPU kernel: {fused_mlp._why_no_kernel('cpu')}")

from bregman_kernels.fused_mlp_flat import FlatMLP, mlp_flat_bwd, mlp_flat_fwd  # noqa: E402


def _model(act="atan", version="bregman", widths=(3, 5, 5, 2), n_in=4):
    torch.manual_seed(0)
    return BregmanMLP(act, version=version, hidden_dim=list(widths), input_dim=n_in, output_dim=3).double()


def _x(n_in, batch=21):
    return 0.1 + 0.8 * torch.rand(batch, n_in, dtype=torch.float64, generator=torch.Generator().manual_seed(1))


def _flat_grads(model, grads):
    # the per-parameter gradients of ``model`` in FlatMLP's layout (per layer W, b, then R when present)
    named = dict(zip((n for n, _ in model.named_parameters()), grads, strict=True))
    parts = []
    for i in range(len(model.lin)):
        parts += [named[f"lin.{i}.weight"].reshape(-1), named[f"lin.{i}.bias"]]
        if f"reparametrization.{i}.weight" in named:
            parts.append(named[f"reparametrization.{i}.weight"].reshape(-1))
    return torch.cat(parts), named["output.weight"], named["output.bias"]


@pytest.mark.parametrize("version,act", [("bregman", "atan"), ("bregman", "relu"), ("bregman", "asinh"),
                                         ("standard", "relu"), ("euclidean", "tanh")])
def test_twin_of_layer_by_layer(version, act):
    model = _model(act, version)
    flat = FlatMLP.from_model(model)
    model.fused = False
    x = _x(4).requires_grad_(True)
    y0, y1 = model(x), flat(x)
    torch.testing.assert_close(y1, y0, rtol=1e-12, atol=1e-14)
    g = torch.randn(y0.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    g0 = torch.autograd.grad(y0, [x, *model.parameters()], g)
    g1 = torch.autograd.grad(y1, [x, *flat.parameters()], g)
    torch.testing.assert_close(g1[0], g0[0], rtol=1e-11, atol=1e-13)
    for a, b in zip(g1[1:], _flat_grads(model, g0[1:]), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-11, atol=1e-13)


def test_training_and_copy_back():
    model = _model("softplus10", widths=(5, 3, 3))
    flat = FlatMLP.from_model(model)
    model.fused = False
    x, target = _x(4, 32), torch.randn(32, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    for net in (model, flat):
        opt = torch.optim.Adam(net.parameters(), lr=0.05)
        for _ in range(3):
            opt.zero_grad()
            torch.nn.functional.mse_loss(net(x), target).backward()
            opt.step()
        net(x)  # projects the offset maps after the last step
    back = flat.copy_to(_model("softplus10", widths=(5, 3, 3)))
    for (name, a), b in zip(model.named_parameters(), back.parameters(), strict=True):
        torch.testing.assert_close(b, a, rtol=1e-7, atol=1e-9, msg=lambda m, name=name: f"{name}: {m}")
    for r in back.reparametrization:
        if hasattr(r, "weight"):
            torch.testing.assert_close(r.weight.sum(1), torch.ones(r.weight.shape[0], dtype=torch.float64))


def test_ops_gradcheck_opcheck_and_errors():
    flat = FlatMLP.from_model(_model(widths=(3, 2), n_in=2))
    x = _x(2, 5).requires_grad_(True)
    act = flat.act
    args = (flat.widths, flat.offset_layers, 1, act.code, act.param, *act.bounds(flat.eps, torch.float64))
    p = flat.hidden.detach().clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x, p: mlp_flat_fwd(x, p, *args)[0], (x, p), eps=1e-6, atol=1e-6)
    torch.library.opcheck(mlp_flat_fwd, (x.detach(), p.detach(), *args))
    out, hs = mlp_flat_fwd(x.detach(), p.detach(), *args)
    torch.library.opcheck(mlp_flat_bwd, (torch.ones_like(out), x.detach(), hs, p.detach(), *args))
    with pytest.raises(RuntimeError, match="values"):
        mlp_flat_fwd(x.detach(), p.detach()[:-1], *args)
    with pytest.raises(RuntimeError, match="offset map"):
        mlp_flat_fwd(x.detach(), p.detach(), flat.widths, [], *args[2:])


def test_compile_fullgraph():
    flat = FlatMLP.from_model(_model(widths=(2, 2, 2), n_in=2))
    x = _x(2, 8)
    compiled = torch.compile(flat, fullgraph=True, backend="aot_eager")
    for net in (flat, compiled):
        net.zero_grad()
        net(x).square().sum().backward()
        if net is flat:
            y0, g0 = flat(x), flat.hidden.grad.clone()
    torch.testing.assert_close(compiled(x), y0, rtol=1e-13, atol=1e-15)
    torch.testing.assert_close(flat.hidden.grad, g0, rtol=1e-13, atol=1e-15)


def test_copy_to_weight_normalized_model():
    """copy_to writes weight-normalized layers through (weight_v, weight_g), not into their computed weight."""
    torch.manual_seed(0)
    model = BregmanMLP("tanh", hidden_dim=[5, 3], input_dim=4, output_dim=2, weight_norm=True).double()
    flat = FlatMLP.from_model(model)
    with torch.no_grad():
        flat.hidden.add_(0.1)
    x = _x(4)
    back = flat.copy_to(model)
    torch.testing.assert_close(back(x), flat(x))

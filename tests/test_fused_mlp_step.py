"""The fused training step (mlp_flat_ce_grad, FlatMLP.train_step): the loss, gradients and optimizer trajectories
of FlatMLP's autograd path (forward, F.cross_entropy, backward, step) in fp64."""

import pytest
import torch
import torch.nn.functional as F

from bregman_kernels import fused_mlp
from bregman_kernels.nn import BregmanMLP

pytestmark = pytest.mark.skipif(bool(fused_mlp._why_no_kernel("cpu")),
                                reason=f"no fused MLP CPU kernel: {fused_mlp._why_no_kernel('cpu')}")

from bregman_kernels.fused_mlp_flat import FlatMLP, ce_grad_composite, mlp_flat_ce_grad  # noqa: E402

CASES = [("bregman", "atan", (2, 2, 2)), ("bregman", "relu", (3, 3)), ("bregman", "softplus", (4, 4, 4)),
         ("standard", "relu", (3, 5, 2)), ("euclidean", "tanh", (3, 3, 3)),
         ("bregman", "sigmoid", (3, 5, 2, 4))]  # the last: width-changing, with offset maps


def _flat(act, version, widths, n_in=3, classes=3, seed=0):
    torch.manual_seed(seed)
    model = BregmanMLP(act, version=version, hidden_dim=list(widths), input_dim=n_in, output_dim=classes)
    return FlatMLP.from_model(model.double())


def _batch(n_in=3, batch=19, classes=3, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = 0.1 + 0.8 * torch.rand(batch, n_in, dtype=torch.float64, generator=g)
    return x, torch.randint(0, classes, (batch,), generator=g)


def _op_args(flat, x, y):
    return (x, y, flat.hidden.detach(), flat.output.weight.detach(), flat.output.bias.detach(),
            *flat._args(x.dtype))


def _autograd_step(flat, x, y, opt):
    loss = F.cross_entropy(flat(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    flat.project_()
    return loss.detach()


@pytest.mark.parametrize("version,act,widths", CASES)
def test_loss_and_gradients_equal_autograd(version, act, widths):
    flat = _flat(act, version, widths)
    if widths == (3, 5, 2, 4):
        assert len(flat.offset_layers) == 3
    x, y = _batch()
    loss, gp, gw, gb = mlp_flat_ce_grad(*_op_args(flat, x, y))
    ref = F.cross_entropy(flat(x), y)
    ref.backward()
    torch.testing.assert_close(loss, ref.detach(), rtol=1e-13, atol=1e-15)
    for got, want in ((gp, flat.hidden.grad), (gw, flat.output.weight.grad), (gb, flat.output.bias.grad)):
        torch.testing.assert_close(got, want, rtol=1e-11, atol=1e-14)
    # the composite (the CUDA kernel) computes the same on CPU tensors
    for got, want in zip(ce_grad_composite(*_op_args(flat, x, y)), (loss, gp, gw, gb), strict=True):
        torch.testing.assert_close(got, want, rtol=1e-11, atol=1e-14)


def test_fp32_close_to_autograd():
    flat = _flat("atan", "bregman", (2,) * 30, n_in=2, classes=2).float()
    x, y = _batch(n_in=2, batch=16, classes=2)
    loss, gp, _, _ = mlp_flat_ce_grad(*_op_args(flat, x.float(), y))
    ref = F.cross_entropy(flat(x.float()), y)
    ref.backward()
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, ref.detach(), rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(gp, flat.hidden.grad, rtol=1e-4, atol=1e-6)


def test_opcheck_fake_and_compile():
    flat = _flat("sigmoid", "bregman", (3, 5, 2, 4))
    x, y = _batch(batch=5)
    args = _op_args(flat, x, y)
    torch.library.opcheck(mlp_flat_ce_grad, args)
    grad_args = (x, y, flat.hidden, flat.output.weight, flat.output.bias, *args[5:])  # parameters require grad
    torch.library.opcheck(mlp_flat_ce_grad, grad_args)
    out = mlp_flat_ce_grad(*grad_args)
    assert not any(t.requires_grad for t in out)  # gradients, not a graph
    compiled = torch.compile(lambda *a: mlp_flat_ce_grad(*a), fullgraph=True, backend="aot_eager")
    for got, want in zip(compiled(*args), out, strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_bad_inputs_raise():
    flat = _flat("atan", "bregman", (2, 2), n_in=2, classes=3)
    x, y = _batch(n_in=2, batch=4)
    a = list(_op_args(flat, x, y))
    bad = [("int64", 1, y.float()), ("target 3 .row 2. is out of range", 1, torch.tensor([0, 1, 3, 0])),
           ("target -1", 1, torch.tensor([0, -1, 0, 0])), ("1-D int64", 1, y[:3]), ("out_w must be", 3, a[3][:, :1]),
           ("out_b must be", 4, a[4][:2]), ("batch", 0, x[:0]), ("dtype", 3, a[3].float()), ("values", 2, a[2][:-1])]
    for match, i, value in bad:
        args = list(a)
        args[i] = value
        if match == "batch":
            args[1] = y[:0]
        with pytest.raises(RuntimeError, match=match):
            mlp_flat_ce_grad(*args)


@pytest.mark.parametrize("make_opt", [lambda p: torch.optim.SGD(p, lr=0.3, momentum=0.9),
                                      lambda p: torch.optim.Adam(p, lr=0.05)], ids=["sgd-momentum", "adam"])
@pytest.mark.parametrize("widths", [(2, 2, 2), (3, 5, 2, 4)], ids=["square", "offset-maps"])
def test_train_step_follows_the_autograd_path(make_opt, widths):
    fused, ref = _flat("sigmoid", "bregman", widths), _flat("sigmoid", "bregman", widths)
    opt_f, opt_r = make_opt(fused.parameters()), make_opt(ref.parameters())
    for step in range(4):
        x, y = _batch(seed=step)
        loss_f = fused.train_step(x, y, opt_f)
        loss_r = _autograd_step(ref, x, y, opt_r)
        torch.testing.assert_close(loss_f, loss_r, rtol=1e-12, atol=1e-14)
    for (name, a), b in zip(fused.named_parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-11, atol=1e-13, msg=lambda m, name=name: f"{name}: {m}")
        assert not torch.equal(a, _flat("sigmoid", "bregman", widths).get_parameter(name))  # it trained
    for _, _, _, r in fused._slices():  # offset maps back on the simplex
        if r is not None:
            torch.testing.assert_close(r.sum(1), torch.ones(r.shape[0], dtype=torch.float64))


def test_train_step_replaces_grad_and_steps_nothing_without_optimizer():
    flat = _flat("atan", "bregman", (2, 2), n_in=2, classes=2)
    x, y = _batch(n_in=2, classes=2)
    before = flat.hidden.detach().clone()
    flat.hidden.grad = torch.full_like(flat.hidden, 7.0)
    loss = flat.train_step(x, y)
    assert loss.dim() == 0 and torch.equal(flat.hidden, before)
    _, gp, gw, _ = mlp_flat_ce_grad(*_op_args(flat, x, y))
    assert torch.equal(flat.hidden.grad, gp) and torch.equal(flat.output.weight.grad, gw)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_train_step_matches_cpu():
    cpu = _flat("sigmoid", "bregman", (3, 5, 2, 4))
    gpu = _flat("sigmoid", "bregman", (3, 5, 2, 4)).cuda()
    opt_c, opt_g = torch.optim.Adam(cpu.parameters(), lr=0.05), torch.optim.Adam(gpu.parameters(), lr=0.05)
    for step in range(3):
        x, y = _batch(seed=step)
        loss_g = gpu.train_step(x.cuda(), y.cuda(), opt_g)
        torch.testing.assert_close(loss_g.cpu(), cpu.train_step(x, y, opt_c), rtol=1e-10, atol=1e-12)
    for a, b in zip(gpu.parameters(), cpu.parameters(), strict=True):
        torch.testing.assert_close(a.cpu(), b, rtol=1e-9, atol=1e-11)


def test_mixed_devices_raise():
    """A meta tensor among CPU ones dispatches to the fake implementation; it must refuse, not return garbage."""
    net = BregmanMLP("atan", input_dim=2, hidden_dim=[2, 2], output_dim=2)
    flat = FlatMLP.from_model(net)
    x, y = torch.randn(4, 2), torch.tensor([0, 1, 1, 0])
    with pytest.raises(RuntimeError, match="one device"):
        flat.train_step(x, y.to("meta"))


def test_output_gradients_accurate_at_large_batch():
    """The output layer's gradients are batch sums: in fp32 at batch 200k they stay within 1e-6 of fp64."""
    torch.manual_seed(0)
    net = BregmanMLP("atan", input_dim=2, hidden_dim=[2, 2], output_dim=3)
    x, y = torch.rand(200_000, 2) * 2 - 1, torch.randint(0, 3, (200_000,))
    got = FlatMLP.from_model(net)
    ref = FlatMLP.from_model(net).double()
    g32 = mlp_flat_ce_grad(x, y, got.hidden.detach(), got.output.weight.detach(), got.output.bias.detach(),
                           *got._args(torch.float32))
    g64 = mlp_flat_ce_grad(x.double(), y, ref.hidden.detach(), ref.output.weight.detach(), ref.output.bias.detach(),
                           *ref._args(torch.float64))
    for a, b in zip(g32[2:], g64[2:], strict=True):
        assert float((a.double() - b).norm() / b.norm()) < 1e-6

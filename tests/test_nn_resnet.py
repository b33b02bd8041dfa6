"""CIFAR Bregman ResNets: equivalence with bregmanet.resnet_small, documented differences, training, and the
PyTorch features (torch.compile, autocast, checkpoint, channels_last)."""

import copy

import numpy as np
import pytest
import torch

import bregman_kernels.nn as bnn
from bregman_kernels.nn import resnet_small as rs

if not hasattr(np, "Inf"):
    np.Inf = np.inf  # bregmanet 1.0 uses this alias, removed in numpy 2
bregmanet = pytest.importorskip("bregmanet")
import bregmanet.resnet_small as brs  # noqa: E402

EXACT = ["tanh", "scaled_tanh", "atan", "isru", "softplus"]


def _compare(ref, ours, x, rtol=1e-4):
    """Same outputs and parameter gradients (relative to each tensor's scale), train and eval mode."""
    for train in (True, False):
        ref.train(train)
        ours.train(train)
        ref.zero_grad()
        ours.zero_grad()
        y_ref, y = ref(x), ours(x)
        torch.testing.assert_close(y, y_ref, rtol=rtol, atol=rtol * y_ref.abs().max().item())
        y_ref.square().sum().backward()
        y.square().sum().backward()
        for (k, p), q in zip(ref.named_parameters(), ours.parameters(), strict=True):
            if p.grad is None:
                assert q.grad is None or not q.grad.any(), k
                continue
            scale = p.grad.abs().max().item()
            torch.testing.assert_close(q.grad, p.grad, rtol=10 * rtol, atol=10 * rtol * scale, msg=k)
    for (k, b), c in zip(ref.named_buffers(), ours.buffers(), strict=True):
        torch.testing.assert_close(c, b, msg=k)


def _loaded(ref, ours):
    assert [(k, v.shape) for k, v in ours.state_dict().items()] == [(k, v.shape) for k, v in ref.state_dict().items()]
    ours.load_state_dict(ref.state_dict())
    return ours


@pytest.mark.parametrize("act", EXACT)
def test_bresnet20_equivalent_to_bregmanet(act):
    torch.manual_seed(0)
    ref = bregmanet.bresnet20(activation=act)
    ours = _loaded(ref, bnn.bresnet20(activation=act, backend="eager"))
    _compare(ref, ours, torch.randn(2, 3, 8, 8))


class _BregmanetStandardBlock(brs.BasicBlock):
    """bregmanet's standard block, taking the activation keyword its own ResNet passes (and that makes its
    'standard' factories raise TypeError)."""

    def __init__(self, in_planes, planes, stride=1, activation=None):
        super().__init__(in_planes, planes, stride)


def test_standard_is_the_usual_network():
    with pytest.raises(TypeError):
        bregmanet.bresnet20(version="standard")
    torch.manual_seed(0)
    ref = brs.BregmanResNet(_BregmanetStandardBlock, [3, 3, 3], activation="relu", version="standard")
    ours = _loaded(ref, bnn.bresnet20(version="standard"))
    _compare(ref, ours, torch.randn(2, 3, 8, 8))


def _zero_branch(block):
    torch.nn.init.zeros_(block.bn2.weight)
    torch.nn.init.zeros_(block.bn2.bias)
    return block.eval()


@pytest.mark.parametrize("act", ["sigmoid", "relu", "tanh"])
def test_identity_block(act):
    # With a zero residual branch a Bregman block returns its clamped input: ρ(0 + ρ⁻¹(x)) = x. bregmanet's does
    # not for sigmoid and relu (wrong inverses): the outputs of those models differ, as documented.
    torch.manual_seed(0)
    ref = _zero_branch(brs.BregmanBasicBlock(4, 4, activation=act))
    ours = _zero_branch(rs.BregmanBasicBlock(4, 4, activation=act, backend="eager"))
    x = torch.rand(2, 4, 5, 5) * 0.8 + 0.1
    with torch.no_grad():
        torch.testing.assert_close(ours(x), x, rtol=1e-5, atol=1e-6)
        diff = (ref(x) - x).abs().max()
    assert diff > 0.05 if act in ("sigmoid", "relu") else diff < 1e-5


@pytest.mark.parametrize("act", ["softplus", "tanh", "sigmoid"])
def test_option_e_pads_with_rho_of_zero(act):
    block = _zero_branch(rs.BregmanBasicBlock(4, 8, stride=2, activation=act, backend="eager"))
    x = torch.rand(1, 4, 6, 6) * 0.5 + 0.2
    with torch.no_grad():
        y = block(x)
    rho0 = block.activation.rho_at_zero()
    torch.testing.assert_close(y[:, 2:6], x[:, :, ::2, ::2], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(y[:, :2], torch.full_like(y[:, :2], rho0), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(y[:, 6:], torch.full_like(y[:, 6:], rho0), rtol=1e-5, atol=1e-6)


def test_bregman_bis():
    # bregmanet's 'bregman_bis' sends the block's intermediate through the downsampling shortcut and raises
    with pytest.raises(RuntimeError):
        bregmanet.bresnet20(version="bregman_bis", activation="tanh")(torch.randn(1, 3, 8, 8))
    # ours: h = ρ(bn1(conv1 x) + ρ⁻¹(clamp(shortcut x))),  out = ρ(bn2(conv2 h) + ρ⁻¹(clamp(h)))
    torch.manual_seed(0)
    block = rs.BisBregmanBasicBlock(4, 8, stride=2, activation="atan", backend="eager")
    x = torch.rand(2, 4, 6, 6) - 0.5
    act = block.activation
    h = act.rho(block.bn1(block.conv1(x)) + act.rho_inv(block.shortcut(x)))
    out = act.rho(block.bn2(block.conv2(h)) + act.rho_inv(h))
    torch.testing.assert_close(block(x), out, rtol=1e-5, atol=1e-5)
    model = bnn.bresnet20(version="bregman_bis", activation="tanh", backend="eager")
    assert model(torch.randn(2, 3, 8, 8)).shape == (2, 10)


@pytest.mark.parametrize("name", ["bresnet20", "bresnet32", "bresnet44", "bresnet56", "bresnet110"])
def test_constructs_with_bregmanet_keys(name):
    ref = getattr(bregmanet, name)(activation="atan", num_classes=7)
    _loaded(ref, getattr(bnn, name)(activation="atan", num_classes=7))


def test_bresnet1202_constructs_and_runs():
    torch.manual_seed(0)
    model = bnn.bresnet1202(activation="tanh", backend="eager").eval()
    assert sum(1 for m in model.modules() if isinstance(m, rs.BregmanBasicBlock)) == 600
    with torch.no_grad():
        y = model(torch.randn(1, 3, 4, 4))
    assert y.shape == (1, 10) and torch.isfinite(y).all()


@pytest.mark.parametrize("name,act,version", [("bresnet20", "tanh", "bregman"), ("bresnet32", "softplus", "bregman"),
                                              ("bresnet20", "atan", "bregman_bis"), ("bresnet20", "relu", "standard")])
def test_trains(name, act, version):
    torch.manual_seed(0)
    model = getattr(bnn, name)(version=version, activation=act, backend="eager")
    x, target = torch.randn(8, 3, 16, 16), torch.randint(0, 10, (8,))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for _ in range(4):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), target)
        loss.backward()
        assert all(torch.isfinite(p.grad).all() for p in model.parameters())
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def _small(act="tanh"):
    torch.manual_seed(0)
    return rs.BregmanResNet(rs.BregmanBasicBlock, [1, 1, 1], activation=act, version="bregman", backend="eager")


def _grads(model):
    return [p.grad.clone() for p in model.parameters()]


def test_compile_fullgraph():
    model, x = _small(), torch.randn(2, 3, 8, 8)
    y = model(x)
    y.square().sum().backward()
    g = _grads(model)
    model.zero_grad()
    # aot_eager: the whole-graph capture and autograd tracing, without inductor's C++ build time (the MLP test
    # covers inductor)
    yc = torch.compile(model, fullgraph=True, backend="aot_eager")(x)
    yc.square().sum().backward()
    torch.testing.assert_close(yc, y, rtol=1e-5, atol=1e-5)
    for a, b in zip(_grads(model), g, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_checkpoint_channels_last_autocast():
    model, x = _small("isru"), torch.randn(2, 3, 8, 8)
    y = model(x)
    y.square().sum().backward()
    g = _grads(model)
    model.zero_grad()
    stem = model.activation(model.bn1(model.conv1(x)))
    h = torch.utils.checkpoint.checkpoint(model.layer1, stem, use_reentrant=False)
    out = model.linear(torch.nn.functional.avg_pool2d(model.layer3(model.layer2(h)), 2).flatten(1))
    torch.testing.assert_close(out, y)
    out.square().sum().backward()
    for a, b in zip(_grads(model), g, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    cl = model.to(memory_format=torch.channels_last)
    torch.testing.assert_close(cl(x.to(memory_format=torch.channels_last)), y, rtol=1e-4, atol=1e-5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        yb = model(x)
    assert yb.dtype == torch.bfloat16 and torch.isfinite(yb.float()).all()
    torch.testing.assert_close(yb.float(), y, rtol=0.1, atol=0.1 * y.abs().max().item())
    yb.float().sum().backward()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("backend", ["auto", "eager"])
def test_cuda_matches_cpu(backend):
    model, x = _small("softplus"), torch.randn(4, 3, 8, 8)
    y = model(x)
    y.square().sum().backward()
    g = _grads(model)
    gpu = copy.deepcopy(model).cuda()
    for m in gpu.modules():
        if isinstance(m, bnn.BregmanActivation):
            m.backend = backend
    gpu.zero_grad()
    yc = gpu(x.cuda())
    yc.square().sum().backward()
    torch.testing.assert_close(yc.cpu(), y, rtol=1e-4, atol=1e-4 * y.abs().max().item())
    for a, b in zip(_grads(gpu), g, strict=True):
        torch.testing.assert_close(a.cpu(), b, rtol=1e-3, atol=1e-3 * b.abs().max().item())
    with torch.autocast("cuda", dtype=torch.float16):
        yh = gpu(x.cuda().to(memory_format=torch.channels_last))
    assert torch.isfinite(yh).all()
    yh.float().sum().backward()

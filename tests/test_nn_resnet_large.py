"""ImageNet Bregman ResNets: equivalence with bregmanet.resnet_large, documented differences, construction."""

import numpy as np
import pytest
import torch

import bregman_kernels.nn as bnn
from bregman_kernels.nn import BregmanActivation
from bregman_kernels.nn import resnet_large as rl

if not hasattr(np, "Inf"):
    np.Inf = np.inf  # bregmanet 1.0 uses this alias, removed in numpy 2
bregmanet = pytest.importorskip("bregmanet")
import bregmanet.resnet_large as brl  # noqa: E402

EXACT = ["tanh", "scaled_tanh", "atan", "isru", "softplus"]
FACTORIES = ["bresnet18", "bresnet34", "bresnet50", "bresnet101", "bresnet152", "bresnext50_32x4d",
             "bresnext101_32x8d", "wide_bresnet50_2", "wide_bresnet101_2"]


def _bregmanet_blocks(base, act):
    """bregmanet's block with the model's activation (its ResNet does not pass it: blocks are always softplus)
    and, for the bottleneck, the clamp its basic block applies (without it ρ⁻¹ of the downsample output is NaN)."""

    class Block(base):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, activation=act, **kwargs)
            if base is brl.BregmanBottleneck:
                inverse, (lo, hi) = self.inverse, self.range
                self.inverse = lambda v: inverse(torch.clamp(v, lo + 1e-5, hi - 1e-5))

    return Block


def _compare(ref, ours, x, rtol=1e-6):
    """Same outputs and parameter gradients, train and eval mode, in fp64: at ImageNet depth with small batches
    batch norm makes fp32 results too ill-conditioned to compare tightly (the CIFAR tests compare in fp32)."""
    assert [(k, v.shape) for k, v in ours.state_dict().items()] == [(k, v.shape) for k, v in ref.state_dict().items()]
    ours.load_state_dict(ref.state_dict())
    ref.double()
    ours.double()
    x = x.double()
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
            if p.grad is None:  # the basic block's downsample modules are unused, in both
                assert q.grad is None, k
                continue
            scale = p.grad.abs().max().item()
            torch.testing.assert_close(q.grad, p.grad, rtol=10 * rtol, atol=10 * rtol * scale, msg=k)


@pytest.mark.parametrize("act", ["softplus", "tanh"])
def test_basic_block_resnet_equivalent_to_bregmanet(act):
    # ImageNet ResNet with one basic block per stage (bresnet18 has two): stem, option-E shortcuts, classifier
    torch.manual_seed(0)
    block = brl.BregmanBasicBlock if act == "softplus" else _bregmanet_blocks(brl.BregmanBasicBlock, act)
    ref = brl.BregmanResNet(block, [1, 1, 1, 1], num_classes=10, activation=act)
    ours = rl.BregmanResNet(rl.BregmanBasicBlock, [1, 1, 1, 1], num_classes=10, activation=act, backend="eager")
    _compare(ref, ours, torch.randn(2, 3, 64, 64))


@pytest.mark.parametrize("act,groups,width", [("softplus", 1, 64), ("atan", 32, 4)])
def test_bottleneck_equivalent_with_clamp(act, groups, width):
    torch.manual_seed(0)
    ref = brl.BregmanResNet(_bregmanet_blocks(brl.BregmanBottleneck, act), [1, 1, 1, 1], num_classes=10,
                            activation=act, groups=groups, width_per_group=width)
    ours = rl.BregmanResNet(rl.BregmanBottleneck, [1, 1, 1, 1], num_classes=10, activation=act, groups=groups,
                            width_per_group=width, backend="eager")
    _compare(ref, ours, torch.randn(2, 3, 64, 64))


def test_bregmanet_bottleneck_is_nan_ours_is_not():
    # bregmanet's bottleneck applies ρ⁻¹ to the unclamped downsample output (conv + batch norm): NaN
    torch.manual_seed(0)
    ref = brl.BregmanResNet(brl.BregmanBottleneck, [1, 1, 1, 1], num_classes=10).eval()
    ours = rl.BregmanResNet(rl.BregmanBottleneck, [1, 1, 1, 1], num_classes=10, backend="eager").eval()
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.isnan(ref(x)).any()
        assert torch.isfinite(ours(x)).all()


def test_blocks_use_the_model_activation():
    ref = bregmanet.bresnet18(activation="tanh", num_classes=10)
    assert {float(m.activation(torch.zeros(1))) for m in ref.modules() if hasattr(m, "inverse")} != {0.0}
    ours = bnn.bresnet18(activation="tanh", num_classes=10)
    names = {m.act.name for m in ours.modules() if isinstance(m, BregmanActivation)}
    assert names == {"tanh"} and ours.activation.act.name == "tanh"


def test_standard_is_torchvision_resnet(monkeypatch):
    with pytest.raises(TypeError):
        bregmanet.bresnet18(version="standard")  # misses its positional arguments
    # its ResNet (torchvision's) then calls torch._C._log_api_usage_once with a module: TypeError on current torch
    monkeypatch.setattr(brl, "_log_api_usage_once", lambda *_: None)
    ref = bregmanet.bresnet18(version="standard", pretrained=False, progress=False, num_classes=10)
    ours = bnn.bresnet18(version="standard", num_classes=10)
    assert type(ours) is rl.ResNet
    assert [(k, v.shape) for k, v in ours.state_dict().items()] == [(k, v.shape) for k, v in ref.state_dict().items()]
    torch.manual_seed(0)
    ref = brl.ResNet(brl.Bottleneck, [1, 1, 1, 1], num_classes=10)
    _compare(ref, rl.ResNet(rl.Bottleneck, [1, 1, 1, 1], num_classes=10), torch.randn(2, 3, 64, 64))


def test_zero_init_residual_makes_bregman_blocks_identities():
    model = bnn.bresnet18(activation="atan", zero_init_residual=True, backend="eager").eval()
    block = model.layer1[0]
    x = torch.rand(1, 64, 4, 4) - 0.5
    with torch.no_grad():
        torch.testing.assert_close(block(x), x, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", FACTORIES)
def test_constructs_with_bregmanet_keys(name):
    ref = getattr(bregmanet, name)(num_classes=5)
    ours = getattr(bnn, name)(num_classes=5)
    assert [(k, v.shape) for k, v in ours.state_dict().items()] == [(k, v.shape) for k, v in ref.state_dict().items()]
    with pytest.raises(ValueError):
        getattr(bnn, name)(version="bregman_bis")


def test_defaults():
    model = bnn.bresnet18()
    assert model.fc.out_features == 1000 and model.activation.act.name == "softplus"
    assert bnn.bresnet20().linear.out_features == 10


@pytest.mark.parametrize("name", ["bresnet18", "bresnet50", "bresnext50_32x4d", "wide_bresnet50_2"])
def test_tiny_forward(name):
    torch.manual_seed(0)
    model = getattr(bnn, name)(activation="tanh", num_classes=4, backend="eager")
    x = torch.randn(2, 3, 32, 32).to(memory_format=torch.channels_last)
    if name not in ("bresnet18", "bresnet50"):  # one backward per block kind is enough
        with torch.no_grad():
            y = model.eval()(x)
        assert y.shape == (2, 4) and torch.isfinite(y).all()
        return
    y = model(x)
    assert y.shape == (2, 4) and torch.isfinite(y).all()
    y.sum().backward()
    assert torch.isfinite(model.conv1.weight.grad).all() and model.conv1.weight.grad.any()

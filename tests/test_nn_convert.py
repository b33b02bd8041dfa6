"""from_bregmanet: bregmanet models and state_dicts to the models of this package."""

import numpy as np
import pytest
import torch

from bregman_kernels.nn import BregmanMLP, from_bregmanet
from bregman_kernels.nn import resnet_large as rl
from bregman_kernels.nn import resnet_small as rs

if not hasattr(np, "Inf"):
    np.Inf = np.inf  # bregmanet 1.0 uses this alias, removed in numpy 2
bregmanet = pytest.importorskip("bregmanet")

NAMES = ["sigmoid", "tanh", "scaled_tanh", "atan", "sin", "asinh", "isru", "relu", "softplus", "softplus10"]


@pytest.mark.filterwarnings("ignore:.*weight_norm.*deprecated:FutureWarning")
@pytest.mark.parametrize("version", ["bregman", "standard"])
@pytest.mark.parametrize("act", NAMES)
def test_mlp_activation_and_shape_inferred(act, version):
    ref = bregmanet.MLP(act, version=version, hidden_dim=[6, 4], input_dim=3, output_dim=2, weight_norm=True)
    ours = from_bregmanet(ref, backend="eager")
    assert isinstance(ours, BregmanMLP) and ours.version == version and ours.weight_norm
    assert ours.num_neurons == [6, 4] and ours.lin[0].in_features == 3 and ours.output.out_features == 2
    assert ours.activation.act.name == act
    if act == "relu" and version == "standard":
        assert ours.activation.relu


def test_mlp_from_state_dict():
    torch.manual_seed(0)
    ref = bregmanet.MLP("tanh", hidden_dim=[6, 6], input_dim=6, output_dim=2)
    ours = from_bregmanet(ref.state_dict(), "mlp", activation="tanh", backend="eager")
    x = torch.randn(5, 6)
    torch.testing.assert_close(ours(x), ref(x))
    with pytest.raises(ValueError):
        from_bregmanet(ref.state_dict(), "mlp")  # activation unknown
    with pytest.raises(ValueError):
        from_bregmanet(ref.state_dict())  # arch unknown


def test_cifar_model_and_state_dict():
    torch.manual_seed(0)
    ref = bregmanet.bresnet32(activation="atan", num_classes=4).eval()
    ours = from_bregmanet(ref, backend="eager")
    assert isinstance(ours, rs.BregmanResNet) and not ours.training and len(ours.layer1) == 5
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), rtol=1e-5, atol=1e-5)
    again = from_bregmanet(ref.state_dict(), "bresnet32", activation="atan", num_classes=4, backend="eager").eval()
    with torch.no_grad():
        torch.testing.assert_close(again(x), ref(x), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError):
        from_bregmanet(ref, "bresnet20")


def test_imagenet_model_warns_about_block_activation():
    torch.manual_seed(0)
    ref = bregmanet.bresnext50_32x4d(activation="tanh", num_classes=3)
    with pytest.warns(UserWarning, match="blocks use"):
        ours = from_bregmanet(ref)
    assert isinstance(ours, rl.BregmanResNet) and ours.groups == 32 and ours.base_width == 4
    assert ours.layer1[0].activation.act.name == "tanh"
    ours = from_bregmanet(bregmanet.bresnet18(num_classes=3), backend="eager")
    assert ours.layer1[0].activation.act.name == "softplus" and ours.fc.out_features == 3

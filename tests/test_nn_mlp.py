"""BregmanMLP: equivalence with bregmanet.MLP, the documented differences, the trainable simplex offset maps."""

import numpy as np
import pytest
import torch

import bregman_kernels.nn as bnn
from bregman_kernels.nn import BregmanActivation, BregmanMLP, SimplexLinear, project_simplex

if not hasattr(np, "Inf"):
    np.Inf = np.inf  # bregmanet 1.0 uses this alias, removed in numpy 2
bregmanet = pytest.importorskip("bregmanet")
from bregmanet.utils.weight import projection_simplex as bregmanet_projection  # noqa: E402

EXACT = ["tanh", "scaled_tanh", "atan", "isru", "softplus"]  # bregmanet's ρ⁻¹ is right for these
DIMS = {"hidden_dim": [8, 8, 6], "input_dim": 5, "output_dim": 3}


def _pair(act, version="bregman", weight_norm=False, seed=0):
    """(bregmanet MLP, ours) holding the same weights; offset maps set to points of the simplex."""
    torch.manual_seed(seed)
    ref = bregmanet.MLP(act, version=version, weight_norm=weight_norm, **DIMS)
    ours = BregmanMLP(act, version=version, weight_norm=weight_norm, backend="eager", **DIMS)
    state = ref.state_dict()
    for k in state:
        if "reparametrization" in k:
            state[k] = project_simplex(torch.rand_like(state[k]))
    ref.load_state_dict(state)
    ours.load_state_dict(state)
    return ref, ours


pytestmark = pytest.mark.filterwarnings("ignore:.*weight_norm.*deprecated:FutureWarning")


def _grads(model):
    return {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("weight_norm", [False, True])
@pytest.mark.parametrize("version", ["bregman", "standard"])
@pytest.mark.parametrize("act", EXACT)
def test_equivalent_to_bregmanet(act, version, weight_norm):
    ref, ours = _pair(act, version, weight_norm)
    assert list(ours.state_dict()) == list(ref.state_dict())
    x = torch.randn(7, 5)
    y_ref, y = ref(x), ours(x)
    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-5)
    y_ref.square().sum().backward()
    y.square().sum().backward()
    g_ref, g = _grads(ref), _grads(ours)
    for k, gk in g.items():
        if k.startswith("reparametrization"):
            continue  # bregmanet swaps these parameters inside forward: its grads land on the new objects
        torch.testing.assert_close(gk, g_ref[k], rtol=1e-4, atol=1e-5, msg=k)


@pytest.mark.parametrize("act", ["sigmoid", "relu"])
def test_sigmoid_relu_differ_because_bregmanet_inverse_is_wrong(act):
    # With zero pre-activations a Bregman layer returns its clamped offset: ρ(0 + ρ⁻¹(z)) = z. Ours does;
    # bregmanet's sigmoid "inverse" log(z/(1+z)) and bent-identity "inverse" z + 1/z do not.
    ref, ours = _pair(act, "bregman")
    torch.manual_seed(1)
    z = torch.rand(4, 5) * 0.9 + 0.05
    h = ours.activation(torch.zeros_like(z), z)
    h_ref = ref.activation(ref.offset(z) + 0)
    torch.testing.assert_close(h, z, rtol=1e-5, atol=1e-6)
    assert (h_ref - z).abs().max() > 0.05
    x = torch.randn(7, 5)
    assert (ours(x) - ref(x)).abs().max() > 1e-3


def test_euclidean_is_residual_unlike_bregmanet():
    # bregmanet's 'euclidean' forward ignores its offsets (it equals 'standard'); ours is ρ(lin(x) + R x).
    ref, ours = _pair("tanh", "euclidean")
    x = torch.randn(3, 5)
    torch.testing.assert_close(ref(x), _standard_forward(ref, x))
    h = x
    for lin, rep in zip(ours.lin, ours.reparametrization, strict=True):
        h = torch.tanh(lin(h) + rep(h))
    torch.testing.assert_close(ours(x), ours.output(h))
    assert (ours(x) - ref(x)).abs().max() > 1e-3


def _standard_forward(ref, x):
    for lin in ref.lin:
        x = torch.tanh(lin(x))
    return ref.output(x)


def test_relu_standard_is_true_relu():
    ours = BregmanMLP("relu", version="standard", **DIMS)
    x = torch.randn(4, 5)
    torch.testing.assert_close(ours(x), ours.output(torch.relu(ours.lin[2](torch.relu(ours.lin[1](
        torch.relu(ours.lin[0](x))))))))


def test_projection_is_exact():
    torch.manual_seed(0)
    v = torch.randn(50, 17) * 3
    w = project_simplex(v)
    assert w.dtype == v.dtype and (w >= 0).all()
    torch.testing.assert_close(w.sum(1), torch.ones(50), rtol=0, atol=1e-6)
    # optimality (KKT): w = max(v − θ, 0) with one θ per row
    th = (v - w).gather(1, w.argmax(1, keepdim=True)).squeeze(1)  # θ = v − w on the support
    torch.testing.assert_close((v - th[:, None]).clamp_min(0), w, rtol=0, atol=1e-5)
    torch.testing.assert_close(project_simplex(w), w, rtol=0, atol=1e-7)
    # a hand example: (0.5, 0.2, −1) → θ = −0.15 → (0.65, 0.35, 0)
    torch.testing.assert_close(project_simplex(torch.tensor([[0.5, 0.2, -1.0]])), torch.tensor([[0.65, 0.35, 0.0]]))


def test_bregmanet_projection_leaves_rows_off_the_simplex():
    torch.manual_seed(0)
    assert (bregmanet_projection(torch.randn(4, 6)).sum(1) - 1).abs().max() > 1e-2


def _train(model, x, steps=5, lr=0.5):
    opt = torch.optim.SGD(model.parameters(), lr=lr)  # built before the first forward, as training code does
    for _ in range(steps):
        opt.zero_grad()
        model(x).square().mean().backward()
        opt.step()
    return opt


def test_offset_maps_train_and_stay_on_simplex():
    torch.manual_seed(0)
    model = BregmanMLP("tanh", hidden_dim=[8, 6, 6], input_dim=5, output_dim=2, backend="eager")
    maps = [r for r in model.reparametrization if isinstance(r, SimplexLinear)]
    assert len(maps) == 2
    params = [r.weight for r in maps]
    before = [p.detach().clone() for p in params]
    x = torch.randn(16, 5)
    opt = _train(model, x)
    model(x)  # the forward after the last step projects it
    in_opt = {id(p) for g in opt.param_groups for p in g["params"]}
    for r, p, b in zip(maps, params, before, strict=True):
        assert r.weight is p and id(p) in in_opt
        assert (p - b).abs().max() > 1e-3  # trained
        assert (p >= 0).all()
        torch.testing.assert_close(p.sum(1), torch.ones(p.shape[0]), rtol=0, atol=1e-6)


def test_bregmanet_offset_maps_do_not_train():
    torch.manual_seed(0)
    ref = bregmanet.MLP("tanh", hidden_dim=[8, 6, 6], input_dim=5, output_dim=2)
    opt = _train(ref, torch.randn(16, 5), steps=2)
    in_opt = {id(p) for g in opt.param_groups for p in g["params"]}
    assert id(ref.reparametrization[0].weight) not in in_opt


def test_loaded_offsets_are_projected_and_multi_forward_is_safe():
    model = BregmanMLP("atan", hidden_dim=[4], input_dim=6, output_dim=1, backend="eager")
    state = model.state_dict()
    state["reparametrization.0.weight"] = torch.randn(4, 6)
    model.load_state_dict(state)
    x = torch.randn(3, 6, requires_grad=True)
    loss = model(x).sum() + model(x).sum()  # two forwards, then one backward: no in-place write in between
    loss.backward()
    w = model.reparametrization[0].weight
    torch.testing.assert_close(w.sum(1), torch.ones(4), rtol=0, atol=1e-6)
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_functional_call_weight_is_used_as_given():
    layer = SimplexLinear(3, 2)
    w = torch.randn(2, 3, requires_grad=True)
    x = torch.randn(4, 3)
    y = torch.func.functional_call(layer, {"weight": w}, (x,))
    torch.testing.assert_close(y, x @ w.T)
    y.sum().backward()
    assert w.grad is not None


def test_compile_with_projection_hook():
    torch.manual_seed(0)
    model = BregmanMLP("isru", hidden_dim=[8, 6], input_dim=5, output_dim=2, backend="eager")
    eager = BregmanMLP("isru", hidden_dim=[8, 6], input_dim=5, output_dim=2, backend="eager")
    eager.load_state_dict(model.state_dict())
    x = torch.randn(16, 5)
    compiled = torch.compile(model, fullgraph=True)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    model.register_projection(opt)
    opt_e = torch.optim.SGD(eager.parameters(), lr=0.5)
    for _ in range(3):
        for m, o in ((compiled, opt), (eager, opt_e)):
            o.zero_grad()
            m(x).square().mean().backward()
            o.step()
    eager(x)
    for k, v in eager.state_dict().items():
        torch.testing.assert_close(model.state_dict()[k], v, rtol=1e-4, atol=1e-5, msg=k)
    w = model.reparametrization[0].weight
    torch.testing.assert_close(w.sum(1), torch.ones(8), rtol=0, atol=1e-6)


def test_autocast_and_checkpoint():
    torch.manual_seed(0)
    model = BregmanMLP("tanh", hidden_dim=[16, 16], input_dim=8, output_dim=2, backend="eager")
    x = torch.randn(4, 8)
    y = model(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        yb = model(x)
    assert yb.dtype == torch.bfloat16
    torch.testing.assert_close(yb.float(), y, rtol=0.05, atol=0.05)
    yc = torch.utils.checkpoint.checkpoint(model, x, use_reentrant=False)
    yc.sum().backward()
    g = _grads(model)
    model.zero_grad()
    y.sum().backward()
    for k, v in _grads(model).items():
        torch.testing.assert_close(g[k], v, msg=k)


def test_activation_module():
    act = BregmanActivation("softplus")
    assert act.lo == 0 and act.hi == float("inf")
    z = torch.tensor([1e-5, 0.05, 0.5, 10.0])
    torch.testing.assert_close(act(torch.zeros(4), z), z, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(act.rho(act.rho_inv(z[1:])), z[1:])
    assert act.rho_at_zero() == pytest.approx(np.log(2) / 1000)
    with pytest.raises(ValueError):
        BregmanActivation("tanh", eps=1.5)
    # backend "auto" under torch.compile: the backend is resolved outside the traced graph
    tanh = BregmanActivation("tanh")
    x, z = torch.randn(3, 4, requires_grad=True), torch.rand(3, 4) - 0.5
    y = torch.compile(tanh, fullgraph=True, backend="aot_eager")(x, z)
    torch.testing.assert_close(y, tanh(x, z))
    y.sum().backward()
    assert torch.isfinite(x.grad).all()
    assert bnn.MLP is BregmanMLP


@pytest.mark.parametrize("kwargs, match", [
    ({"hidden_dim": []}, "non-empty hidden_dim"),
    ({"hidden_dim": [0]}, "positive integers"),
    ({"fused": "yes"}, "fused must be"),
    ({"backend": "cudnn"}, "unknown backend 'cudnn'"),
    ({"init": "randon"}, "init must be one of"),
])
def test_constructor_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        BregmanMLP("tanh", input_dim=3, **{"hidden_dim": [4], **kwargs})


def test_init_zero_is_bregmanets_fallback():
    """init='zero' builds what bregmanet builds for any unrecognised init string: zero hidden layers, identity
    output."""
    m = BregmanMLP("tanh", input_dim=3, hidden_dim=[3, 3], output_dim=3, init="zero")
    assert all(float(lin.weight.abs().sum()) == 0 for lin in m.lin)
    torch.testing.assert_close(m.output.weight.detach(), torch.eye(3))


def test_accepts_an_activation_object():
    import bregman_kernels as bk

    m = BregmanMLP(bk.get_activation("atan"), hidden_dim=[3], input_dim=3)
    assert m(torch.rand(2, 3)).shape == (2, 1)

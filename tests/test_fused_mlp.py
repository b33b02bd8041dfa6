"""The fused whole-network MLP (CPU kernels): an exact twin of BregmanMLP's layer-by-layer path."""

import copy

import pytest
import torch

from bregman_kernels import fused_mlp
from bregman_kernels.activations import NAMES
from bregman_kernels.nn import BregmanMLP

ACTS = [n for n in NAMES if n != "softplus<beta>"] + ["softplus10"]
VERSIONS = ("bregman", "standard", "euclidean")
WIDTHS = [3, 5, 5, 2]  # from input 4: every layer but one changes width (offset maps)

pytestmark = pytest.mark.skipif(bool(fused_mlp._why_no_kernel("cpu")),
                                reason=f"no fused MLP CPU kernel: {fused_mlp._why_no_kernel('cpu')}")


def _model(act, version="bregman", widths=WIDTHS, n_in=4, dtype=torch.float64, seed=0, **kw):
    torch.manual_seed(seed)
    return BregmanMLP(act, version=version, hidden_dim=widths, input_dim=n_in, output_dim=3, **kw).to(dtype)


def _inputs(model, batch, dtype=torch.float64, seed=1):
    # inside every activation's range (sigmoid, relu: positive), so offsets are not all clamped
    g = torch.Generator().manual_seed(seed)
    return 0.1 + 0.8 * torch.rand(batch, model.lin[0].in_features, dtype=dtype, generator=g)


def _run(model, x, fused=None, grad_seed=2):
    if fused is not None:
        model.fused = fused
    x = x.detach().clone().requires_grad_(True)
    y = model(x)
    g = torch.randn(y.shape, dtype=y.dtype, generator=torch.Generator().manual_seed(grad_seed))
    grads = torch.autograd.grad(y, [x, *model.parameters()], g)
    return y, grads


def _assert_twin(model, x, rtol=1e-11, atol=1e-13):
    assert fused_mlp.use_fused(model, x)
    y0, g0 = _run(model, x, False)
    y1, g1 = _run(model, x, True)
    torch.testing.assert_close(y1, y0, rtol=rtol, atol=atol)
    names = ["x", *(n for n, _ in model.named_parameters())]
    for name, a, b in zip(names, g1, g0, strict=True):
        torch.testing.assert_close(a, b, rtol=rtol, atol=atol, msg=lambda m, name=name: f"grad {name}: {m}")


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("act", ACTS)
def test_twin_fp64(act, version):
    model = _model(act, version)
    _assert_twin(model, _inputs(model, 37))


@pytest.mark.parametrize("batch", [1, 16, 33, 64, 129])
def test_twin_batch_sizes(batch):
    # partial vectors, one tile, several tiles
    model = _model("atan", widths=[2] * 6, n_in=2)
    _assert_twin(model, _inputs(model, batch))


def test_twin_threads_and_large_batch():
    # enough samples for several thread chunks; the chunk sums must give the same gradients
    model = _model("tanh", widths=[8, 8, 4])
    x = _inputs(model, 3000)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        _assert_twin(model, x)
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("kw", [{"weight_norm": True}, {"init": "deterministic"}])
def test_twin_weight_norm_and_deterministic_init(kw):
    model = _model("isru", **kw)
    _assert_twin(model, _inputs(model, 20))


def test_fp32_error_no_worse_than_layer_by_layer():
    # fp32 against the fp64 result: the fused error at most twice the layer-by-layer path's fp32 error (+ a floor)
    model = _model("atan", widths=[2] * 50, n_in=2)
    x = _inputs(model, 16)
    ref_y, ref_g = _run(model, x, True)
    m32 = copy.deepcopy(model).float()
    (y_l, g_l), (y_f, g_f) = _run(m32, x.float(), False), _run(m32, x.float(), True)
    for ref, lay, fus in zip((ref_y, *ref_g), (y_l, *g_l), (y_f, *g_f), strict=True):
        err_l = (lay.double() - ref).abs().max().item()
        err_f = (fus.double() - ref).abs().max().item()
        assert err_f <= 2 * err_l + 1e-6 * ref.abs().max().item()


def test_layouts_and_leading_dims():
    model = _model("sin")
    base = _inputs(model, 24)
    x_t = base.t().contiguous().t()  # column-major
    y0, _ = _run(model, base, False)
    y1, _ = _run(model, x_t, True)
    torch.testing.assert_close(y1, y0, rtol=1e-12, atol=1e-14)
    x3 = base.reshape(2, 12, 4)
    model.fused = True
    torch.testing.assert_close(model(x3), y0.reshape(2, 12, -1), rtol=1e-12, atol=1e-14)
    # expanded (stride-0) upstream gradient, as from y.sum().backward()
    p = next(model.parameters())
    model(base).sum().backward()
    g1 = p.grad.clone()
    p.grad = None
    model.fused = False
    model(base).sum().backward()
    torch.testing.assert_close(g1, p.grad, rtol=1e-11, atol=1e-13)


def test_nan_and_empty_batch():
    model = _model("tanh")
    x = _inputs(model, 5)
    x[2, 1] = float("nan")
    model.fused = True
    y = model(x)
    assert torch.isnan(y[2]).all() and not torch.isnan(y[[0, 1, 3, 4]]).any()
    e = model(x[:0])
    assert e.shape == (0, 3)
    e.sum().backward()
    assert all(p.grad is not None and (p.grad == 0).all() for p in model.lin.parameters())


@pytest.mark.parametrize("optimizer", [torch.optim.SGD, torch.optim.Adam])
def test_training_matches_and_offsets_stay_on_simplex(optimizer):
    ref = _model("softplus10", widths=[5, 3, 3])
    fused = copy.deepcopy(ref)
    x = _inputs(ref, 32)
    target = torch.randn(32, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    for model, flag in ((ref, False), (fused, True)):
        model.fused = flag
        opt = optimizer(model.parameters(), lr=0.05)
        for _ in range(4):
            opt.zero_grad()
            torch.nn.functional.mse_loss(model(x), target).backward()
            opt.step()
        model(x)  # projects the offset maps after the last step
    for (name, a), b in zip(ref.named_parameters(), fused.parameters(), strict=True):
        torch.testing.assert_close(b, a, rtol=1e-7, atol=1e-9, msg=lambda m, name=name: f"{name}: {m}")
    for r, r0 in zip(fused.reparametrization, _model("softplus10", widths=[5, 3, 3]).reparametrization,
                     strict=True):
        if hasattr(r, "weight"):
            assert not torch.equal(r.weight, r0.weight)  # trained
            assert (r.weight >= 0).all()
            torch.testing.assert_close(r.weight.sum(1), torch.ones(r.weight.shape[0], dtype=torch.float64))


def test_flag_selection():
    spiral = BregmanMLP("atan", hidden_dim=[2] * 100, input_dim=2, output_dim=2)
    x = torch.randn(16, 2)
    assert spiral.fused == "auto" and fused_mlp.use_fused(spiral, x)
    wide = BregmanMLP("atan", hidden_dim=[fused_mlp.MAX_WIDTH + 1], input_dim=2)
    assert not fused_mlp.use_fused(wide, x)
    wide.fused = True
    with pytest.raises(RuntimeError, match="wider"):
        wide(x)
    eager = BregmanMLP("atan", hidden_dim=[2, 2], input_dim=2, backend="eager")
    assert not fused_mlp.use_fused(eager, x)  # an explicit elementwise backend keeps the layer-by-layer path
    assert not fused_mlp.use_fused(spiral, x.half())
    spiral.fused = False
    assert not fused_mlp.use_fused(spiral, x)
    mid = BregmanMLP("atan", hidden_dim=[fused_mlp.MAX_WIDTH], input_dim=2)
    assert fused_mlp.use_fused(mid, x)
    assert not fused_mlp.use_fused(mid, torch.randn(fused_mlp.BIG_BATCH + 1, 2))  # large batch: BLAS wins
    mid.fused = True
    assert fused_mlp.use_fused(mid, torch.randn(fused_mlp.BIG_BATCH + 1, 2))


def _op_args(model, x):
    weights = [lin.weight for lin in model.lin]
    biases = [lin.bias for lin in model.lin]
    where = [i for i, r in enumerate(model.reparametrization) if hasattr(r, "weight")]
    offsets = [model.reparametrization[i].weight for i in where]
    return weights, biases, offsets, (where, *fused_mlp._activation_args(model, x.dtype))


@pytest.mark.parametrize("version", VERSIONS)
def test_gradcheck_op(version):
    model = _model("atan" if version == "bregman" else "relu", version, widths=[3, 2, 2], n_in=2)
    x = _inputs(model, 5).requires_grad_(True)
    w, b, r, args = _op_args(model, x)
    n = len(w)
    params = [t.detach().clone().requires_grad_(True) for t in (*w, *b, *r)]

    def f(x, *p):
        return fused_mlp.mlp_fwd(x, p[:n], p[n:2 * n], p[2 * n:], *args)[0]

    assert torch.autograd.gradcheck(f, (x, *params), eps=1e-6, atol=1e-6)


def test_opcheck():
    model = _model("tanh", widths=[3, 2, 2], n_in=2)
    x = _inputs(model, 6)
    w, b, r, args = _op_args(model, x)
    torch.library.opcheck(fused_mlp.mlp_fwd, (x, w, b, r, *args))
    out, hs = fused_mlp.mlp_fwd(x, w, b, r, *args)
    w, b = [t.detach() for t in w], [t.detach() for t in b]  # the backward op has no derivative of its own
    torch.library.opcheck(fused_mlp.mlp_bwd, (torch.ones_like(out), x, hs.detach(), w, b, r, *args))


def test_errors():
    model = _model("tanh", widths=[3, 2], n_in=2)
    x = _inputs(model, 4)
    w, b, r, args = _op_args(model, x)
    with pytest.raises(RuntimeError, match="shape"):
        fused_mlp.mlp_fwd(x, [w[0].t(), w[1]], b, r, *args)
    with pytest.raises(RuntimeError, match="dtype"):
        fused_mlp.mlp_fwd(x.float(), w, b, r, *args)
    with pytest.raises(RuntimeError, match="offset map"):
        fused_mlp.mlp_fwd(x, w, b, [], [], *args[1:])
    with pytest.raises(RuntimeError, match="distinct"):
        fused_mlp.mlp_fwd(x, w, b, [r[0], r[0]], [0, 0], *args[1:])


def test_compile_fullgraph():
    model = _model("atan", widths=[3, 3, 2], n_in=2)
    x = _inputs(model, 8)
    y0, g0 = _run(model, x, True)
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    y1, g1 = _run(compiled, x)
    torch.testing.assert_close(y1, y0, rtol=1e-13, atol=1e-15)
    for a, b in zip(g1, g0, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-13, atol=1e-15)

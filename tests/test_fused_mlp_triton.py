"""The Triton fused MLP: the layer-by-layer path's twin. Without a GPU the kernels run under Triton's interpreter on
CPU tensors (conftest.py sets TRITON_INTERPRET=1 before triton loads) and are compiled for sm_90 without running;
the GPU cases skip there."""

import copy
import os
import subprocess
import sys

import pytest
import torch

from bregman_kernels import fused_mlp
from bregman_kernels.activations import NAMES
from bregman_kernels.nn import BregmanMLP

try:
    from bregman_kernels import fused_mlp_triton as T
except ImportError as e:  # triton missing
    pytest.skip(f"triton is not available: {e}", allow_module_level=True)

if not torch.cuda.is_available() and not T.INTERPRETED:
    pytest.skip("no GPU and Triton is not interpreted (TRITON_INTERPRET=1 before import)", allow_module_level=True)

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
PAIR = (T.mlp_triton_fwd, T.mlp_triton_bwd)
ACTS = [n for n in NAMES if n != "softplus<beta>"] + ["softplus10"]
GPU = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def _model(act, version="bregman", widths=(3, 5, 5, 2), n_in=4, dtype=torch.float64, **kw):
    torch.manual_seed(0)
    return BregmanMLP(act, version=version, hidden_dim=list(widths), input_dim=n_in, output_dim=3,
                      **kw).to(DEVICE, dtype)


def _x(model, batch, dtype=torch.float64):
    g = torch.Generator().manual_seed(1)
    return (0.1 + 0.8 * torch.rand(batch, model.lin[0].in_features, dtype=dtype, generator=g)).to(DEVICE)


def _grads(model, x, fused):
    x = x.detach().clone().requires_grad_(True)
    if fused:
        y = model.output(fused_mlp.hidden(model, x, PAIR))
    else:
        model.fused = False
        y = model(x)
    g = torch.randn(y.shape, dtype=y.dtype, generator=torch.Generator().manual_seed(2)).to(DEVICE)
    return y, torch.autograd.grad(y, [x, *model.parameters()], g)


def _assert_twin(model, x, rtol=1e-11, atol=1e-13):
    y0, g0 = _grads(model, x, False)
    y1, g1 = _grads(model, x, True)
    torch.testing.assert_close(y1, y0, rtol=rtol, atol=atol)
    for a, b in zip(g1, g0, strict=True):
        torch.testing.assert_close(a, b, rtol=rtol, atol=atol)


@pytest.mark.parametrize("act", ACTS)
def test_twin_bregman_every_activation(act):
    model = _model(act)
    _assert_twin(model, _x(model, 9))


@pytest.mark.parametrize("version,act", [("standard", "relu"), ("standard", "asinh"), ("euclidean", "tanh"),
                                         ("euclidean", "relu")])
def test_twin_plain_versions(version, act):
    model = _model(act, version)
    _assert_twin(model, _x(model, 9))


def test_twin_several_programs():
    # more samples than one program holds: gradient sums from several programs (atomics)
    model = _model("atan", widths=(2,) * 4, n_in=2)
    _assert_twin(model, _x(model, 2 * T.BLOCK_B + 5))


def test_fp32_matches_cpp_kernel():
    if DEVICE != "cpu" or fused_mlp._why_no_kernel("cpu"):
        pytest.skip("compares with the C++ CPU kernel")
    model = _model("tanh", dtype=torch.float32)
    x = _x(model, 20, torch.float32)
    y0 = model.output(fused_mlp.hidden(model, x, (fused_mlp.mlp_fwd, fused_mlp.mlp_bwd)))
    y1 = model.output(fused_mlp.hidden(model, x, PAIR))
    torch.testing.assert_close(y1, y0, rtol=2e-6, atol=1e-6)


def test_opcheck():
    model = _model("tanh", widths=(3, 2), n_in=2)
    x = _x(model, 5)
    w = [lin.weight.detach() for lin in model.lin]
    b = [lin.bias.detach() for lin in model.lin]
    r = [model.reparametrization[0].weight.detach()]
    args = ([0], *fused_mlp._activation_args(model, x.dtype))
    torch.library.opcheck(T.mlp_triton_fwd, (x, w, b, r, *args), test_utils=("test_schema", "test_faketensor"))
    _, hs = T.mlp_triton_fwd(x, w, b, r, *args)
    torch.library.opcheck(T.mlp_triton_bwd, (torch.ones(5, 2, dtype=x.dtype, device=DEVICE), x, hs, w, b, r, *args),
                          test_utils=("test_schema", "test_faketensor"))


def test_flat_kernels_match_cpp():
    if DEVICE != "cpu" or fused_mlp._why_no_kernel("cpu"):
        pytest.skip("compares with the C++ CPU kernels")
    from bregman_kernels import fused_mlp_flat as F

    model = _model("softplus10")
    flat = F.FlatMLP.from_model(model)
    x = _x(model, 40)
    args = flat._args(x.dtype)
    y0, hs0 = F.mlp_flat_fwd(x, flat.hidden.detach(), *args)
    y1, hs1 = T.mlp_flat_fwd_triton(x, flat.hidden.detach(), *args)
    torch.testing.assert_close(y1, y0, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(hs1, hs0, rtol=1e-12, atol=1e-14)
    g = torch.randn(y0.shape, dtype=y0.dtype, generator=torch.Generator().manual_seed(4))
    for a, b in zip(T.mlp_flat_bwd_triton(g, x, hs0, flat.hidden.detach(), *args),
                    F.mlp_flat_bwd(g, x, hs0, flat.hidden.detach(), *args), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-11, atol=1e-13)


@GPU
def test_gpu_flat_mlp():
    from bregman_kernels.fused_mlp_flat import FlatMLP

    model = _model("atan", widths=(2,) * 20, n_in=2, dtype=torch.float32)
    flat = FlatMLP.from_model(model)
    x = _x(model, 500, torch.float32)
    model.fused = False
    torch.testing.assert_close(flat(x), model(x), rtol=1e-4, atol=1e-5)
    flat(x).sum().backward()
    assert flat.hidden.grad is not None and torch.isfinite(flat.hidden.grad).all()


@GPU
def test_gpu_module_auto_and_compile():
    model = _model("atan", widths=(2,) * 20, n_in=2, dtype=torch.float32)
    x = _x(model, 1000, torch.float32)
    assert fused_mlp.use_fused(model, x)
    ref = copy.deepcopy(model)
    _assert_twin(model, x, rtol=1e-4, atol=1e-5)
    model.fused = True
    compiled = torch.compile(model, fullgraph=True)
    torch.testing.assert_close(compiled(x), ref(x), rtol=1e-4, atol=1e-5)


_AOT = """
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource, compile
from bregman_kernels import fused_mlp_triton as T
target = GPUTarget("cuda", 90, 32)
def sig(ptrs, ints, ptr):
    return {**{n: ptr for n in ptrs}, "meta_ptr": "*i64", **{n: "i64" for n in ints},
            **{n: "constexpr" for n in ("MODE", "ACT", "PARAM", "LO", "HI", "FP64", "WP", "BLOCK")}}
fwd = (["x_ptr", "p_ptr", "y_ptr", "hs_ptr"], ["sx0", "sx1", "B", "L"])
bwd = (["g_ptr", "x_ptr", "hs_ptr", "p_ptr", "gp_ptr", "gx_ptr"], ["sg0", "sg1", "sx0", "sx1", "B", "L"])
for mode, act, fp64 in [(1, a, False) for a in range(9)] + [(0, 9, False), (2, 5, True)]:
    consts = {"MODE": mode, "ACT": act, "PARAM": 10.0, "LO": -1.5, "HI": 1.5, "FP64": fp64, "WP": 4, "BLOCK": 32}
    for kern, (ptrs, ints) in ((T.mlp_fwd_kernel, fwd), (T.mlp_bwd_kernel, bwd)):
        compile(ASTSource(kern, sig(ptrs, ints, "*fp64" if fp64 else "*fp32"), consts), target=target)
print("compiled")
"""


@pytest.mark.skipif(torch.cuda.is_available(), reason="the GPU tests compile and run the kernels themselves")
def test_kernels_compile_for_the_gpu():
    """Compile both kernels through Triton's real compiler (sm_90, no device needed) for every activation in a
    process without TRITON_INTERPRET: failures that the interpreter does not see (e.g. 1-D-only helpers)."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    root = os.path.dirname(os.path.dirname(fused_mlp.__file__))
    env["PYTHONPATH"] = os.pathsep.join([root, env.get("PYTHONPATH", "")])
    r = subprocess.run([sys.executable, "-c", _AOT], env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0 and "compiled" in r.stdout, r.stderr[-3000:]

"""Whole-network fused hidden stack of narrow Bregman MLPs: every hidden layer in one kernel forward and one
kernel backward, over tiles of samples.

Hidden layer l maps h_l (width n_l) to h_{l+1} (width n_{l+1}), a = W_l h_l + b_l (as :class:`BregmanMLP`):
    bregman:   h_{l+1} = ρ(a + ρ⁻¹(clamp(R_l h_l, lo + eps, hi − eps)))    (R_l = identity when absent)
    euclidean: h_{l+1} = ρ(a + R_l h_l)
    standard:  h_{l+1} = ρ(a)
The ops (schemas below, one family per implementation):
    bregman_kernels::{family}_fwd(x, weights, biases, offsets, offset_layers, mode, act, param, lo, hi)
        -> (h_L, hs)
    bregman_kernels::{family}_bwd(grad, x, hs, weights, biases, offsets, offset_layers, mode, act, param, lo, hi)
        -> (grad_x, grad_weights, grad_biases, grad_offsets)
x is (batch, n_0); offsets[k] is the map R of layer offset_layers[k] (other layers: identity). hs
(n_1 + … + n_{L−1}, batch) holds the hidden states h_1 … h_{L−1} feature-major: the forward keeps them (batch ×
Σ widths values, less than the layer-by-layer path's autograd keeps) and the backward recomputes a and z from
them (one more multiply-add per weight, cheaper than storing a, z and the activation's derivatives). act is the
registry code, or PLAIN_RELU for the true ReLU of the non-Bregman versions. Families: "mlp" (C++: CPU kernels in
csrc/fused_mlp) and "mlp_triton" (Triton, GPU; CPU tensors under TRITON_INTERPRET=1; fused_mlp_triton.py).
fused_mlp_flat.py has the same kernels on one flat parameter tensor (FlatMLP): for deep narrow nets the per-tensor
costs of autograd and the optimizer (2–3 tensors per layer) outweigh the fused kernels themselves.
"""

from __future__ import annotations

import torch

from . import ops
from .activations import get_activation

# Widest hidden layer the fused path takes, and the batch above which "auto" keeps it to widths ≤ SMALL_WIDTH.
# Measured on one x86 core (AVX-512), 10 tanh layers, forward + backward, fused vs layer by layer: batch 256:
# 2.4× faster at width 16, 1.5× at 32, 1.3× at 64; batch 4096: 1.2× at 8, even at 16, 0.88× at 32. Wider or
# with more samples, the layer-by-layer path's matrix products (BLAS) win over the fused per-sample loops.
MAX_WIDTH = 32
SMALL_WIDTH = 16
BIG_BATCH = 1024
MODES = {"standard": 0, "bregman": 1, "euclidean": 2}
PLAIN_RELU = 9

FWD_SCHEMA = ("(Tensor x, Tensor[] weights, Tensor[] biases, Tensor[] offsets, int[] offset_layers, int mode, "
              "int act, float param, float lo, float hi) -> (Tensor, Tensor)")
BWD_SCHEMA = ("(Tensor grad, Tensor x, Tensor hs, Tensor[] weights, Tensor[] biases, Tensor[] offsets, "
              "int[] offset_layers, int mode, int act, float param, float lo, float hi) "
              "-> (Tensor, Tensor[], Tensor[], Tensor[])")


def _fake_fwd(x, weights, biases, offsets, offset_layers, mode, act, param, lo, hi):
    rows = sum(w.shape[1] for w in weights[1:])
    return x.new_empty(x.shape[0], weights[-1].shape[0]), x.new_empty(rows, x.shape[0])


def _fake_bwd(grad, x, hs, weights, biases, offsets, offset_layers, mode, act, param, lo, hi):
    return (x.new_empty(x.shape), [w.new_empty(w.shape) for w in weights], [b.new_empty(b.shape) for b in biases],
            [r.new_empty(r.shape) for r in offsets])


def _setup_context(ctx, inputs, output):
    x, weights, biases, offsets, *args = inputs
    ctx.mark_non_differentiable(output[1])
    ctx.save_for_backward(x, output[1], *weights, *biases, *offsets)
    ctx.num_layers = len(weights)
    ctx.args = tuple(args)


def register_autograd(fwd_name: str, bwd_op) -> None:
    """Autograd of ``fwd_name`` through the backward op ``bwd_op`` (an op itself: compile-safe)."""

    def backward(ctx, grad, _grad_hs):
        x, hs, *params = ctx.saved_tensors
        n = ctx.num_layers
        weights, biases, offsets = params[:n], params[n:2 * n], params[2 * n:]
        gx, gw, gb, gr = bwd_op(grad, x, hs, weights, biases, offsets, *ctx.args)
        # offset_layers: None for an int list; an empty list reads as an empty tensor list, whose gradient is []
        no_grad = None if ctx.args[0] else []
        return gx if ctx.needs_input_grad[0] else None, gw, gb, gr, no_grad, None, None, None, None, None

    torch.library.register_autograd(fwd_name, backward, setup_context=_setup_context)


def define_family(family: str, define: bool = True) -> tuple:
    """Schemas (unless ``define`` is False: defined elsewhere, e.g. by triton_op), fakes and autograd of one
    family; returns the (fwd, bwd) op handles."""
    fwd_name, bwd_name = f"{ops.NAMESPACE}::{family}_fwd", f"{ops.NAMESPACE}::{family}_bwd"
    if define:
        torch.library.define(fwd_name, FWD_SCHEMA)
        torch.library.define(bwd_name, BWD_SCHEMA)
        torch.library.register_fake(fwd_name)(_fake_fwd)
        torch.library.register_fake(bwd_name)(_fake_bwd)
    ns = getattr(torch.ops, ops.NAMESPACE)
    fwd, bwd = getattr(ns, f"{family}_fwd").default, getattr(ns, f"{family}_bwd").default
    register_autograd(fwd_name, bwd)
    return fwd, bwd


# Kernels come from the C++ extension (csrc/fused_mlp), registered for the CPU dispatch key when it loads.
mlp_fwd, mlp_bwd = define_family("mlp")

_AVAILABLE: dict = {}  # device type -> ((fwd, bwd) ops or None, reason); a plain dict traces cleanly


def _load(device_type: str):
    if device_type == "cpu":
        from .backends import cpp

        try:
            cpp.load()
        except RuntimeError as e:
            return None, str(e)
        if not torch._C._dispatch_has_kernel_for_dispatch_key("bregman_kernels::mlp_fwd", "CPU"):
            return None, "the C++ extension has no fused MLP kernel (rebuild it)"
        return (mlp_fwd, mlp_bwd), None
    if device_type == "cuda":
        try:
            from . import fused_mlp_triton
        except ImportError as e:
            return None, f"triton is not available ({e})"
        return (fused_mlp_triton.mlp_triton_fwd, fused_mlp_triton.mlp_triton_bwd), None
    return None, f"no fused MLP kernel for {device_type} tensors"


@torch.compiler.assume_constant_result
def _why_no_kernel(device_type: str) -> str:
    """'' when a fused MLP kernel serves ``device_type``, else why not (resolved once, outside traced graphs)."""
    if device_type not in _AVAILABLE:
        _AVAILABLE[device_type] = _load(device_type)
    return _AVAILABLE[device_type][1] or ""


def why_not_fused(model, x: torch.Tensor) -> str | None:
    """None when the fused path can run ``model``'s hidden layers on ``x``, else the reason. (Parameters of
    another dtype or device than x are not looked for here: the op raises on them, as F.linear would.)"""
    widest = max(model.num_neurons)
    if widest > MAX_WIDTH:
        return f"a hidden layer is wider than {MAX_WIDTH}"
    if x.dtype not in (torch.float32, torch.float64):
        return f"dtype {x.dtype} (the fused MLP computes fp32 or fp64)"
    if x.dim() == 0 or x.shape[-1] != model.lin[0].in_features:
        return "x does not end in the input width"
    if x.device.type != "cpu" and x.shape[-1] > MAX_WIDTH:
        return f"the input is wider than {MAX_WIDTH} (the GPU kernel keeps every width in one tile)"
    if torch.is_autocast_enabled(x.device.type):
        return "autocast is enabled"
    why = _why_no_kernel(x.device.type)
    return why or None


def _activation_args(model, dtype: torch.dtype) -> tuple:
    """(mode, act code, param, lo, hi) of ``model``'s hidden units."""
    mode = MODES[model.version]
    a = model.activation
    act = get_activation(a.act)
    if model.version == "bregman":
        lo, hi = act.bounds(a.eps, dtype)
        return mode, act.code, act.param, lo, hi
    return mode, PLAIN_RELU if getattr(a, "relu", False) else act.code, act.param, 0.0, 0.0


class _Hidden(torch.autograd.Function):
    """The fused ops under one autograd node, parameters as flat arguments: the module's hot path (a direct op
    call goes through the op's registered autograd, which flattens its list arguments in Python on every call)."""

    @staticmethod
    def forward(ctx, x, pair, args, n, *params):
        # params: n weights, n biases, then the offset maps of layers args[0]
        out, hs = pair[0](x, params[:n], params[n:2 * n], params[2 * n:], *args)
        ctx.save_for_backward(x, hs, *params)
        ctx.bwd, ctx.args, ctx.n = pair[1], args, n
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        x, hs, *params = ctx.saved_tensors
        n = ctx.n
        gx, gw, gb, gr = ctx.bwd(grad, x, hs, params[:n], params[n:2 * n], params[2 * n:], *ctx.args)
        return gx if ctx.needs_input_grad[0] else None, None, None, None, *gw, *gb, *gr


def _param(module, name: str):
    # a registered parameter straight from the dict (nn.Module.__getattr__ is slow), else the attribute (a
    # computed weight, e.g. weight normalisation)
    p = module._parameters.get(name)
    return p if p is not None else getattr(module, name)


def hidden(model, x: torch.Tensor, ops_pair: tuple | None = None) -> torch.Tensor:
    """h_L of ``model`` (a :class:`bregman_kernels.nn.BregmanMLP`) for ``x`` (..., n_0) through the fused ops: the
    output of its hidden stack, before ``model.output``. Autograd reaches every weight, bias and offset map.
    ``ops_pair``: the (fwd, bwd) ops to use (default: the family serving x's device)."""
    from .nn.layers import SimplexLinear

    where, maps = [], []
    for i, r in enumerate(model.reparametrization):
        if isinstance(r, SimplexLinear):
            if not torch.compiler.is_compiling() and r.weight._version != r._seen:
                r.project_()  # as SimplexLinear.forward: the map in use is on the simplex
            where.append(i)
            maps.append(r.weight)
    lins = model.lin
    weights = [_param(lin, "weight") for lin in lins]
    biases = [_param(lin, "bias") for lin in lins]
    lead = x.shape[:-1]
    x2 = x.reshape(-1, x.shape[-1])
    if ops_pair is None:
        _why_no_kernel(x.device.type)
        ops_pair = _AVAILABLE[x.device.type][0]
    args = (where, *_activation_args(model, x.dtype))
    out = _Hidden.apply(x2, ops_pair, args, len(weights), *weights, *biases, *maps)
    return out.reshape(*lead, out.shape[-1])


def use_fused(model, x: torch.Tensor) -> bool:
    """Whether ``model.forward`` takes the fused path: ``model.fused`` True (raises when it cannot), "auto" (when
    the shapes qualify, the model's elementwise backend is "auto" and the fused path is the faster one: hidden widths
    ≤ SMALL_WIDTH, or ≤ MAX_WIDTH with at most BIG_BATCH samples) or False."""
    flag = getattr(model, "fused", "auto")
    if flag is False:
        return False
    why = why_not_fused(model, x)
    if flag is True:
        if why is not None:
            raise RuntimeError(f"fused=True but the fused MLP cannot run: {why}")
        return True
    if flag != "auto":
        raise ValueError(f"fused must be True, False or 'auto', got {flag!r}")
    if why is not None or getattr(model.activation, "backend", "auto") != "auto":
        return False
    # wider than SMALL_WIDTH: only for batches up to BIG_BATCH (see MAX_WIDTH)
    return max(model.num_neurons) <= SMALL_WIDTH or x.numel() // max(x.shape[-1], 1) <= BIG_BATCH

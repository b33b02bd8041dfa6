"""The fused MLP with every hidden parameter in one tensor: ``bregman_kernels::mlp_flat_fwd`` / ``mlp_flat_bwd``
(CPU kernels in csrc/fused_mlp) and :class:`FlatMLP`.

A narrow, deep net is bound by per-tensor costs, not arithmetic: the two-spiral net has 202 parameter tensors, and
autograd's per-leaf gradient accumulation plus the optimizer's per-tensor updates cost more than the whole fused
forward and backward. Stored flat, the hidden stack is one leaf for autograd and one tensor for the optimizer.
Layout of ``params``, layer after layer: W (n_out·n_in, row-major), b (n_out), then R (n_out·n_in) for the layers
listed in ``offset_layers``; its gradient comes out of the kernel in the same layout.

    mlp_flat_fwd(Tensor x, Tensor params, int[] widths, int[] offset_layers, int mode, int act, float param,
                 float lo, float hi) -> (Tensor h_L, Tensor hs)
    mlp_flat_bwd(Tensor grad, Tensor x, Tensor hs, Tensor params, int[] widths, int[] offset_layers, int mode,
                 int act, float param, float lo, float hi) -> (Tensor grad_x, Tensor grad_params)
    mlp_flat_ce_grad(Tensor x, Tensor target, Tensor params, Tensor out_w, Tensor out_b, int[] widths,
                     int[] offset_layers, int mode, int act, float param, float lo, float hi)
        -> (Tensor loss, Tensor grad_params, Tensor grad_out_w, Tensor grad_out_b)

``mlp_flat_ce_grad`` is a whole training step's loss and gradients without the autograd engine (as tiny-cuda-nn's
fully fused training): the hidden stack, the output layer ``logits = h·out_wᵀ + out_b``, the mean cross-entropy
against ``target`` (int64 class indices) and the analytic backward of all of it, in one call. Its outputs are
gradients and are not differentiable. CPU: one C++ kernel (csrc/fused_mlp/mlp_train.cpp) that calls the flat
kernels directly; CUDA: :func:`ce_grad_composite`, torch ops around the Triton flat kernels (there the launches,
not the host, bound the step). :meth:`FlatMLP.train_step` puts its gradients into ``.grad`` and steps any
torch.optim optimizer.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from . import fused_mlp as FM
from . import ops
from .nn.layers import SimplexLinear, project_simplex

FWD_SCHEMA = ("(Tensor x, Tensor params, int[] widths, int[] offset_layers, int mode, int act, float param, "
              "float lo, float hi) -> (Tensor, Tensor)")
BWD_SCHEMA = ("(Tensor grad, Tensor x, Tensor hs, Tensor params, int[] widths, int[] offset_layers, int mode, "
              "int act, float param, float lo, float hi) -> (Tensor, Tensor)")
CE_SCHEMA = ("(Tensor x, Tensor target, Tensor params, Tensor out_w, Tensor out_b, int[] widths, int[] offset_layers, "
             "int mode, int act, float param, float lo, float hi) -> (Tensor, Tensor, Tensor, Tensor)")


def _fake_fwd(x, params, widths, offset_layers, mode, act, param, lo, hi):
    return x.new_empty(x.shape[0], widths[-1]), x.new_empty(sum(widths[1:-1]), x.shape[0])


def _fake_bwd(grad, x, hs, params, widths, offset_layers, mode, act, param, lo, hi):
    return x.new_empty(x.shape), params.new_empty(params.shape)


def _fake_ce_grad(x, target, params, out_w, out_b, widths, offset_layers, mode, act, param, lo, hi):
    devices = {t.device for t in (x, target, params, out_w, out_b)}
    if len(devices) > 1:  # a meta tensor among CPU ones dispatches here: no kernel checks it
        raise RuntimeError(f"mlp_flat_ce_grad: all tensors must be on one device, got {sorted(map(str, devices))}")
    return x.new_empty(()), params.new_empty(params.shape), out_w.new_empty(out_w.shape), out_b.new_empty(out_b.shape)


for _name, _schema, _fake in (("mlp_flat_fwd", FWD_SCHEMA, _fake_fwd), ("mlp_flat_bwd", BWD_SCHEMA, _fake_bwd),
                              ("mlp_flat_ce_grad", CE_SCHEMA, _fake_ce_grad)):
    torch.library.define(f"{ops.NAMESPACE}::{_name}", _schema)
    torch.library.register_fake(f"{ops.NAMESPACE}::{_name}")(_fake)
mlp_flat_fwd = torch.ops.bregman_kernels.mlp_flat_fwd.default
mlp_flat_bwd = torch.ops.bregman_kernels.mlp_flat_bwd.default
mlp_flat_ce_grad = torch.ops.bregman_kernels.mlp_flat_ce_grad.default


def ce_grad_composite(x, target, params, out_w, out_b, widths, offset_layers, mode, act, param, lo, hi):
    """``mlp_flat_ce_grad`` in torch ops around the flat ops (the op's CUDA kernel; on CPU tensors, a reference)."""
    if target.dtype != torch.int64 or target.shape != x.shape[:1] or x.dim() != 2 or x.shape[0] == 0:
        raise RuntimeError(f"mlp_flat_ce_grad: x must be (batch ≥ 1, features) and target ({x.shape[0]},) int64, "
                           f"got {tuple(x.shape)} and {target.dtype} {tuple(target.shape)}")
    if out_w.dim() != 2 or out_w.shape[1] != widths[-1] or out_b.shape != out_w.shape[:1]:
        raise RuntimeError(f"mlp_flat_ce_grad: out_w must be (classes, {widths[-1]}) and out_b (classes,)")
    h, hs = mlp_flat_fwd(x, params, widths, offset_layers, mode, act, param, lo, hi)
    # z = h·Wᵀ + b;  log p = log_softmax(z);  loss = −mean_n log p[n, t_n]
    logp = torch.log_softmax(torch.addmm(out_b, h, out_w.t()), 1)
    t = target[:, None]
    loss = -logp.gather(1, t).mean()
    # dz = (softmax(z) − onehot(t)) / B
    dz = logp.exp().scatter_add_(1, t, torch.full_like(t, -1, dtype=logp.dtype)).div_(x.shape[0])
    # ∂W = dzᵀ·h, ∂b = Σ_n dz, ∂h = dz·W, then the hidden stack's backward
    _, gp = mlp_flat_bwd(dz @ out_w, x, hs, params, widths, offset_layers, mode, act, param, lo, hi)
    return loss, gp, dz.t() @ h, dz.sum(0)


torch.library.register_kernel(f"{ops.NAMESPACE}::mlp_flat_ce_grad", "cuda", ce_grad_composite)
# CUDA kernels of the flat ops: the Triton ones, where a GPU can run them (importing triton_op pulls in the compiler
# stack: about a second of every start, which a CPU-only run has no use for)
if torch.cuda.is_available():
    try:
        from . import fused_mlp_triton as _T

        torch.library.register_kernel(f"{ops.NAMESPACE}::mlp_flat_fwd", "cuda", _T.mlp_flat_fwd_triton)
        torch.library.register_kernel(f"{ops.NAMESPACE}::mlp_flat_bwd", "cuda", _T.mlp_flat_bwd_triton)
    except ImportError:  # no triton: CPU only
        pass
# Autograd of mlp_flat_fwd is registered in C++ with the CPU kernels (csrc/fused_mlp/mlp_cpu.cpp, FlatFunction):
# its backward is the mlp_flat_bwd op, and no Python runs on the training step's path.


class FlatMLP(nn.Module):
    """A :class:`bregman_kernels.nn.BregmanMLP` (any version) on the flat fused ops: the same function, with the
    hidden layers' weights, biases and offset maps in one parameter ``hidden`` and the same ``output`` layer.

    Build it with :meth:`from_model`; :meth:`copy_to` writes the parameters back into a BregmanMLP (for its
    checkpoints). Offset maps stay on the simplex as in BregmanMLP: projected at the start of a forward pass when
    ``hidden`` changed since the last projection (outside torch.compile: call :meth:`project_` after each step).
    fp32/fp64; CPU (C++ kernels) and CUDA (the Triton kernels of fused_mlp_triton.py; autograd from the C++
    extension in both cases). Widths up to fused_mlp.MAX_WIDTH are where it pays.
    """

    def __init__(self, model):
        super().__init__()
        FM._why_no_kernel("cpu")  # loads the C++ extension
        self.version = model.version
        self.act = model.activation.act
        self.eps = getattr(model.activation, "eps", 0.0)
        self.relu = getattr(model.activation, "relu", False)
        self.widths = [model.lin[0].in_features, *model.num_neurons]
        self.offset_layers = [i for i, r in enumerate(model.reparametrization) if isinstance(r, SimplexLinear)]
        pieces = []
        for i, (lin, r) in enumerate(zip(model.lin, model.reparametrization, strict=True)):
            pieces += [lin.weight.detach().reshape(-1), lin.bias.detach()]
            if i in self.offset_layers:
                pieces.append(r.weight.detach().reshape(-1))
        self.hidden = nn.Parameter(torch.cat(pieces))
        self.output = copy.deepcopy(model.output)
        self._seen = self.hidden._version  # the maps come projected from the model
        self._arg_cache: dict = {}

    @classmethod
    def from_model(cls, model) -> FlatMLP:
        """A FlatMLP computing what ``model`` computes, with copies of its parameters."""
        return cls(model)

    def _slices(self):
        # (layer, W, b, R or None) views of ``hidden``
        pos, out = 0, []
        for i, (n_in, n_out) in enumerate(zip(self.widths[:-1], self.widths[1:], strict=True)):
            w = self.hidden[pos:pos + n_in * n_out].view(n_out, n_in)
            b = self.hidden[pos + n_in * n_out:pos + n_in * n_out + n_out]
            pos += n_in * n_out + n_out
            r = None
            if i in self.offset_layers:
                r = self.hidden[pos:pos + n_in * n_out].view(n_out, n_in)
                pos += n_in * n_out
            out.append((i, w, b, r))
        return out

    @torch.no_grad()
    def project_(self) -> FlatMLP:
        """Project every offset map onto the simplex in place."""
        for _, _, _, r in self._slices():
            if r is not None:
                r.copy_(project_simplex(r))
        self._seen = self.hidden._version
        return self

    @torch.no_grad()
    def copy_to(self, model):
        """Write the parameters into ``model`` (a BregmanMLP of the same structure); returns it."""
        for i, w, b, r in self._slices():
            lin = model.lin[i]
            if hasattr(lin, "weight_v"):  # weight norm: W = g·v/‖v‖ is met by v = W, g = ‖W‖ (row norms)
                lin.weight_v.copy_(w)
                lin.weight_g.copy_(torch.linalg.vector_norm(w, dim=1, keepdim=True))
            else:
                lin.weight.copy_(w)
            lin.bias.copy_(b)
            if r is not None:
                model.reparametrization[i].weight.copy_(r)
        model.output.load_state_dict(self.output.state_dict())
        return model

    def _args(self, dtype: torch.dtype) -> tuple:
        # (widths, offset layers, mode, act code, param, lo, hi) for inputs of ``dtype``, built once per dtype
        if dtype not in self._arg_cache:
            if self.version == "bregman":
                code, (lo, hi) = self.act.code, self.act.bounds(self.eps, dtype)
            else:
                code, lo, hi = FM.PLAIN_RELU if self.relu else self.act.code, 0.0, 0.0
            self._arg_cache[dtype] = (self.widths, self.offset_layers, FM.MODES[self.version], code, self.act.param,
                                      lo, hi)
        return self._arg_cache[dtype]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.offset_layers and not torch.compiler.is_compiling() and self.hidden._version != self._seen:
            self.project_()
        if x.dim() == 2:
            return self.output(mlp_flat_fwd(x, self.hidden, *self._args(x.dtype))[0])
        h = mlp_flat_fwd(x.reshape(-1, x.shape[-1]), self.hidden, *self._args(x.dtype))[0]
        return self.output(h.reshape(*x.shape[:-1], h.shape[-1]))

    def train_step(self, x: torch.Tensor, target: torch.Tensor, optimizer=None) -> torch.Tensor:
        """One training step on the batch (x (batch, n_0), target (batch,) int64 class indices) under mean
        cross-entropy, without the autograd engine: :data:`mlp_flat_ce_grad` computes the loss and the gradients
        of ``hidden``, ``output.weight`` and ``output.bias``, which *replace* their ``.grad`` (the gradients of this
        batch alone, as ``zero_grad()`` + ``backward()`` would leave them); then ``optimizer.step()`` (any
        torch.optim optimizer over these parameters; None: gradients only) and the offset maps' projection.
        Returns the loss, a 0-dim tensor (no host synchronisation)."""
        # parameters straight from the dicts (nn.Module.__getattr__ is slow; this runs once per step)
        hidden, out = self._parameters["hidden"], self._modules["output"]._parameters
        if self.offset_layers and hidden._version != self._seen:
            self.project_()  # as forward: the maps in use are on the simplex
        w, b = out["weight"], out["bias"]
        if b is None:
            raise ValueError("train_step needs an output layer with a bias")
        loss, hidden.grad, w.grad, b.grad = mlp_flat_ce_grad(x, target, hidden, w, b, *self._args(x.dtype))
        if optimizer is not None:
            optimizer.step()
            if self.offset_layers:
                self.project_()
        return loss

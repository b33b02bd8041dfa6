"""The custom ops: one forward/backward pair per kernel family, all with the same schema.

    bregman_kernels::{family}_fwd(Tensor x, Tensor z, int act, float param, float lo, float hi) -> Tensor
    bregman_kernels::{family}_bwd(Tensor grad, Tensor x, Tensor z, int act, float param, float lo, float hi)
        -> (Tensor, Tensor)

act is the registry code (activations.py), param the activation's parameter (softplus β), lo/hi the clamp
bounds in the compute type. Families: "eager" (composite, every device), "fused" (C++: CPU and CUDA kernels
registered per dispatch key by the extensions) and "triton" (triton_op, defined in backends/triton_ops.py).
Preconditions (checked by bregman_activation, outside the ops): x and z of one shape, dtype and device.
The forward output and the gradients take the layout of torch.empty_like(x) / empty_like(z); the backward
saves (x, z) and recomputes u = x + ρ⁻¹(zc), keeping ρ'(u) accurate at saturation (docs/math.md).
"""

from __future__ import annotations

import torch

from .backends import eager

NAMESPACE = "bregman_kernels"
FWD_SCHEMA = "(Tensor x, Tensor z, int act, float param, float lo, float hi) -> Tensor"
BWD_SCHEMA = "(Tensor grad, Tensor x, Tensor z, int act, float param, float lo, float hi) -> (Tensor, Tensor)"


def _fake_fwd(x, z, act, param, lo, hi):
    return torch.empty_like(x)


def _fake_bwd(grad, x, z, act, param, lo, hi):
    return torch.empty_like(x), torch.empty_like(z)


def _setup_context(ctx, inputs, output):
    x, z, act, param, lo, hi = inputs
    ctx.save_for_backward(x, z)
    ctx.args = (act, param, lo, hi)


def register_autograd(fwd_name: str, bwd_op) -> None:
    """Autograd for ``fwd_name`` through the analytic backward op ``bwd_op`` (itself an op: compile-safe)."""

    def backward(ctx, grad):
        x, z = ctx.saved_tensors
        gx, gz = bwd_op(grad, x, z, *ctx.args)
        return gx, gz, None, None, None, None

    torch.library.register_autograd(fwd_name, backward, setup_context=_setup_context)
    torch.library.register_autograd(bwd_op, _no_double_backward, setup_context=_no_context)


def _no_context(ctx, inputs, output):
    pass


def _no_double_backward(ctx, *grads):
    raise RuntimeError("bregman_kernels: double backward (a derivative of the gradient, e.g. autograd.grad with "
                       "create_graph=True followed by another backward) is not implemented")


def _batched(info, in_dims, tensors):
    """vmap: every tensor argument with its batch dimension first (elementwise ops need nothing else)."""
    return [t.movedim(d, 0) if d is not None else t.expand(info.batch_size, *t.shape)
            for t, d in zip(tensors, in_dims)]


def register_vmap(fwd, bwd) -> None:
    """Batching rules for an elementwise op pair (no per-sample loop under torch.func.vmap)."""

    def fwd_rule(info, in_dims, x, z, act, param, lo, hi):
        x, z = _batched(info, in_dims[:2], (x, z))
        return fwd(x, z, act, param, lo, hi), 0

    def bwd_rule(info, in_dims, grad, x, z, act, param, lo, hi):
        grad, x, z = _batched(info, in_dims[:3], (grad, x, z))
        return bwd(grad, x, z, act, param, lo, hi), (0, 0)

    torch.library.register_vmap(fwd, fwd_rule)
    torch.library.register_vmap(bwd, bwd_rule)


def define_family(family: str) -> tuple:
    """Define the schemas, fake implementations and autograd of one family; returns (fwd, bwd) op handles."""
    fwd_name, bwd_name = f"{NAMESPACE}::{family}_fwd", f"{NAMESPACE}::{family}_bwd"
    torch.library.define(fwd_name, FWD_SCHEMA)
    torch.library.define(bwd_name, BWD_SCHEMA)
    torch.library.register_fake(fwd_name)(_fake_fwd)
    torch.library.register_fake(bwd_name)(_fake_bwd)
    ns = getattr(torch.ops, NAMESPACE)
    fwd, bwd = getattr(ns, f"{family}_fwd").default, getattr(ns, f"{family}_bwd").default
    register_autograd(fwd_name, bwd)
    register_vmap(fwd, bwd)
    return fwd, bwd


eager_fwd, eager_bwd = define_family("eager")
torch.library.register_kernel(eager_fwd, None, eager.forward)  # None: every device (CompositeExplicitAutograd)
torch.library.register_kernel(eager_bwd, None, eager.backward)

# Kernels for these come from the C++ extensions (csrc/), registered per dispatch key when they load.
fused_fwd, fused_bwd = define_family("fused")

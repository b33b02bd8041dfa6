"""Model level: one training step (forward, loss, backward, SGD step) of three Bregman networks.

    mlp        Bregman MLP, tanh, width 1024 × 3 hidden layers, batch 256, 10 classes
    spiral     the two-spiral net: 100 hidden layers of width 2, batch 16, one logit
    bresnet20  CIFAR Bregman ResNet-20, tanh, batch 128 of 3 × 32 × 32

Providers: ``bregmanet`` (the seed library's model: the eager composite), ``compiled`` (torch.compile of that
model's step), ``bk-<backend>`` (bregman_kernels.nn with the fused op on each available backend) and
``compiled-bk-<backend>`` (torch.compile of the bregman_kernels.nn step on the first fused backend) and, for the
two-spiral net, ``fused-mlp`` (bregman_kernels.nn.BregmanMLP with the whole hidden stack in one fused kernel
forward and one backward, ``fused=True``; the bk-* MLPs run layer by layer) and ``fused-mlp-flat`` (the same
kernels with all hidden parameters in one tensor, bregman_kernels.fused_mlp_flat.FlatMLP).
Skipped with the reason when bregman_kernels.nn or bregmanet cannot be imported. extra_info holds the bytes
autograd saves during the forward.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect

import numpy
import pytest
import torch
import torch.nn.functional as F

from benchmarks import common as C

DEV = C.device()
ACT = "tanh"
MODELS = ("mlp", "spiral", "bresnet20")


def _import(name: str):
    try:
        if name == "bregmanet" and not hasattr(numpy, "Inf"):
            numpy.Inf = numpy.inf  # bregmanet 1.0 still uses the alias numpy 2 removed
        return importlib.import_module(name), None
    except Exception as e:  # noqa: BLE001  (any import failure is a skip reason)
        return None, f"{name} is not importable: {type(e).__name__}: {e}"


BKNN, BKNN_WHY = _import("bregman_kernels.nn")
BREGMANET, BREGMANET_WHY = _import("bregmanet")


def _fused() -> list[str]:
    return [p[3:] for p in C.backend_providers() if p != "bk-eager"]


def providers() -> list[str]:
    fused = _fused()
    compiled_bk = [f"compiled-bk-{fused[0]}"] if fused else []
    return ["bregmanet", "compiled", *C.backend_providers(), *compiled_bk, "fused-mlp", "fused-mlp-flat"]


def _whole_net_fusion() -> bool:
    return BKNN is not None and "fused" in inspect.signature(BKNN.MLP).parameters


def _fused_mlp_skip(model: str, provider: str) -> str | None:
    if not provider.startswith("fused-mlp"):
        return None
    if model != "spiral":
        return "the whole-network fused MLP is for narrow nets (the two-spiral net)"
    if not _whole_net_fusion():
        return "bregman_kernels.nn.BregmanMLP has no fused (whole-network) path"
    from bregman_kernels import fused_mlp

    if provider == "fused-mlp-flat":
        if importlib.util.find_spec("bregman_kernels.fused_mlp_flat") is None:
            return "bregman_kernels.fused_mlp_flat is not there"
        importlib.import_module("bregman_kernels.fused_mlp_flat")  # registers its kernels
        key = "CPU" if DEV.type == "cpu" else "CUDA"
        if not torch._C._dispatch_has_kernel_for_dispatch_key("bregman_kernels::mlp_flat_fwd", key):
            return f"no {key} kernel for the flat fused MLP"
    net = BKNN.MLP(ACT, "bregman", hidden_dim=[2] * 100, input_dim=2, output_dim=1, fused=True)
    return fused_mlp.why_not_fused(net, _batch(model)[0].to(DEV))


def _build(model: str, provider: str) -> torch.nn.Module:
    """The network of ``model`` for ``provider`` (bregmanet's for the baselines, bregman_kernels.nn's else)."""
    seed_lib = provider in ("bregmanet", "compiled")
    lib = BREGMANET if seed_lib else BKNN
    if seed_lib:
        kw = {}
    elif provider.startswith("fused-mlp"):
        kw = {"fused": True}
    else:
        kw = {"backend": provider.split("bk-", 1)[1]}
        if model != "bresnet20" and _whole_net_fusion():
            kw["fused"] = False
    if model == "mlp":
        return lib.MLP(ACT, "bregman", hidden_dim=[1024] * 3, input_dim=1024, output_dim=10, **kw)
    if model == "spiral":
        net = lib.MLP(ACT, "bregman", hidden_dim=[2] * 100, input_dim=2, output_dim=1, **kw)
        if provider == "fused-mlp-flat":
            from bregman_kernels.fused_mlp_flat import FlatMLP

            net = FlatMLP.from_model(net)
        return net
    return lib.bresnet20("bregman", ACT, 10, **kw)


def _batch(model: str):
    gen = torch.Generator().manual_seed(0)
    if model == "mlp":
        return torch.randn(256, 1024, generator=gen), torch.randint(0, 10, (256,), generator=gen)
    if model == "spiral":
        return torch.randn(16, 2, generator=gen), torch.randint(0, 2, (16, 1), generator=gen).float()
    return torch.randn(128, 3, 32, 32, generator=gen), torch.randint(0, 10, (128,), generator=gen)


def _loss(model: str, net: torch.nn.Module, xb, yb):
    out = net(xb)
    return F.binary_cross_entropy_with_logits(out, yb) if model == "spiral" else F.cross_entropy(out, yb)


def _compile_skip(model: str, provider: str) -> str | None:
    if provider.startswith("compiled") and model != "mlp" and not C.full_models():
        return "compiling this model's step takes minutes; BENCH_MODELS_FULL=1 runs it"
    return None


@pytest.mark.parametrize("provider", providers())
@pytest.mark.parametrize("model", MODELS)
def test_train_step(benchmark, model, provider):
    if BKNN is None:
        pytest.skip(BKNN_WHY)
    if BREGMANET is None and provider in ("bregmanet", "compiled"):
        pytest.skip(BREGMANET_WHY)
    why = _compile_skip(model, provider) or _fused_mlp_skip(model, provider)
    if why:
        pytest.skip(why)
    benchmark.group = f"model-{model}"
    torch.manual_seed(0)
    net = _build(model, provider).to(DEV)
    xb, yb = (t.to(DEV) for t in _batch(model))
    opt = torch.optim.SGD(net.parameters(), lr=1e-3)
    loss_fn = lambda: _loss(model, net, xb, yb)  # noqa: E731
    if provider.startswith("compiled"):
        loss_fn = torch.compile(loss_fn)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn()
        loss.backward()
        opt.step()
        return loss

    budget = (0.3 if C.quick() else 0.5) if C.on_gpu() else (3.0 if model == "bresnet20" else 1.5)
    C.run_benchmark(benchmark, step, DEV, budget, min_rounds=2 if model == "bresnet20" and not C.on_gpu() else 3,
                    round_s=5e-3)
    saved, _ = C.saved_bytes(loss_fn)
    benchmark.extra_info.update(saved_bytes=saved, batch=xb.shape[0], **C.thread_info(DEV))

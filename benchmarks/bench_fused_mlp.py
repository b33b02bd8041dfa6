"""The two-spiral net, one training step (forward, cross-entropy, backward, SGD step), side by side:

    bregmanet   the seed library's eager MLP (bregmanet.MLP)
    layers      bregman_kernels.nn.BregmanMLP, layer by layer (fused=False; the fused elementwise op per layer)
    fused       bregman_kernels.nn.BregmanMLP, whole hidden stack in one fused kernel forward and backward
    flat        fused, with the hidden parameters stored as one tensor (bregman_kernels.fused_mlp_flat.FlatMLP
                built from the same BregmanMLP): one leaf for autograd and one tensor for SGD instead of 200
    floor       the same step with the hidden stack replaced by an autograd node that computes nothing (its
                backward hands out ready-made gradients): what autograd and SGD alone cost for the 202
                parameter tensors, the bound on any implementation that keeps bregmanet's parameters
    fused-step  FlatMLP.train_step: the whole step's loss and gradients in one C++ op (mlp_flat_ce_grad), no
                autograd engine, then the optimizer's step
    torch-floor a single nn.Linear(2, 2) with F.cross_entropy, backward and SGD: the cost of one autograd step
                of the smallest net, the bound on any implementation that runs the autograd engine

Net: atan, 100 hidden layers of width 2, input 2, 2 logits, batch 16, fp32 (the paper's toy experiment). Optimizer:
SGD, with foreach (one multi-tensor update) for the nets of 202 parameter tensors and the plain per-tensor loop
for those of 2–3 (each its faster choice).

    pytest benchmarks/bench_fused_mlp.py --benchmark-only          # pytest-benchmark table
    python benchmarks/bench_fused_mlp.py [--threads N] [--rounds R] # medians and ratios in one run

Torch runs single-threaded by default (BENCH_THREADS overrides): a batch of 16 is one tile of the fused kernel, and
on a small shared machine OpenMP wake-ups of the other ops cost more than the whole step.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy
import pytest
import torch
import torch.nn.functional as F

DEPTH, WIDTH, BATCH, ACT = 100, 2, 16, "atan"
PROVIDERS = ("bregmanet", "layers", "fused", "flat", "floor", "fused-step", "torch-floor")
FAST = ("fused", "flat", "floor", "fused-step", "torch-floor")


def _threads() -> int:
    return int(os.environ.get("BENCH_THREADS", "1"))


def _bregmanet():
    if not hasattr(numpy, "Inf"):
        numpy.Inf = numpy.inf  # bregmanet 1.0 uses the alias numpy 2 removed
    import bregmanet

    return bregmanet


def build(provider: str, seed: int = 0) -> torch.nn.Module:
    """The two-spiral net of ``provider``."""
    torch.manual_seed(seed)
    if provider == "torch-floor":
        return torch.nn.Linear(2, 2)
    kw = dict(hidden_dim=[WIDTH] * DEPTH, input_dim=2, output_dim=2)
    if provider == "bregmanet":
        return _bregmanet().MLP(activation=ACT, version="bregman", **kw)
    from bregman_kernels import fused_mlp
    from bregman_kernels.nn import BregmanMLP

    model = BregmanMLP(ACT, "bregman", fused=provider != "layers", **kw)
    if provider == "floor":
        model.forward = _floor_forward(model)
    if provider in ("flat", "fused-step"):
        from bregman_kernels.fused_mlp_flat import FlatMLP

        model = FlatMLP.from_model(model)
    if provider == "fused":
        assert fused_mlp.use_fused(model, torch.zeros(BATCH, 2)), "the fused path does not run here"
    return model


class _NoWork(torch.autograd.Function):
    """h_L = x (no work); backward: gradients prepared in the forward (one fresh tensor per parameter)."""

    @staticmethod
    def forward(ctx, x, *params):
        ctx.grads = [torch.zeros_like(p) for p in params]
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        grads, ctx.grads = ctx.grads, None
        return None, *grads


def _floor_forward(model):
    hidden = [p for n, p in model.named_parameters() if not n.startswith("output.")]
    return lambda x: model.output(_NoWork.apply(x, *hidden))


def make_step(provider: str):
    """A closure running one training step of ``provider``'s net on a fixed batch."""
    model = build(provider)
    opt = torch.optim.SGD(model.parameters(), lr=1e-2, foreach=len(list(model.parameters())) > 8)
    g = torch.Generator().manual_seed(1)
    x = torch.rand(BATCH, 2, generator=g) * 3.14 - 1.57  # inside atan's range, as the job's data
    y = torch.randint(0, 2, (BATCH,), generator=g)
    if provider == "fused-step":
        return lambda: model.train_step(x, y, opt)

    def step():
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()

    return step


def _skip_reason(provider: str) -> str | None:
    try:
        make_step(provider)()
    except Exception as e:  # noqa: BLE001  (any failure to build or run is the skip reason)
        return f"{provider}: {type(e).__name__}: {e}"
    return None


@pytest.mark.parametrize("provider", PROVIDERS)
def test_two_spiral_step(benchmark, provider):
    why = _skip_reason(provider)
    if why:
        pytest.skip(why)
    threads = torch.get_num_threads()
    torch.set_num_threads(_threads())
    try:
        step = make_step(provider)
        benchmark.group = "two-spiral training step"
        benchmark.extra_info.update(depth=DEPTH, width=WIDTH, batch=BATCH, activation=ACT, threads=_threads())
        rounds = 300 if provider in FAST else 20
        benchmark.pedantic(step, rounds=rounds, warmup_rounds=3)
    finally:
        torch.set_num_threads(threads)


def median_ms(step, rounds: int) -> float:
    """Median wall time of ``step`` in ms over ``rounds`` calls (after warm-up)."""
    for _ in range(3):
        step()
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    return 1e3 * statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=_threads())
    ap.add_argument("--rounds", type=int, default=30, help="rounds of the slow providers (the others: 100×)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    ms = {}
    for p in PROVIDERS:
        why = _skip_reason(p)
        if why:
            print(f"{p:10s} skipped ({why})")
            continue
        ms[p] = median_ms(make_step(p), args.rounds * (100 if p in FAST else 1))
        print(f"{p:11s} {ms[p]:9.3f} ms per step")
    for base in FAST:
        print(f"{base:11s}" + "".join(f"  {ms[p] / ms[base]:7.1f}x vs {p}" for p in ("bregmanet", "layers")
                                      if base in ms and p in ms))
    try:
        print(f"load average: {os.getloadavg()}, threads: {args.threads}")
    except OSError:
        pass


if __name__ == "__main__":
    main()

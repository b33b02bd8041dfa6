"""Two-spiral job: standard vs Bregman MLPs of width 2 at several depths (the paper's toy experiment).

    python -m bregman_kernels.jobs.two_spiral --quick            # a few seconds on a laptop CPU
    python -m bregman_kernels.jobs.two_spiral                    # the seed's settings: SGD 1e-2, batch 16, 500 epochs

Data as the seed library makes it: two noisy spirals (1000 train / 500 test points), divided by the ceiling of
their largest coordinate and mapped affinely into [−1.57, 1.57]² (inside atan's range (−π/2, π/2)).
Writes ``results.json``, ``loss.png`` and ``regions.png`` into ``--out``.

``--impl`` picks what trains (the same data, order and optimizer for all):
    fused-step  FlatMLP.train_step: forward, cross-entropy, backward in one C++ op, no autograd engine (default)
    flat        FlatMLP (hidden parameters in one tensor, fused kernels) with autograd
    module      bregman_kernels.nn.BregmanMLP with autograd (fused hidden stack when it applies, see --backend)
    bregmanet   the seed library's eager MLP (pip install bregmanet), for comparisons
The default, auto, is fused-step where it can run (C++ extension built, --backend auto, narrow widths), else module.
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from . import common

VALUE_RANGE = (-1.57, 1.57)
QUICK = {"epochs": 100}
IMPLS = ("auto", "fused-step", "flat", "module", "bregmanet")


def make_spirals(num_samples: int, generator: torch.Generator, value_range=VALUE_RANGE):
    """(x, y): ``num_samples`` points of two noisy spirals, x of shape (n, 2) in ``value_range``², y in {0, 1}."""
    n = num_samples // 2
    # θ = 2π·√U spreads points evenly along the arm; radius r = ±(2θ + π); unit Gaussian noise
    theta = torch.sqrt(torch.rand(n, generator=generator)) * 2 * math.pi
    arms = []
    for sign in (1.0, -1.0):
        r = sign * (2 * theta + math.pi)
        arm = torch.stack((torch.cos(theta) * r, torch.sin(theta) * r), 1)
        arms.append(arm + torch.randn(n, 2, generator=generator))
    x = torch.cat(arms)
    y = torch.cat((torch.zeros(n), torch.ones(n))).long()
    perm = torch.randperm(2 * n, generator=generator)
    # x / ceil(max |x|) lies in [−1, 1]; then lo + (hi − lo)·(x + 1)/2
    x = x[perm] / x.abs().max().ceil()
    lo, hi = value_range
    return lo + 0.5 * (hi - lo) * (x + 1), y[perm]


def build_model(version: str, depth: int, activation: str, backend: str, init: str = "random"):
    from ..nn import BregmanMLP

    return common.call_with_backend(BregmanMLP, backend, activation=activation, version=version,
                                    hidden_dim=[2] * depth, input_dim=2, output_dim=2, init=init, weight_norm=False)


def _bregmanet_mlp(version: str, depth: int, activation: str):
    try:
        import numpy

        if not hasattr(numpy, "Inf"):
            numpy.Inf = numpy.inf  # bregmanet 1.0 uses the alias numpy 2 removed
        import bregmanet
    except ImportError as e:
        raise RuntimeError(f"--impl bregmanet needs the seed library (pip install bregmanet): {e}") from e
    return bregmanet.MLP(activation=activation, version=version, hidden_dim=[2] * depth, input_dim=2, output_dim=2)


def why_no_fused_step(model, backend: str, device: torch.device) -> str | None:
    """None when FlatMLP.train_step can train ``model`` (a BregmanMLP) on ``device``, else why not."""
    from .. import fused_mlp

    if backend != "auto":
        return f"--backend {backend} asks for the layer-by-layer elementwise kernels"
    if max(model.num_neurons) > fused_mlp.MAX_WIDTH:
        return f"a hidden layer is wider than {fused_mlp.MAX_WIDTH}"
    return fused_mlp._why_no_kernel("cpu") or (device.type != "cpu" and fused_mlp._why_no_kernel(device.type)) or None


def make_model(impl: str, version: str, depth: int, activation: str, backend: str, device: torch.device):
    """(model on ``device``, the implementation that trains it) for ``--impl impl`` ("auto" resolved)."""
    if impl == "bregmanet":
        return _bregmanet_mlp(version, depth, activation).to(device), impl
    model = build_model(version, depth, activation, backend).to(device)
    if impl in ("auto", "fused-step", "flat"):
        why = why_no_fused_step(model, backend, device)
        if why is None:
            from ..fused_mlp_flat import FlatMLP

            return FlatMLP.from_model(model), "fused-step" if impl == "auto" else impl
        if impl != "auto":
            raise RuntimeError(f"--impl {impl} cannot run: {why}")
        print(f"the fused training step cannot run ({why}): training the module")
    return model, "module"


@torch.no_grad()
def _grid_predictions(model, value_range, steps: int = 200):
    lo, hi = value_range
    g = torch.linspace(lo, hi, steps)
    xx, yy = torch.meshgrid(g, g, indexing="xy")
    pts = torch.stack((xx.reshape(-1), yy.reshape(-1)), 1)
    dev = next(model.parameters()).device
    model.eval()
    return xx, yy, model(pts.to(dev)).argmax(1).reshape(steps, steps).cpu()


def plot(runs, models, x_test, y_test, out, value_range=VALUE_RANGE):
    """loss.png: training loss per epoch of every model; regions.png: decision regions with the test points."""
    plt = common.pyplot()
    if plt is None:
        return []
    fig, ax = plt.subplots(figsize=(6, 4))
    for r in runs:
        ax.plot(range(1, len(r["train_loss"]) + 1), r["train_loss"], label=r["name"])
    ax.set(xlabel="epoch", ylabel="training loss (cross-entropy)", yscale="log", title="Two spirals")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "loss.png", dpi=120)
    plt.close(fig)
    fig, axes = plt.subplots(1, len(runs), figsize=(3.2 * len(runs), 3.6), squeeze=False, layout="constrained")
    for ax, r, model in zip(axes[0], runs, models, strict=True):
        xx, yy, pred = _grid_predictions(model, value_range)
        ax.contourf(xx, yy, pred, levels=[-0.5, 0.5, 1.5], colors=["#9ecae1", "#fdae6b"], alpha=0.8)
        xt = x_test.cpu()
        ax.scatter(xt[:, 0], xt[:, 1], c=y_test.cpu(), cmap="coolwarm", s=4, linewidths=0)
        ax.set_title(f"{r['name']}\ntest acc {100 * r['test_accuracy']:.1f}%", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_aspect("equal")
    fig.savefig(out / "regions.png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    return ["loss.png", "regions.png"]


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m bregman_kernels.jobs.two_spiral", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help=f"short run for a laptop CPU: {QUICK['epochs']} epochs (other flags still apply)")
    p.add_argument("--epochs", type=int, default=None,
                   help=f"training epochs (default 500; --quick: {QUICK['epochs']})")
    p.add_argument("--depths", type=int, nargs="+", default=[3, 100], help="hidden layers of width 2 (default 3 100)")
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--train-size", type=int, default=1000)
    p.add_argument("--test-size", type=int, default=500)
    p.add_argument("--impl", choices=IMPLS, default="auto",
                   help="what trains: auto (default: fused-step where it runs, else module), fused-step, flat, module, "
                        "bregmanet (the seed library)")
    common.add_toy_job_args(p, activation="atan", out="runs/two_spiral")
    args = p.parse_args(argv)
    if args.epochs is None:
        args.epochs = QUICK["epochs"] if args.quick else 500
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    out, device, gen = common.start_job(args)
    x_train, y_train = make_spirals(args.train_size, gen)
    x_test, y_test = make_spirals(args.test_size, gen)
    x_train, y_train, x_test, y_test = (t.to(device) for t in (x_train, y_train, x_test, y_test))
    runs, models = [], []
    for depth in args.depths:
        for version in args.versions:
            name = f"{version}-{args.activation}-{depth}"
            torch.manual_seed(args.seed)
            model, impl = make_model(args.impl, version, depth, args.activation, args.backend, device)
            t0 = time.perf_counter()
            losses = common.fit_classifier(model, x_train, y_train, epochs=args.epochs, lr=args.lr,
                                           batch_size=args.batch_size, desc=f"{name:>20}",
                                           generator=torch.Generator().manual_seed(args.seed + 1),
                                           fused_step=impl == "fused-step")
            seconds = time.perf_counter() - t0
            path = {"fused-step": "fused", "flat": "fused", "bregmanet": "layer by layer"}.get(impl) or \
                common.mlp_path(model, x_train[:args.batch_size])
            run = {"name": name, "version": version, "depth": depth, "impl": impl,
                   "parameters": common.count_parameters(model), "hidden_layers": path,
                   "train_accuracy": common.accuracy(model, x_train, y_train),
                   "test_accuracy": common.accuracy(model, x_test, y_test),
                   "final_train_loss": losses[-1], "seconds": round(seconds, 2), "train_loss": losses}
            print(f"{name:>20}: train acc {100 * run['train_accuracy']:6.2f}%  test acc "
                  f"{100 * run['test_accuracy']:6.2f}%  ({seconds:.0f} s)")
            runs.append(run)
            models.append(model)
    files = [] if args.no_plots else plot(runs, models, x_test, y_test, out)
    return common.write_results(out, "two_spiral", args, device, runs, files, value_range=list(VALUE_RANGE))


if __name__ == "__main__":
    main()

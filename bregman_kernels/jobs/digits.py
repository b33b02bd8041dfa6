"""Digits job: standard vs Bregman MLPs on the 8×8 handwritten digits bundled with the package (no download).

    python -m bregman_kernels.jobs.digits

1797 images with pixels in 0..16 (the UCI optdigits test set, as shipped by scikit-learn; see data/README.md),
split at random into train and test sets. Pixels are mapped affinely into the activation's range shrunk by eps
(sigmoid: [1e-5, 1 − 1e-5]), the same input for both versions. The first hidden layer changes width (64 → first
hidden width), so the Bregman MLP also trains a simplex-constrained offset map there. Writes ``results.json``
(and ``loss.png`` when matplotlib is installed) into ``--out``.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch

from . import common

DATA_FILE = Path(__file__).with_name("data") / "digits.npz"
EPS = 1e-5


def load_digits() -> tuple[torch.Tensor, torch.Tensor]:
    """(images, labels): uint8 images of shape (1797, 8, 8) with values 0..16 and int64 labels 0..9."""
    with np.load(DATA_FILE) as f:
        return torch.from_numpy(f["images"].copy()), torch.from_numpy(f["labels"].astype(np.int64))


def scale_into_range(images: torch.Tensor, activation: str) -> torch.Tensor:
    """Flattened float32 pixels mapped from [0, 16] onto [lo + eps, hi − eps], (lo, hi) the range of ρ
    (an unbounded side is replaced by 0 or 1: the map then targets [lo + eps, lo + 1 − eps])."""
    from .. import get_activation

    act = get_activation(activation)
    lo = act.lo if math.isfinite(act.lo) else 0.0
    hi = act.hi if math.isfinite(act.hi) else lo + 1.0
    # x ↦ (lo + eps) + (hi − lo − 2·eps)·x/16
    return (lo + EPS) + (hi - lo - 2 * EPS) * images.reshape(images.shape[0], -1).float() / 16.0


def split(n: int, test_fraction: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random (train indices, test indices) with round(n · test_fraction) test rows."""
    perm = torch.randperm(n, generator=generator)
    n_test = round(n * test_fraction)
    return perm[n_test:], perm[:n_test]


def build_model(version: str, activation: str, hidden: list[int], backend: str, init: str = "random"):
    from ..nn import BregmanMLP

    return common.call_with_backend(BregmanMLP, backend, activation=activation, version=version, hidden_dim=hidden,
                                    input_dim=64, output_dim=10, init=init, weight_norm=False)


def plot(runs, out: Path) -> list[str]:
    plt = common.pyplot()
    if plt is None:
        return []
    fig, ax = plt.subplots(figsize=(6, 4))
    for r in runs:
        ax.plot(range(1, len(r["train_loss"]) + 1), r["train_loss"],
                label=f"{r['name']} (test {100 * r['test_accuracy']:.1f}%)")
    ax.set(xlabel="epoch", ylabel="training loss (cross-entropy)", yscale="log", title="8×8 digits")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "loss.png", dpi=120)
    plt.close(fig)
    return ["loss.png"]


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m bregman_kernels.jobs.digits", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--hidden", type=int, nargs="+", default=[32, 32], help="hidden widths (default 32 32)")
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--test-fraction", type=float, default=0.25)
    common.add_toy_job_args(p, activation="sigmoid", out="runs/digits")
    return p.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    out, device, gen = common.start_job(args)
    images, labels = load_digits()
    x = scale_into_range(images, args.activation).to(device)
    y = labels.to(device)
    tr, te = split(x.shape[0], args.test_fraction, gen)
    tr, te = tr.to(device), te.to(device)
    runs = []
    for version in args.versions:
        name = f"{version}-{args.activation}-{'x'.join(map(str, args.hidden))}"
        torch.manual_seed(args.seed)
        model = build_model(version, args.activation, args.hidden, args.backend).to(device)
        t0 = time.perf_counter()
        losses = common.fit_classifier(model, x[tr], y[tr], epochs=args.epochs, lr=args.lr,
                                       momentum=args.momentum, batch_size=args.batch_size, desc=f"{name:>20}",
                                       generator=torch.Generator().manual_seed(args.seed + 1))
        seconds = time.perf_counter() - t0
        run = {"name": name, "version": version, "hidden": args.hidden, "parameters": common.count_parameters(model),
               "hidden_layers": common.mlp_path(model, x[tr[:args.batch_size]]),
               "train_accuracy": common.accuracy(model, x[tr], y[tr]),
               "test_accuracy": common.accuracy(model, x[te], y[te]),
               "final_train_loss": losses[-1], "seconds": round(seconds, 2), "train_loss": losses}
        print(f"{name:>20}: train acc {100 * run['train_accuracy']:6.2f}%  test acc "
              f"{100 * run['test_accuracy']:6.2f}%  ({seconds:.0f} s)")
        runs.append(run)
    files = [] if args.no_plots else plot(runs, out)
    return common.write_results(out, "digits", args, device, runs, files, train_size=int(tr.numel()),
                                test_size=int(te.numel()))


if __name__ == "__main__":
    main()

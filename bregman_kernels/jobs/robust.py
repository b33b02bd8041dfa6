"""Robust accuracy of a CIFAR-10 checkpoint: clean, ℓ∞-PGD and ℓ2-PGD accuracy on the test set.

    python -m bregman_kernels.jobs.robust --checkpoint runs/bresnet20-atan/checkpoint.pt --data DATA

Budgets are in pixel space before normalisation (images in [0, 1]); defaults ℓ∞ ε = 8/255 with step 2/255 and
ℓ2 ε = 0.5 with step 2.5·ε/steps, 10 steps, one random start. Writes ``robust.json`` next to the checkpoint
unless ``--out`` names another file.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from . import common
from .cifar import load_checkpoint
from .cifar_data import CifarMissing, build_network, load_cifar10, pixel_model, to_unit
from .pgd import NORMS, parse_fraction, pgd


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m bregman_kernels.jobs.robust", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="checkpoint.pt written by bregman_kernels.jobs.cifar")
    p.add_argument("--data", required=True, help="folder holding cifar-10-batches-py")
    p.add_argument("--norms", nargs="+", default=list(NORMS), choices=NORMS)
    p.add_argument("--linf-eps", type=parse_fraction, default=8 / 255, help="ℓ∞ budget, e.g. 8/255 (default)")
    p.add_argument("--linf-step", type=parse_fraction, default=2 / 255, help="ℓ∞ step size (default 2/255)")
    p.add_argument("--l2-eps", type=parse_fraction, default=0.5, help="ℓ2 budget (default 0.5)")
    p.add_argument("--l2-step", type=parse_fraction, default=None, help="ℓ2 step size (default 2.5·ε/steps)")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--no-random-start", action="store_true")
    p.add_argument("--batch-size", type=int, default=250)
    p.add_argument("--limit", type=int, default=None, help="attack the first N test images only")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--backend", default="auto", help="bregman_kernels backend (auto, eager, cpp, cuda, triton)")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", default=None, help="results file (default: robust.json beside the checkpoint)")
    return p.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    device = common.pick_device(args.device)
    ckpt = load_checkpoint(args.checkpoint, map_location=device)
    margs = ckpt["model_args"]
    net = build_network(margs["arch"], margs["version"], margs["activation"], margs["num_classes"], args.backend)
    net.load_state_dict(ckpt["model"])
    model = pixel_model(net).to(device).eval()
    try:
        images, labels = load_cifar10(args.data, train=False)
    except CifarMissing as e:
        raise SystemExit(f"error: {e}") from None
    if args.limit:
        images, labels = images[:args.limit], labels[:args.limit]
    budgets = {"linf": (args.linf_eps, args.linf_step),
               "l2": (args.l2_eps, args.l2_step if args.l2_step is not None else 2.5 * args.l2_eps / args.steps)}
    gen = torch.Generator(device=device).manual_seed(args.seed)
    clean = 0
    robust = dict.fromkeys(args.norms, 0)
    t0 = time.perf_counter()
    bar = common.Progress(-(-images.shape[0] // args.batch_size), "robust")
    for i in range(0, images.shape[0], args.batch_size):
        x = to_unit(images[i:i + args.batch_size].to(device))
        y = labels[i:i + args.batch_size].to(device)
        with torch.no_grad():
            clean += int((model(x).argmax(1) == y).sum())
        for norm in args.norms:
            eps, step = budgets[norm]
            _, ok = pgd(model, x, y, norm=norm, eps=eps, steps=args.steps, step_size=step,
                        rand_init=not args.no_random_start, generator=gen)
            robust[norm] += int(ok.sum())
        bar.update(1)
    bar.close()
    n = images.shape[0]
    result = {"job": "robust", "checkpoint": str(args.checkpoint), "model_args": margs, "epoch": ckpt["epoch"],
              "images": n, "clean_accuracy": clean / n, "steps": args.steps, "random_start": not args.no_random_start,
              "attacks": {m: {"eps": budgets[m][0], "step_size": budgets[m][1], "accuracy": robust[m] / n}
                          for m in args.norms},
              "seconds": round(time.perf_counter() - t0, 2), "device": str(device),
              "environment": common.environment()}
    print(f"{margs['arch']} {margs['version']} {margs['activation']} (epoch {ckpt['epoch']}), {n} test images: "
          f"clean {100 * result['clean_accuracy']:.2f}%"
          + "".join(f", {m} ε={budgets[m][0]:.4g} {100 * robust[m] / n:.2f}%" for m in args.norms))
    out = Path(args.out) if args.out else Path(args.checkpoint).with_name("robust.json")
    print(f"wrote {common.save_json(out, result)}")
    return result


if __name__ == "__main__":
    main()

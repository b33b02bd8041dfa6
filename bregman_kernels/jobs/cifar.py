"""CIFAR-10 ResNet job: BregmanResNet20 (any depth, activation, version by flag) with the seed's schedule.

    python -m bregman_kernels.jobs.cifar --data DATA [--download] --out runs/bresnet20-atan
    torchrun --nproc_per_node 4 -m bregman_kernels.jobs.cifar --data DATA --out runs/bresnet20-atan
    python -m bregman_kernels.jobs.cifar --data DATA --out runs/bresnet20-atan --resume   # after an interruption

Defaults: SGD lr 0.1, momentum 0.9, weight decay 1e-4, 182 epochs, lr ×0.1 at epochs 91 and 136, global batch 128
(split evenly across processes), random crop (padding 4) + horizontal flip. Under torchrun every process takes a
disjoint shard of each epoch's permutation (DistributedDataParallel; NCCL on GPUs, gloo on CPUs). After every
epoch the first process logs loss, accuracies and images/s, writes ``checkpoint.pt`` and ``results.json`` into
``--out``; ``--resume`` continues from that checkpoint.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F

from . import common
from .cifar_data import CifarMissing, augment, build_network, load_cifar10, pixel_model, to_unit

CHECKPOINT = "checkpoint.pt"
FORMAT = "bregman_kernels.jobs.cifar/1"
MODEL_KEYS = ("arch", "version", "activation", "num_classes")


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m bregman_kernels.jobs.cifar", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="folder holding (or to receive) cifar-10-batches-py")
    p.add_argument("--download", action="store_true", help="fetch CIFAR-10 through torchvision when missing")
    p.add_argument("--out", default="runs/cifar", help="checkpoint and results folder (default %(default)s)")
    p.add_argument("--arch", default="bresnet20")
    p.add_argument("--version", default="bregman", choices=["bregman", "bregman_bis", "standard"])
    p.add_argument("--activation", default="atan")
    p.add_argument("--num-classes", type=int, default=10)
    p.add_argument("--epochs", type=int, default=182)
    p.add_argument("--batch-size", type=int, default=128, help="global batch, split across processes")
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--milestones", type=int, nargs="*", default=[91, 136])
    p.add_argument("--gamma", type=float, default=0.1)
    p.add_argument("--amp", default="off", choices=["off", "bf16", "fp16"], help="autocast dtype (default off)")
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--compile", action="store_true", help="torch.compile the network")
    p.add_argument("--sync-bn", action="store_true", help="synchronise BatchNorm statistics across processes")
    p.add_argument("--resume", action="store_true", help=f"continue from OUT/{CHECKPOINT} when it exists")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--backend", default="auto", help="bregman_kernels backend (auto, eager, cpp, cuda, triton)")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cuda or cpu")
    p.add_argument("--eval-batch-size", type=int, default=500)
    p.add_argument("--limit-train-batches", type=int, default=None, help="at most this many batches per epoch")
    p.add_argument("--limit-test-images", type=int, default=None, help="evaluate on the first N test images")
    return p.parse_args(argv)


def setup_distributed(device_arg: str) -> tuple[int, int, torch.device]:
    """(rank, world size, device); joins the process group when started by torchrun (WORLD_SIZE > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    device = common.pick_device(device_arg)
    if device.type == "cuda":
        device = torch.device("cuda", local if world > 1 else (device.index or 0))
        torch.cuda.set_device(device)
    if world > 1:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return rank, world, device


def _autocast(device: torch.device, amp: str):
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp)
    return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)


def _all_sum(values: list[float], device: torch.device, world: int) -> list[float]:
    t = torch.tensor(values, dtype=torch.float64, device=device)
    if world > 1:
        dist.all_reduce(t)
    return t.tolist()


@torch.no_grad()
def evaluate(model, images, labels, *, device, rank, world, batch_size, amp, channels_last) -> tuple[float, int]:
    """(accuracy, images) on this process's shard of the test set, summed over processes."""
    model.eval()
    idx = torch.arange(rank, images.shape[0], world)
    correct = 0.0
    for i in range(0, idx.numel(), batch_size):
        j = idx[i:i + batch_size]
        x = to_unit(images[j].to(device, non_blocking=True))
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with _autocast(device, amp):
            correct += float((model(x).argmax(1) == labels[j].to(device)).sum())
    correct, count = _all_sum([correct, float(idx.numel())], device, world)
    return correct / max(count, 1), int(count)


def save_checkpoint(path: Path, state: dict) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | Path, map_location="cpu") -> dict:
    """A checkpoint written by this job (tensors, numbers, strings and lists only: loaded weights_only)."""
    ckpt = torch.load(path, map_location=map_location, weights_only=True)
    if ckpt.get("format") != FORMAT:
        raise ValueError(f"{path} is not a checkpoint of bregman_kernels.jobs.cifar")
    return ckpt


def main(argv=None) -> dict | None:
    args = parse_args(argv)
    rank, world, device = setup_distributed(args.device)
    try:
        return train(args, rank, world, device)
    except CifarMissing as e:
        raise SystemExit(f"error: {e}") from None
    finally:
        if world > 1:
            dist.destroy_process_group()


def train(args, rank: int, world: int, device: torch.device) -> dict | None:
    log = print if rank == 0 else (lambda *a, **k: None)
    out = Path(args.out)
    if args.batch_size % world:
        raise ValueError(f"--batch-size {args.batch_size} is not divisible by the {world} processes")
    local_bs = args.batch_size // world
    torch.manual_seed(args.seed)
    if args.download and rank == 0:
        load_cifar10(args.data, train=True, download=True)
    if args.download and world > 1:
        dist.barrier()  # the other processes read what the first one downloaded
    train_x, train_y = load_cifar10(args.data, train=True)
    test_x, test_y = load_cifar10(args.data, train=False)
    if args.limit_test_images:
        test_x, test_y = test_x[:args.limit_test_images], test_y[:args.limit_test_images]
    on_dev = device.type == "cuda"  # whole uint8 dataset on the GPU (150 MB): crops and flips run there
    train_x, train_y = (train_x.to(device), train_y.to(device)) if on_dev else (train_x, train_y)

    model_args = {k: getattr(args, k) for k in MODEL_KEYS}
    net = build_network(args.arch, args.version, args.activation, args.num_classes, args.backend).to(device)
    if args.channels_last:
        net = net.to(memory_format=torch.channels_last)
    if args.sync_bn and world > 1:
        net = torch.nn.SyncBatchNorm.convert_sync_batchnorm(net)
    opt = torch.optim.SGD(net.parameters(), lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=args.milestones, gamma=args.gamma)
    scaler = torch.amp.GradScaler(device.type, enabled=args.amp == "fp16")
    history, start = [], 0
    ckpt_path = out / CHECKPOINT
    if args.resume and ckpt_path.is_file():
        ckpt = load_checkpoint(ckpt_path, map_location=device)
        if ckpt["model_args"] != model_args:
            raise ValueError(f"{ckpt_path} holds {ckpt['model_args']}, not the requested {model_args}")
        net.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        scaler.load_state_dict(ckpt["scaler"])
        history, start = ckpt["history"], ckpt["epoch"]
        log(f"resumed from {ckpt_path} after epoch {start}")
    elif args.resume:
        log(f"--resume: no {ckpt_path} yet, starting from scratch")

    model = pixel_model(net).to(device)
    if args.compile:
        model = torch.compile(model)
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if on_dev else None)
    n = train_x.shape[0]
    per_rank = n // world
    steps = -(-per_rank // local_bs)
    if args.limit_train_batches:
        steps = min(steps, args.limit_train_batches)
    log(f"{args.arch} {args.version} {args.activation}: {common.count_parameters(net)} parameters, {world} "
        f"process(es) on {device.type}, {steps} steps of {local_bs}×{world} images per epoch, amp {args.amp}")
    result = None
    for epoch in range(start, args.epochs):
        # the epoch's data order and augmentation depend only on (seed, epoch, rank): resumed runs replay them
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(args.seed * 100_003 + epoch))
        shard = perm[rank * per_rank:(rank + 1) * per_rank]
        torch.manual_seed(args.seed * 100_003 + epoch * 1_009 + rank)
        model.train()
        bar = common.Progress(steps, f"epoch {epoch + 1}/{args.epochs}", every=0.25) if rank == 0 else None
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        correct = torch.zeros((), dtype=torch.float64, device=device)
        seen = 0
        if on_dev:
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        for s in range(steps):
            j = shard[s * local_bs:(s + 1) * local_bs]
            jd = j.to(device) if on_dev else j
            x = augment(train_x[jd].to(device, non_blocking=True))
            y = train_y[jd].to(device, non_blocking=True)
            if args.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with _autocast(device, args.amp):
                logits = model(x)
                loss = F.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            loss_sum += loss.detach().double() * y.numel()
            correct += (logits.detach().argmax(1) == y).sum()
            seen += y.numel()
            if bar is not None:
                bar.update(1)
        if on_dev:
            torch.cuda.synchronize(device)
        seconds = time.perf_counter() - t0
        if bar is not None:
            bar.close()
        lr = opt.param_groups[0]["lr"]
        sched.step()
        loss_total, correct_total, seen_total = _all_sum([float(loss_sum), float(correct), float(seen)], device, world)
        test_acc, test_n = evaluate(model, test_x, test_y, device=device, rank=rank, world=world,
                                    batch_size=args.eval_batch_size, amp=args.amp, channels_last=args.channels_last)
        row = {"epoch": epoch + 1, "lr": lr, "train_loss": loss_total / seen_total,
               "train_accuracy": correct_total / seen_total, "test_accuracy": test_acc, "test_images": test_n,
               "images_per_s": seen_total / seconds, "seconds": round(seconds, 3)}
        history.append(row)
        log(f"epoch {epoch + 1}/{args.epochs}: loss {row['train_loss']:.4f} train acc "
            f"{100 * row['train_accuracy']:.2f}% test acc {100 * test_acc:.2f}% | {row['images_per_s']:.0f} images/s "
            f"({seconds:.1f} s) lr {lr:g}")
        if rank == 0:
            out.mkdir(parents=True, exist_ok=True)
            save_checkpoint(ckpt_path, {
                "format": FORMAT, "epoch": epoch + 1, "model_args": model_args, "model": net.state_dict(),
                "optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "scaler": scaler.state_dict(),
                "history": history, "config": dict(vars(args))})
            result = {"job": "cifar", "config": vars(args), "world_size": world, "device": str(device),
                      "backend": common.resolved_backend(args.backend, device),
                      "environment": common.environment(), "epochs_done": epoch + 1, "test_accuracy": test_acc,
                      "best_test_accuracy": max(r["test_accuracy"] for r in history), "history": history}
            common.save_json(out / "results.json", result)
    if start >= args.epochs:
        log(f"{ckpt_path} already holds {start} epochs (--epochs {args.epochs}): nothing to train")
    if rank == 0 and result is not None:
        log(f"final test accuracy {100 * result['test_accuracy']:.2f}%; wrote {ckpt_path} and {out / 'results.json'}")
    return result


if __name__ == "__main__":
    main()

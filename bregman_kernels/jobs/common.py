"""Helpers shared by the training jobs: seeding, devices, progress output, results files, optional plots and a
plain minibatch SGD loop for in-memory tabular data."""

from __future__ import annotations

import inspect
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F


def add_toy_job_args(p, activation: str, out: str) -> None:
    """Flags shared by the CPU toy jobs (two-spiral, digits): model versions, activation, seed, backend, device,
    threads, output folder, plots."""
    p.add_argument("--versions", nargs="+", default=["standard", "bregman"], choices=["standard", "bregman"])
    p.add_argument("--activation", default=activation)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--backend", default="auto", help="bregman_kernels backend (auto, eager, cpp, cuda, triton)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda or auto")
    p.add_argument("--threads", type=int, default=1, help="CPU threads for torch (default 1; 0: torch's default)")
    p.add_argument("--out", default=out, help="output folder (default %(default)s)")
    p.add_argument("--no-plots", action="store_true")


def seed_everything(seed: int) -> torch.Generator:
    """Seed torch's global generators and return a CPU generator seeded with ``seed`` for data order."""
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def set_threads(n: int) -> None:
    """Use ``n`` CPU threads for torch's intra-op work (0: keep torch's default). The toy jobs' layers are a few
    numbers wide, where extra threads only add synchronisation (on a busy 2-core machine, a 15× slowdown)."""
    if n > 0:
        torch.set_num_threads(n)


def pick_device(name: str) -> torch.device:
    """``"auto"`` → the current CUDA device when one exists, else CPU; anything else is passed to torch."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"--device {name}: torch sees no CUDA GPU here (torch {torch.__version__}, "
                         f"CUDA build {torch.version.cuda}); use --device cpu or auto")
    return device


def environment() -> dict:
    """What the numbers in a results file were measured with."""
    env = {"torch": torch.__version__, "python": platform.python_version(),
           "system": f"{platform.system()} {platform.machine()}", "cpus": os.cpu_count(),
           "torch_threads": torch.get_num_threads()}
    if torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name()
    return env


def resolved_backend(name: str, device: torch.device) -> str:
    """The kernel backend that request ``name`` runs on ``device`` (or why none can)."""
    from ..backends import resolve

    try:
        return resolve(name, torch.device(device).type)[0]
    except Exception as e:  # noqa: BLE001  (reported in the results, raised again when a model runs)
        return f"unavailable: {e}"


def mlp_path(model, x: torch.Tensor) -> str:
    """"fused" when the MLP's forward runs all its hidden layers in one fused kernel for batches like ``x``,
    else "layer by layer"."""
    try:
        from ..fused_mlp import use_fused

        return "fused" if use_fused(model, x) else "layer by layer"
    except (ImportError, RuntimeError, AttributeError):
        return "layer by layer"


def save_json(path: str | os.PathLike, obj: dict) -> Path:
    """Write ``obj`` as indented JSON (parent folders created, replaced atomically)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    os.replace(tmp, path)
    return path


def start_job(args) -> tuple[Path, torch.device, torch.Generator]:
    """A toy job's set-up from its flags: the output folder (created), the device, torch's thread count and the
    seeded generator."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    device = pick_device(args.device)
    set_threads(args.threads)
    return out, device, seed_everything(args.seed)


def write_results(out: Path, job: str, args, device: torch.device, runs: list, files: list, **extra) -> dict:
    """Write ``out/results.json`` of a toy job — its flags (but ``--out``), ``extra`` fields, device, backend,
    environment, runs and plot files — print where it went, and return it."""
    result = {"job": job, "config": {k: v for k, v in vars(args).items() if k != "out"}, **extra,
              "device": str(device), "backend": resolved_backend(args.backend, device), "environment": environment(),
              "runs": runs, "plots": files}
    path = save_json(out / "results.json", result)
    print(f"wrote {path}" + "".join(f", {out / f}" for f in files))
    return result


def pyplot():
    """matplotlib.pyplot on the non-interactive Agg backend, or None (with a message) when matplotlib is absent."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: skipping plots (pip install matplotlib to get them)")
        return None
    return plt


class Progress:
    """A one-line text progress bar on a terminal; on a pipe, one line every ``every`` fraction of the work."""

    def __init__(self, total: int, desc: str, stream=None, every: float = 0.1):
        self.total, self.desc, self.stream = max(int(total), 1), desc, stream or sys.stdout
        self.tty = self.stream.isatty()
        self.step, self.done, self.t0 = max(1, round(self.total * every)), 0, time.perf_counter()

    def update(self, n: int = 1, **metrics) -> None:
        self.done += n
        if not self.tty and self.done % self.step and self.done < self.total:
            return
        frac = self.done / self.total
        bar = "#" * int(24 * frac) + "-" * (24 - int(24 * frac))
        info = " ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items())
        line = f"{self.desc} [{bar}] {self.done}/{self.total} {time.perf_counter() - self.t0:.0f}s {info}"
        self.stream.write(("\r" + line.ljust(100)) if self.tty else line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def call_with_backend(factory, backend: str, **kwargs):
    """``factory(**kwargs, backend=backend)`` when it takes ``backend``; otherwise the backend is requested through
    the ``BREGMAN_KERNELS_BACKEND`` environment variable that backend ``"auto"`` honours."""
    params = inspect.signature(factory).parameters.values()
    if any(p.name == "backend" or p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return factory(**kwargs, backend=backend)
    if backend != "auto":
        os.environ["BREGMAN_KERNELS_BACKEND"] = backend
    return factory(**kwargs)


def project_(model: torch.nn.Module) -> None:
    """Re-impose the models' parameter constraints (simplex offset maps) after an optimizer step, if any."""
    fn = getattr(model, "project_", None)
    if callable(fn):
        fn()


def fit_classifier(model, x, y, *, epochs: int, lr: float, batch_size: int, generator: torch.Generator,
                   momentum: float = 0.0, weight_decay: float = 0.0, desc: str = "train",
                   fused_step: bool = False) -> list[float]:
    """Minibatch SGD with cross-entropy on in-memory tensors (reshuffled each epoch); returns the mean training
    loss of every epoch. The model is built once by the caller; this loop only calls it. ``fused_step``: train with
    ``model.train_step(x, y, optimizer)`` (a :class:`bregman_kernels.fused_mlp_flat.FlatMLP`: the whole step
    without the autograd engine) instead of forward, ``F.cross_entropy``, backward and step. The loop is lean: the
    epoch is shuffled once and cut into views, and the losses are summed on the device once per epoch."""
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    n = x.shape[0]
    # weight of each step's mean loss in the epoch's mean: its batch size / n
    weights = torch.tensor([min(batch_size, n - s) / n for s in range(0, n, batch_size)], device=x.device)
    if fused_step:
        def step(xb, yb):
            return model.train_step(xb, yb, opt)
    else:
        def step(xb, yb):
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            project_(model)
            return loss.detach()
    bar = Progress(epochs, desc)
    losses = []
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(n, generator=generator).to(x.device)
        step_losses = [step(xb, yb) for xb, yb in zip(x[perm].split(batch_size), y[perm].split(batch_size),
                                                      strict=True)]
        losses.append(float(torch.stack(step_losses).to(weights.dtype) @ weights))
        bar.update(1, loss=losses[-1])
    bar.close()
    return losses


@torch.no_grad()
def accuracy(model, x, y, batch_size: int = 4096) -> float:
    """Fraction of rows of ``x`` whose arg-max prediction equals ``y`` (model in eval mode)."""
    model.eval()
    correct = sum(int((model(x[i:i + batch_size]).argmax(1) == y[i:i + batch_size]).sum())
                  for i in range(0, x.shape[0], batch_size))
    return correct / max(x.shape[0], 1)


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())

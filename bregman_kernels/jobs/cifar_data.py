"""CIFAR-10 for the jobs: the on-disk python version (``cifar-10-batches-py``, the folder torchvision's CIFAR10
reads and downloads), loaded whole as uint8 tensors; random crop + flip done batched on the training device; the
per-channel normalisation as a module, so that attacks and checkpoints work in pixel space [0, 1]."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

FOLDER = "cifar-10-batches-py"
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILES = ("test_batch",)
URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
# The seed library's normalisation for CIFAR-10 (ImageNet channel statistics).
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


class CifarMissing(FileNotFoundError):
    """CIFAR-10 is not under the data folder; the message names the missing files and how to get them."""


def _download(root: Path) -> None:
    try:
        from torchvision.datasets import CIFAR10
    except ImportError as e:
        raise CifarMissing(f"--download needs torchvision ({e}); or fetch {URL} and extract it into {root}") from None
    try:
        for train in (True, False):
            CIFAR10(str(root), train=train, download=True)
    except Exception as e:  # noqa: BLE001  (no network, proxy, checksum: all end in the same advice)
        raise CifarMissing(f"downloading CIFAR-10 into {root} failed ({type(e).__name__}: {e}); fetch {URL} "
                           f"elsewhere and extract it into {root}") from e


def load_cifar10(root: str | Path, train: bool, download: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(images, labels) of the training or test split: uint8 (N, 3, 32, 32) and int64 (N,).

    Reads ``root/cifar-10-batches-py/{data_batch_1..5 | test_batch}`` (pickled dicts with ``data``, an N×3072
    uint8 array of R, G, B planes, and ``labels``). With ``download`` a missing folder is fetched through
    torchvision (which also extracts an already present ``cifar-10-python.tar.gz``)."""
    root = Path(root)
    files = TRAIN_FILES if train else TEST_FILES

    def missing():
        return [f for f in files if not (root / FOLDER / f).is_file()]

    if missing() and download:
        _download(root)
    if missing():
        raise CifarMissing(
            f"CIFAR-10 not found: {root / FOLDER} lacks {', '.join(missing())}. Pass --download to fetch it "
            f"(needs network access), or download {URL} and extract it into {root}.")
    images, labels = [], []
    for name in files:
        with open(root / FOLDER / name, "rb") as f:
            batch = pickle.load(f, encoding="latin1")
        images.append(np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        labels.append(np.asarray(batch["labels"], dtype=np.int64))
    return torch.from_numpy(np.concatenate(images)), torch.from_numpy(np.concatenate(labels))


def write_cifar10(root: str | Path, train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray]):
    """Write images (uint8 N×3×32×32) and labels in the on-disk python format (training split over 5 files)."""
    folder = Path(root) / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    parts = zip(np.array_split(train[0], 5), np.array_split(train[1], 5), strict=True)
    for name, (x, y) in zip(TRAIN_FILES + TEST_FILES, [*parts, test], strict=True):
        batch = {"batch_label": name, "data": np.ascontiguousarray(x.reshape(len(x), -1), dtype=np.uint8),
                 "labels": [int(v) for v in y], "filenames": [f"{name}_{i}.png" for i in range(len(x))]}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f)
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": names, "num_cases_per_batch": len(train[0]) // 5, "num_vis": 3072}, f)


def augment(images: torch.Tensor, pad: int = 4) -> torch.Tensor:
    """Random crop (zero padding ``pad``) and random horizontal flip of a uint8 batch, as float in [0, 1]."""
    n, _, h, w = images.shape
    x = F.pad(images.float().div_(255), (pad, pad, pad, pad))
    dev = images.device
    # per-image offsets oy, ox ∈ [0, 2·pad]; crop = padded[:, :, oy:oy+h, ox:ox+w]
    oy = torch.randint(0, 2 * pad + 1, (n, 1), device=dev)
    ox = torch.randint(0, 2 * pad + 1, (n, 1), device=dev)
    rows = (oy + torch.arange(h, device=dev))[:, None, :, None]
    cols = (ox + torch.arange(w, device=dev))[:, None, None, :]
    chan = torch.arange(x.shape[1], device=dev)[None, :, None, None]
    x = x[torch.arange(n, device=dev)[:, None, None, None], chan, rows, cols]
    flip = torch.rand(n, device=dev) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """uint8 images → float in [0, 1]."""
    return images.float().div_(255)


class Normalize(nn.Module):
    """(x − mean) / std per channel: maps pixel-space inputs in [0, 1] to the network's input."""

    def __init__(self, mean=MEAN, std=STD):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def build_network(arch: str, version: str, activation: str, num_classes: int, backend: str) -> nn.Module:
    """``bregman_kernels.nn.<arch>(version=, activation=, num_classes=)`` on the requested kernel backend."""
    from .. import nn as bnn
    from .common import call_with_backend

    factory = getattr(bnn, arch, None)
    if factory is None or not arch.startswith(("bresnet", "bresnext", "wide_bresnet")):
        raise ValueError(f"unknown architecture {arch!r} (bresnet20/32/44/56/110/1202, ...)")
    return call_with_backend(factory, backend, version=version, activation=activation, num_classes=num_classes)


def pixel_model(net: nn.Module, mean=MEAN, std=STD) -> nn.Sequential:
    """The network preceded by its normalisation: takes images in [0, 1]."""
    return nn.Sequential(Normalize(mean, std), net)

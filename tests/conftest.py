"""Test set-up: Triton runs under its interpreter on CPU tensors when no GPU exists (set before triton loads)."""

import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

"""Activation modules shared by the models: the fused Bregman activation and the plain activation ρ(u)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..activations import Activation, get_activation
from ..functional import bregman_activation


class BregmanActivation(nn.Module):
    """y = ρ(x + ρ⁻¹(clamp(z, lo + eps, hi − eps))) as a module: forward(x, z), one fused op forward and backward.

    x: pre-activation (e.g. the output of a linear or conv + batch-norm branch); z: the offset, a previous
    representation in ρ's range (lo, hi). ``activation`` is any name of :func:`bregman_kernels.get_activation`;
    ``backend`` one of "auto", "eager", "cpp", "cuda", "triton". Holds no parameters.
    """

    def __init__(self, activation: str | Activation, eps: float = 1e-5, backend: str = "auto"):
        super().__init__()
        self.act = get_activation(activation)
        self.eps = float(eps)
        self.backend = backend
        lo, hi = self.act.bounds(self.eps, torch.float32)
        if not (self.eps >= 0 and lo < hi):
            raise ValueError(f"eps={eps} leaves an empty clamp interval for {self.act.name}")

    @property
    def lo(self) -> float:
        """Lower end of ρ's range."""
        return self.act.lo

    @property
    def hi(self) -> float:
        """Upper end of ρ's range."""
        return self.act.hi

    def rho(self, u: torch.Tensor) -> torch.Tensor:
        """ρ(u)."""
        return self.act.rho(u)

    def rho_inv(self, z: torch.Tensor) -> torch.Tensor:
        """ρ⁻¹(z) for z inside (lo, hi)."""
        return self.act.rho_inv(z)

    def rho_at_zero(self) -> float:
        """ρ(0): the offset z for which y = ρ(x)."""
        return self.act.rho_at_zero()

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return bregman_activation(x, z, self.act, eps=self.eps, backend=self.backend)

    def extra_repr(self) -> str:
        return f"{self.act.name}, eps={self.eps:g}, backend={self.backend!r}"


class PlainActivation(nn.Module):
    """u ↦ ρ(u) for the registry's activations; ``relu=True`` with name "relu" gives the true ReLU (bregmanet's
    'standard' and 'euclidean' networks) instead of the smooth bent identity."""

    def __init__(self, activation: str | Activation, relu: bool = False):
        super().__init__()
        self.act = get_activation(activation)
        self.relu = relu and self.act.name == "relu"

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return F.relu(u) if self.relu else self.act.rho(u)

    def extra_repr(self) -> str:
        return "relu" if self.relu else self.act.name

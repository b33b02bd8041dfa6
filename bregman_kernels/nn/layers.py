"""Linear layers of the Bregman MLP: the simplex-constrained offset map and a weight-normalised linear layer."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def project_simplex(v: torch.Tensor) -> torch.Tensor:
    """Euclidean projection of each row of ``v`` onto the probability simplex {w ≥ 0, Σ w = 1} (Duchi et al.,
    2008), computed in fp64 and returned in ``v``'s dtype."""
    w = v.detach().to(torch.float64)
    # u: each row sorted in decreasing order; c_k = Σ_{i ≤ k} u_i − 1
    u = torch.sort(w, dim=1, descending=True).values
    c = torch.cumsum(u, dim=1) - 1
    k = torch.arange(1, w.shape[1] + 1, device=w.device, dtype=w.dtype)
    # ρ = max{k : u_k − c_k / k > 0} (the condition holds exactly for k = 1 … ρ)
    rho = (u - c / k > 0).sum(dim=1, keepdim=True).clamp_min(1)
    # θ = c_ρ / ρ;  w = max(v − θ, 0)
    theta = c.gather(1, rho - 1) / rho
    return (w - theta).clamp_min(0).to(v.dtype)


class SimplexLinear(nn.Module):
    """Bias-free linear map y = x Wᵀ whose rows stay on the probability simplex (projected gradient descent).

    ``weight`` is one registered parameter of shape (out_features, in_features), created once (an optimizer built
    at any time updates it). It is projected onto the simplex at construction and, like bregmanet's offset maps,
    at the start of a forward pass whenever it changed since the last projection (an optimizer step or
    ``load_state_dict`` wrote into it), so the map in use is always on the simplex and unchanged training code
    works. Forward passes without an update in between never write into the weight, so several forward passes
    before one backward are safe. Inside ``torch.compile`` the forward does not write into parameters: call
    :meth:`project_` after each optimizer step (e.g. with ``optimizer.register_step_post_hook``). A weight
    substituted by ``torch.func.functional_call`` (a plain tensor) is used as given.
    """

    def __init__(self, in_features: int, out_features: int, device=None, dtype=None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        lin = nn.Linear(in_features, out_features, bias=False, device=device, dtype=dtype)
        self.weight = nn.Parameter(lin.weight.detach())
        self._seen = -1
        self.project_()

    @torch.no_grad()
    def project_(self) -> SimplexLinear:
        """Project ``weight`` onto the simplex in place (rows ≥ 0, summing to 1)."""
        self.weight.copy_(project_simplex(self.weight))
        self._seen = self.weight._version
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight
        if not torch.compiler.is_compiling() and isinstance(w, nn.Parameter) and w._version != self._seen:
            self.project_()
        return F.linear(x, self.weight)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, simplex rows"


class WeightNormLinear(nn.Module):
    """Linear layer with weight W = g · v / ‖v‖ (row norms), stored as ``weight_g`` (out, 1) and ``weight_v``
    (out, in) like ``torch.nn.utils.weight_norm(nn.Linear(...))``, so checkpoints of either load in the other."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        w = linear.weight.detach()
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach().clone())
        self.weight_g = nn.Parameter(torch.linalg.vector_norm(w, dim=1, keepdim=True))
        self.weight_v = nn.Parameter(w.clone())

    @property
    def weight(self) -> torch.Tensor:
        """The effective weight g · v / ‖v‖."""
        return torch._weight_norm(self.weight_v, self.weight_g, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, weight_norm"

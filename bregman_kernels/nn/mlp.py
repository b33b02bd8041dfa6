"""Bregman multilayer perceptron, a drop-in replacement for ``bregmanet.MLP`` on the fused op."""

from __future__ import annotations

import torch
from torch import nn

from .. import backends, fused_mlp
from ..activations import Activation
from .activation import BregmanActivation, PlainActivation
from .layers import SimplexLinear, WeightNormLinear

VERSIONS = ("bregman", "euclidean", "standard")


INITS = ("random", "rand", "deterministic", "zero")


def _init_types(version: str, init: str) -> tuple[str, str]:
    """(hidden, output) initialisation, as bregmanet's ``parameter_initialization``; 'zero' names its fallback
    (zero hidden layers, identity output), which bregmanet gives any other string."""
    if init in ("random", "rand"):
        return "rand", "rand"
    if init == "deterministic":
        return ("identity", "uniform") if version == "standard" else ("zero", "uniform")
    if init == "zero":
        return "zero", "identity"
    raise ValueError(f"init must be one of {INITS}, got {init!r}")


def _linear(n_in: int, n_out: int, init: str, weight_norm: bool = False) -> nn.Module:
    """nn.Linear initialised as bregmanet's ``linear_with_init`` (rand: PyTorch's default)."""
    lin = nn.Linear(n_in, n_out)
    with torch.no_grad():
        if init == "zero":
            lin.weight.zero_()
            lin.bias.zero_()
        elif init == "uniform":
            lin.weight.fill_(1.0 / n_in)
            lin.bias.fill_(1.0 / n_in)
        elif init == "identity":
            lin.weight.copy_(torch.eye(n_out, n_in))
            lin.bias.zero_()
    return WeightNormLinear(lin) if weight_norm else lin


class BregmanMLP(nn.Module):
    """Bregman multilayer perceptron with bregmanet.MLP's constructor and state_dict.

    Hidden layer l maps x_l (width n_l) to x_{l+1} (width n_{l+1}):
      - 'bregman':   x_{l+1} = ρ(lin_l(x_l) + ρ⁻¹(clamp(R_l x_l, lo + eps, hi − eps)))   (one fused op)
      - 'euclidean': x_{l+1} = ρ(lin_l(x_l) + R_l x_l)
      - 'standard':  x_{l+1} = ρ(lin_l(x_l))
    R_l is the identity when n_l = n_{l+1}, else a bias-free linear map with rows on the probability simplex
    (:class:`SimplexLinear`, stored as ``reparametrization.<l>.weight``), followed by the linear ``output`` layer.
    ρ is ``activation`` ('relu' is the smooth bent identity in the Bregman version and the true ReLU otherwise).

    Args: activation; version ('bregman', 'euclidean', 'standard'); hidden_dim (list of widths; default
    [input_dim]); input_dim; output_dim; init ('random', 'deterministic' or 'zero', bregmanet's fallback; other
    strings raise); weight_norm (weight-normalised hidden layers, keys ``weight_g``/``weight_v``); backend (of
    the fused op); eps (clamp margin, bregmanet's 1e-5);
    fused ("auto": all hidden layers in one fused kernel forward and backward when every hidden width is at most
    ``fused_mlp.MAX_WIDTH``, the dtype is fp32/fp64 and ``backend`` is "auto"; True forces it, False turns it off;
    see :mod:`bregman_kernels.fused_mlp`).

    Structure read by fused whole-network kernels: ``lin[l]`` (``.weight``, ``.bias``), ``reparametrization[l]``
    (nn.Identity or SimplexLinear), ``activation`` (BregmanActivation or PlainActivation), ``output``.
    """

    def __init__(self, activation: str, version: str = "bregman", hidden_dim: list[int] | None = None,
                 input_dim: int | None = None, output_dim: int = 1, init: str = "random", weight_norm: bool = False,
                 *, backend: str = "auto", eps: float = 1e-5, fused: bool | str = "auto"):
        super().__init__()
        if fused not in (True, False, "auto"):
            raise ValueError(f"fused must be True, False or 'auto', got {fused!r}")
        self.fused = fused
        activation = activation.name if isinstance(activation, Activation) else activation
        version, activation = version.lower(), activation.lower()
        if version not in VERSIONS:
            raise ValueError(f"version must be one of {VERSIONS}, got {version!r}")
        if input_dim is None:
            raise ValueError("input_dim is required")
        widths = [input_dim] if hidden_dim is None else list(hidden_dim)
        if not widths or not all(isinstance(n, int) and n > 0 for n in [input_dim, output_dim, *widths]):
            raise ValueError(f"input_dim, output_dim and a non-empty hidden_dim must be positive integers, got "
                             f"input_dim={input_dim!r}, hidden_dim={hidden_dim!r}, output_dim={output_dim!r}")
        if backend != "auto" and backend not in backends.BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; valid: auto, {', '.join(backends.BACKENDS)}")
        hidden_init, output_init = _init_types(version, init)
        self.version = version
        self.num_neurons = [input_dim] if hidden_dim is None else list(hidden_dim)
        self.num_layers = len(self.num_neurons)
        self.weight_norm = weight_norm
        self.lin = nn.ModuleList()
        self.reparametrization = nn.ModuleList()
        for n_in, n_out in zip([input_dim] + self.num_neurons[:-1], self.num_neurons, strict=True):
            same = n_in == n_out or version == "standard"
            self.reparametrization.append(nn.Identity() if same else SimplexLinear(n_in, n_out))
            self.lin.append(_linear(n_in, n_out, hidden_init, weight_norm))
        if version == "bregman":
            self.activation = BregmanActivation(activation, eps=eps, backend=backend)
        else:
            self.activation = PlainActivation(activation, relu=True)
        self.output = _linear(self.num_neurons[-1], output_dim, output_init)

    @torch.no_grad()
    def project_(self) -> BregmanMLP:
        """Project every offset map onto the simplex in place; call after ``optimizer.step()`` when the forward
        runs under torch.compile (eager forwards project by themselves)."""
        for r in self.reparametrization:
            if isinstance(r, SimplexLinear):
                r.project_()
        return self

    def register_projection(self, optimizer: torch.optim.Optimizer):
        """Project the offset maps after every step of ``optimizer``; returns the hook's removable handle."""
        return optimizer.register_step_post_hook(lambda *_: self.project_())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fused is not False and fused_mlp.use_fused(self, x):
            return self.output(fused_mlp.hidden(self, x))
        for lin, offset in zip(self.lin, self.reparametrization, strict=True):
            if self.version == "bregman":
                x = self.activation(lin(x), offset(x))
            elif self.version == "euclidean":
                x = self.activation(lin(x) + offset(x))
            else:
                x = self.activation(lin(x))
        return self.output(x)

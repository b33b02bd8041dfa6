"""bregman_kernels: fused kernels for the Bregman activation y = ρ(x + ρ⁻¹(clamp(z, lo + eps, hi − eps)))."""

from . import ops  # noqa: F401  (defines the custom ops)
from .activations import Activation, get_activation
from .backends import BackendUnavailable, available_backends
from .functional import bregman_activation

__all__ = ["Activation", "BackendUnavailable", "available_backends", "bregman_activation", "get_activation"]
__version__ = "0.1.0"

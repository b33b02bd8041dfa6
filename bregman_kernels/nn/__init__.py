"""Drop-in Bregman models on the fused op: ``import bregman_kernels.nn as bregmanet`` in place of ``import bregmanet``.

The MLP and every ResNet of bregmanet 1.0, with its constructors and state_dict keys; docs/models.md lists where
the results differ (bregmanet's wrong sigmoid/relu inverses, its offset maps that never train, its crashing or
NaN-producing variants).
"""

from .activation import BregmanActivation, PlainActivation
from .layers import SimplexLinear, WeightNormLinear, project_simplex
from .mlp import BregmanMLP

MLP = BregmanMLP

__all__ = ["MLP", "BregmanActivation", "BregmanMLP", "PlainActivation", "SimplexLinear", "WeightNormLinear",
           "project_simplex"]

"""Drop-in Bregman models on the fused op: ``import bregman_kernels.nn as bregmanet`` in place of ``import bregmanet``.

The MLP and every ResNet of bregmanet 1.0, with its constructors and state_dict keys; docs/models.md lists where
the results differ (bregmanet's wrong sigmoid/relu inverses, its offset maps that never train, its crashing or
NaN-producing variants).
"""

from .activation import BregmanActivation, PlainActivation
from .convert import from_bregmanet
from .layers import SimplexLinear, WeightNormLinear, project_simplex
from .mlp import BregmanMLP
from .resnet_large import (
    bresnet18,
    bresnet34,
    bresnet50,
    bresnet101,
    bresnet152,
    bresnext50_32x4d,
    bresnext101_32x8d,
    wide_bresnet50_2,
    wide_bresnet101_2,
)
from .resnet_small import bresnet20, bresnet32, bresnet44, bresnet56, bresnet110, bresnet1202

MLP = BregmanMLP

__all__ = ["MLP", "BregmanActivation", "BregmanMLP", "PlainActivation", "SimplexLinear", "WeightNormLinear",
           "bresnet18", "bresnet20", "bresnet32", "bresnet34", "bresnet44", "bresnet50", "bresnet56", "bresnet101",
           "bresnet110", "bresnet152", "bresnet1202", "bresnext50_32x4d", "bresnext101_32x8d", "from_bregmanet",
           "project_simplex", "wide_bresnet50_2", "wide_bresnet101_2"]

"""CIFAR Bregman ResNets (bresnet20 … bresnet1202), drop-in replacements for ``bregmanet.resnet_small``.

Bregman block:  out = ρ(bn2(conv2(ρ(bn1(conv1 x)))) + ρ⁻¹(clamp(shortcut(x), lo + eps, hi − eps)))  (fused op)
'option E' shortcut where the shape changes: x[:, :, ::2, ::2] with planes//4 new channels on each side filled
with ρ(0), so that ρ⁻¹ of them is 0. The default eps = 2e-5 is bregmanet's clamp: its range already holds 1e-5
and its blocks clamp 1e-5 inside it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .activation import BregmanActivation, PlainActivation

__all__ = ["BregmanResNet", "bresnet20", "bresnet32", "bresnet44", "bresnet56", "bresnet110", "bresnet1202"]

RESNET_EPS = 2e-5


def _weights_init(m: nn.Module) -> None:
    if isinstance(m, (nn.Linear, nn.Conv2d)):
        nn.init.kaiming_normal_(m.weight)


class PadShortcut(nn.Module):
    """x[:, :, ::2, ::2] with ``pad`` channels of value ``value`` added on each side of the channel dimension."""

    def __init__(self, pad: int, value: float = 0.0):
        super().__init__()
        self.pad, self.value = pad, value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad), "constant", self.value)

    def extra_repr(self) -> str:
        return f"pad={self.pad}, value={self.value:g}"


class BasicBlock(nn.Module):
    """The standard CIFAR block with bregmanet's 'option A' shortcut (zero padding): relu(F(x) + shortcut(x))."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1, **_):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        need = stride != 1 or in_planes != planes
        self.shortcut = PadShortcut(planes // 4) if need else nn.Sequential()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class BregmanBasicBlock(nn.Module):
    """out = ρ(bn2(conv2(ρ(bn1(conv1 x)))) + ρ⁻¹(clamp(shortcut(x)))), the residual through the fused op."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1, activation: str = "atan",
                 batch_norm: bool = True, eps: float = RESNET_EPS, backend: str = "auto"):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes) if batch_norm else nn.Identity()
        self.activation = BregmanActivation(activation, eps=eps, backend=backend)
        need = stride != 1 or in_planes != planes
        self.shortcut = PadShortcut(planes // 4, self.activation.rho_at_zero()) if need else nn.Sequential()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.activation.rho(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.activation(out, self.shortcut(x))


class BisBregmanBasicBlock(BregmanBasicBlock):
    """Two Bregman activations per block:  h = ρ(bn1(conv1 x) + ρ⁻¹(clamp(shortcut(x)))),
    out = ρ(bn2(conv2 h) + ρ⁻¹(clamp(h))).  (bregmanet passes h through the shortcut again, which breaks on
    the downsampling blocks; h already has the output's shape.)"""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.activation(self.bn1(self.conv1(x)), self.shortcut(x))
        return self.activation(self.bn2(self.conv2(h)), h)


class BregmanResNet(nn.Module):
    """CIFAR ResNet: 3×3 conv stem (16 channels), three stages of ``num_blocks`` blocks (16, 32, 64 channels),
    global average pooling and a linear classifier. ``version`` 'bregman' uses the smooth ρ in the stem, else
    the plain activation (true ReLU for 'relu')."""

    def __init__(self, block: type[nn.Module], num_blocks: list[int], num_classes: int = 10,
                 activation: str = "relu", version: str = "standard", batch_norm: bool = True,
                 eps: float = RESNET_EPS, backend: str = "auto"):
        super().__init__()
        self.in_planes = 16
        self.version = version
        self.activation = PlainActivation(activation, relu=version != "bregman")
        self.conv1 = nn.Conv2d(3, 16, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16) if batch_norm else nn.Identity()
        kw = {"activation": activation, "eps": eps, "backend": backend}
        self.layer1 = self._make_layer(block, 16, num_blocks[0], 1, kw)
        self.layer2 = self._make_layer(block, 32, num_blocks[1], 2, kw)
        self.layer3 = self._make_layer(block, 64, num_blocks[2], 2, kw)
        self.linear = nn.Linear(64, num_classes)
        self.apply(_weights_init)

    def _make_layer(self, block, planes: int, num_blocks: int, stride: int, kw: dict) -> nn.Sequential:
        layers = []
        for s in [stride] + [1] * (num_blocks - 1):
            layers.append(block(self.in_planes, planes, s, **kw))
            self.in_planes = planes * block.expansion
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.activation(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        out = F.avg_pool2d(out, out.size()[3])
        return self.linear(out.view(out.size(0), -1))


def _bresnet(num_blocks: list[int], version: str, activation: str, num_classes: int, **kw) -> BregmanResNet:
    version = version.lower()
    if version == "standard":
        return BregmanResNet(BasicBlock, num_blocks, num_classes, activation, "standard", **kw)
    if version not in ("bregman", "bregman_bis"):
        raise ValueError(f"version must be 'bregman', 'bregman_bis' or 'standard', got {version!r}")
    block = BisBregmanBasicBlock if version == "bregman_bis" else BregmanBasicBlock
    return BregmanResNet(block, num_blocks, num_classes, activation, "bregman", **kw)


def bresnet20(version="bregman", activation="relu", num_classes=10, **kw) -> BregmanResNet:
    """Bregman ResNet-20 (3 × 3 blocks). Extra keywords: eps, backend, batch_norm."""
    return _bresnet([3, 3, 3], version, activation, num_classes, **kw)


def bresnet32(version="bregman", activation="relu", num_classes=10, **kw) -> BregmanResNet:
    """Bregman ResNet-32 (3 × 5 blocks)."""
    return _bresnet([5, 5, 5], version, activation, num_classes, **kw)


def bresnet44(version="bregman", activation="relu", num_classes=10, **kw) -> BregmanResNet:
    """Bregman ResNet-44 (3 × 7 blocks)."""
    return _bresnet([7, 7, 7], version, activation, num_classes, **kw)


def bresnet56(version="bregman", activation="relu", num_classes=10, **kw) -> BregmanResNet:
    """Bregman ResNet-56 (3 × 9 blocks)."""
    return _bresnet([9, 9, 9], version, activation, num_classes, **kw)


def bresnet110(version="bregman", activation="relu", num_classes=10, **kw) -> BregmanResNet:
    """Bregman ResNet-110 (3 × 18 blocks)."""
    return _bresnet([18, 18, 18], version, activation, num_classes, **kw)


def bresnet1202(version="bregman", activation="relu", num_classes=10, **kw) -> BregmanResNet:
    """Bregman ResNet-1202 (3 × 200 blocks)."""
    return _bresnet([200, 200, 200], version, activation, num_classes, **kw)

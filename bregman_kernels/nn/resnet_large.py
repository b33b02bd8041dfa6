"""ImageNet Bregman ResNets, ResNeXts and wide ResNets, drop-in replacements for ``bregmanet.resnet_large``.

Bregman basic block:  out = ρ(bn2(conv2(ρ(bn1(conv1 x)))) + ρ⁻¹(clamp(shortcut(x))))  with the 'option E'
shortcut (x[:, :, ::2, ::2], planes//4 new channels of ρ(0) on each side); its ``downsample`` modules exist for
state_dict compatibility with bregmanet and are unused, as there.
Bregman bottleneck:   out = ρ(bn3(conv3(ρ(bn2(conv2(ρ(bn1(conv1 x)))))))) + ρ⁻¹(clamp(downsample(x) or x))).
Every residual goes through the fused op; every block uses the model's ``activation``. version='standard' gives
torchvision's ResNet (same modules, keys and forward).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .activation import BregmanActivation, PlainActivation
from .resnet_small import RESNET_EPS, PadShortcut

__all__ = ["BregmanResNet", "ResNet", "bresnet18", "bresnet34", "bresnet50", "bresnet101", "bresnet152",
           "bresnext50_32x4d", "bresnext101_32x8d", "wide_bresnet50_2", "wide_bresnet101_2"]

MODEL_URLS = {
    "resnet18": "https://download.pytorch.org/models/resnet18-f37072fd.pth",
    "resnet34": "https://download.pytorch.org/models/resnet34-b627a593.pth",
    "resnet50": "https://download.pytorch.org/models/resnet50-0676ba61.pth",
    "resnet101": "https://download.pytorch.org/models/resnet101-63fe2227.pth",
    "resnet152": "https://download.pytorch.org/models/resnet152-394f9c45.pth",
    "resnext50_32x4d": "https://download.pytorch.org/models/resnext50_32x4d-7cdf4587.pth",
    "resnext101_32x8d": "https://download.pytorch.org/models/resnext101_32x8d-8ba56ff5.pth",
    "wide_resnet50_2": "https://download.pytorch.org/models/wide_resnet50_2-95faca4d.pth",
    "wide_resnet101_2": "https://download.pytorch.org/models/wide_resnet101_2-32ee1156.pth",
}


def conv3x3(in_planes: int, out_planes: int, stride: int = 1, groups: int = 1, dilation: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=dilation, groups=groups,
                     bias=False, dilation=dilation)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """torchvision's basic block: relu(bn2(conv2(relu(bn1(conv1 x)))) + downsample(x) or x)."""

    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None, groups=1, base_width=64, dilation=1,
                 norm_layer=None, **_):
        super().__init__()
        norm_layer = norm_layer or nn.BatchNorm2d
        if groups != 1 or base_width != 64:
            raise ValueError("BasicBlock only supports groups=1 and base_width=64")
        if dilation > 1:
            raise NotImplementedError("Dilation > 1 not supported in BasicBlock")
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = norm_layer(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = norm_layer(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """torchvision's bottleneck (ResNet v1.5: stride in the 3×3 conv)."""

    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None, groups=1, base_width=64, dilation=1,
                 norm_layer=None, **_):
        super().__init__()
        norm_layer = norm_layer or nn.BatchNorm2d
        width = int(planes * (base_width / 64.0)) * groups
        self.conv1 = conv1x1(inplanes, width)
        self.bn1 = norm_layer(width)
        self.conv2 = conv3x3(width, width, stride, groups, dilation)
        self.bn2 = norm_layer(width)
        self.conv3 = conv1x1(width, planes * self.expansion)
        self.bn3 = norm_layer(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class BregmanBasicBlock(BasicBlock):
    """Bregman basic block with the 'option E' shortcut; ``downsample`` is kept (state_dict) but unused."""

    def __init__(self, inplanes, planes, stride=1, downsample=None, groups=1, base_width=64, dilation=1,
                 norm_layer=None, activation="softplus", eps=RESNET_EPS, backend="auto"):
        super().__init__(inplanes, planes, stride, downsample, groups, base_width, dilation, norm_layer)
        del self.relu
        self.activation = BregmanActivation(activation, eps=eps, backend=backend)
        need = stride != 1 or inplanes != planes
        self.shortcut = PadShortcut(planes // 4, self.activation.rho_at_zero()) if need else nn.Sequential()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.activation.rho(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.activation(out, self.shortcut(x))


class BregmanBottleneck(Bottleneck):
    """Bregman bottleneck; the offset is downsample(x) (conv1×1 + norm) or x, clamped into ρ's range."""

    def __init__(self, inplanes, planes, stride=1, downsample=None, groups=1, base_width=64, dilation=1,
                 norm_layer=None, activation="softplus", eps=RESNET_EPS, backend="auto"):
        super().__init__(inplanes, planes, stride, downsample, groups, base_width, dilation, norm_layer)
        del self.relu
        self.activation = BregmanActivation(activation, eps=eps, backend=backend)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.activation.rho(self.bn1(self.conv1(x)))
        out = self.activation.rho(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.activation(out, identity)


class ResNet(nn.Module):
    """torchvision's ResNet; with Bregman blocks and an ``activation`` (:class:`BregmanResNet`) the stem applies
    the smooth ρ instead of ReLU. Same arguments as torchvision (num_classes, zero_init_residual, groups,
    width_per_group, replace_stride_with_dilation, norm_layer); ``block_kw`` goes to every block."""

    def __init__(self, block: type[nn.Module], layers: list[int], num_classes: int = 1000,
                 zero_init_residual: bool = False, groups: int = 1, width_per_group: int = 64,
                 replace_stride_with_dilation: list[bool] | None = None,
                 norm_layer: Callable[..., nn.Module] | None = None, block_kw: dict | None = None):
        super().__init__()
        norm_layer = norm_layer or nn.BatchNorm2d
        self._norm_layer = norm_layer
        self._block_kw = block_kw or {}
        self.inplanes, self.dilation = 64, 1
        replace_stride_with_dilation = replace_stride_with_dilation or [False, False, False]
        if len(replace_stride_with_dilation) != 3:
            raise ValueError("replace_stride_with_dilation should be None or a 3-element tuple, got "
                             f"{replace_stride_with_dilation}")
        self.groups, self.base_width = groups, width_per_group
        self.conv1 = nn.Conv2d(3, self.inplanes, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = norm_layer(self.inplanes)
        self._stem_activation()
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], 2, replace_stride_with_dilation[0])
        self.layer3 = self._make_layer(block, 256, layers[2], 2, replace_stride_with_dilation[1])
        self.layer4 = self._make_layer(block, 512, layers[3], 2, replace_stride_with_dilation[2])
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
        if zero_init_residual:
            # zero last norm of each residual branch: a standard block starts as relu(x), a Bregman one as x
            for m in self.modules():
                if isinstance(m, Bottleneck):
                    nn.init.constant_(m.bn3.weight, 0)
                elif isinstance(m, BasicBlock):
                    nn.init.constant_(m.bn2.weight, 0)

    def _stem_activation(self) -> None:
        self.relu = nn.ReLU(inplace=True)

    def _stem(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(x)

    def _make_layer(self, block, planes: int, blocks: int, stride: int = 1, dilate: bool = False) -> nn.Sequential:
        norm_layer, downsample, previous_dilation = self._norm_layer, None, self.dilation
        if dilate:
            self.dilation *= stride
            stride = 1
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(conv1x1(self.inplanes, planes * block.expansion, stride),
                                       norm_layer(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, downsample, self.groups, self.base_width, previous_dilation,
                        norm_layer, **self._block_kw)]
        self.inplanes = planes * block.expansion
        for _ in range(1, blocks):
            layers.append(block(self.inplanes, planes, groups=self.groups, base_width=self.base_width,
                                dilation=self.dilation, norm_layer=norm_layer, **self._block_kw))
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self._stem(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class BregmanResNet(ResNet):
    """ResNet with Bregman blocks; ``activation`` (default 'softplus', β = 1000) is used in the stem and in every
    block; ``eps`` and ``backend`` configure the fused op."""

    def __init__(self, block, layers, num_classes=1000, zero_init_residual=False, groups=1, width_per_group=64,
                 replace_stride_with_dilation=None, norm_layer=None, activation="softplus", eps=RESNET_EPS,
                 backend="auto"):
        self._act_name = activation
        super().__init__(block, layers, num_classes, zero_init_residual, groups, width_per_group,
                         replace_stride_with_dilation, norm_layer,
                         {"activation": activation, "eps": eps, "backend": backend})

    def _stem_activation(self) -> None:
        self.activation = PlainActivation(self._act_name)

    def _stem(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(x)


_ARCHS = {
    "resnet18": (BasicBlock, BregmanBasicBlock, [2, 2, 2, 2], {}),
    "resnet34": (BasicBlock, BregmanBasicBlock, [3, 4, 6, 3], {}),
    "resnet50": (Bottleneck, BregmanBottleneck, [3, 4, 6, 3], {}),
    "resnet101": (Bottleneck, BregmanBottleneck, [3, 4, 23, 3], {}),
    "resnet152": (Bottleneck, BregmanBottleneck, [3, 8, 36, 3], {}),
    "resnext50_32x4d": (Bottleneck, BregmanBottleneck, [3, 4, 6, 3], {"groups": 32, "width_per_group": 4}),
    "resnext101_32x8d": (Bottleneck, BregmanBottleneck, [3, 4, 23, 3], {"groups": 32, "width_per_group": 8}),
    "wide_resnet50_2": (Bottleneck, BregmanBottleneck, [3, 4, 6, 3], {"width_per_group": 128}),
    "wide_resnet101_2": (Bottleneck, BregmanBottleneck, [3, 4, 23, 3], {"width_per_group": 128}),
}


def _build(arch: str, activation: str, version: str, kwargs: dict) -> ResNet:
    plain, bregman, layers, fixed = _ARCHS[arch]
    kwargs = {**kwargs, **fixed}
    pretrained, progress = kwargs.pop("pretrained", False), kwargs.pop("progress", True)
    version = version.lower()
    if version == "standard":
        for k in ("eps", "backend"):
            kwargs.pop(k, None)
        model = ResNet(plain, layers, **kwargs)
        if pretrained:
            model.load_state_dict(torch.hub.load_state_dict_from_url(MODEL_URLS[arch], progress=progress))
        return model
    if version != "bregman":
        raise ValueError(f"version must be 'bregman' or 'standard', got {version!r}")
    if pretrained:
        raise ValueError("no pretrained weights exist for the Bregman version")
    return BregmanResNet(bregman, layers, activation=activation, **kwargs)


def bresnet18(activation="softplus", version="bregman", **kwargs) -> ResNet:
    """Bregman ResNet-18. Keywords: num_classes (1000), eps, backend and torchvision's ResNet arguments;
    version='standard' also takes pretrained/progress (torchvision's weights)."""
    return _build("resnet18", activation, version, kwargs)


def bresnet34(activation="softplus", version="bregman", **kwargs) -> ResNet:
    """Bregman ResNet-34 (keywords as :func:`bresnet18`)."""
    return _build("resnet34", activation, version, kwargs)


def bresnet50(activation="softplus", version="bregman", **kwargs) -> ResNet:
    """Bregman ResNet-50 (keywords as :func:`bresnet18`)."""
    return _build("resnet50", activation, version, kwargs)


def bresnet101(activation="softplus", version="bregman", **kwargs) -> ResNet:
    """Bregman ResNet-101 (keywords as :func:`bresnet18`)."""
    return _build("resnet101", activation, version, kwargs)


def bresnet152(activation="softplus", version="bregman", **kwargs) -> ResNet:
    """Bregman ResNet-152 (keywords as :func:`bresnet18`)."""
    return _build("resnet152", activation, version, kwargs)


def bresnext50_32x4d(activation="softplus", version="bregman", **kwargs) -> ResNet:
    """Bregman ResNeXt-50 32×4d (keywords as :func:`bresnet18`)."""
    return _build("resnext50_32x4d", activation, version, kwargs)


def bresnext101_32x8d(activation="softplus", version="bregman", **kwargs) -> ResNet:
    """Bregman ResNeXt-101 32×8d (keywords as :func:`bresnet18`)."""
    return _build("resnext101_32x8d", activation, version, kwargs)


def wide_bresnet50_2(activation="softplus", version="bregman", **kwargs) -> ResNet:
    """Wide Bregman ResNet-50-2 (keywords as :func:`bresnet18`)."""
    return _build("wide_resnet50_2", activation, version, kwargs)


def wide_bresnet101_2(activation="softplus", version="bregman", **kwargs) -> ResNet:
    """Wide Bregman ResNet-101-2 (keywords as :func:`bresnet18`)."""
    return _build("wide_resnet101_2", activation, version, kwargs)

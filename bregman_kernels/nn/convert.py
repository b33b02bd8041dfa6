"""Conversion of bregmanet models and checkpoints to the models of this package."""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping

import torch
from torch import nn

from . import resnet_large, resnet_small
from .mlp import BregmanMLP

_SMALL = {20: "bresnet20", 32: "bresnet32", 44: "bresnet44", 56: "bresnet56", 110: "bresnet110", 1202: "bresnet1202"}
_LARGE = {  # (block kind, blocks per stage, groups, width per group) -> factory
    ("basic", (2, 2, 2, 2), 1, 64): "bresnet18",
    ("basic", (3, 4, 6, 3), 1, 64): "bresnet34",
    ("bottleneck", (3, 4, 6, 3), 1, 64): "bresnet50",
    ("bottleneck", (3, 4, 23, 3), 1, 64): "bresnet101",
    ("bottleneck", (3, 8, 36, 3), 1, 64): "bresnet152",
    ("bottleneck", (3, 4, 6, 3), 32, 4): "bresnext50_32x4d",
    ("bottleneck", (3, 4, 23, 3), 32, 8): "bresnext101_32x8d",
    ("bottleneck", (3, 4, 6, 3), 1, 128): "wide_bresnet50_2",
    ("bottleneck", (3, 4, 23, 3), 1, 128): "wide_bresnet101_2",
}
_NAMED = {"tanh": "tanh", "atan": "atan", "sin": "sin", "isru": "isru", "asinh": "asinh", "bent_identity": "relu",
          "Sigmoid": "sigmoid", "ReLU": "relu", "sigmoid": "sigmoid"}


def _activation_name(fn) -> str | None:
    """Registry name of a bregmanet activation function (None when unknown)."""
    name = getattr(fn, "__name__", type(fn).__name__)
    if name in _NAMED:
        return _NAMED[name]
    code = getattr(fn, "__code__", None)
    if code is None or not fn.__closure__:
        return None
    cells = dict(zip(code.co_freevars, (c.cell_contents for c in fn.__closure__), strict=True))
    if "beta" in cells:
        return "softplus" if float(cells["beta"]) == 1000.0 else f"softplus{float(cells['beta']):g}"
    if {"a", "b"} <= set(cells):
        return "scaled_tanh"
    return None


def _infer_activation(model: nn.Module) -> str:
    stated = _activation_name(getattr(model, "activation", None))
    in_blocks = {_activation_name(m.activation) for m in model.modules()
                 if m is not model and hasattr(m, "inverse") and hasattr(m, "activation")}
    if stated is None and len(in_blocks) == 1:
        stated = next(iter(in_blocks))
    if stated is None:
        raise ValueError("cannot tell the model's activation; pass activation=")
    if in_blocks - {stated}:
        warnings.warn(f"the bregmanet model's blocks use {sorted(in_blocks)} while the model states {stated!r} "
                      f"(bregmanet's ImageNet ResNets drop the activation for their blocks); the converted model "
                      f"uses {stated!r} everywhere, so its outputs differ — pass activation= to choose", stacklevel=3)
    return stated


def _describe_module(model: nn.Module) -> tuple[str, dict]:
    """(factory name, constructor keywords) of a bregmanet model."""
    module = type(model).__module__
    if module.endswith(".mlp"):
        first = model.lin[0]
        return "mlp", {"version": model.version, "hidden_dim": list(model.num_neurons),
                       "input_dim": first.in_features, "output_dim": model.output.out_features,
                       "weight_norm": bool(model.weight_norm)}
    if module.endswith(".resnet_small"):
        n = len(model.layer1)
        kind = type(model.layer1[0]).__name__
        version = {"BasicBlock": "standard", "BisBregmanBasicBlock": "bregman_bis"}.get(kind, "bregman")
        return _SMALL[6 * n + 2], {"version": version, "num_classes": model.linear.out_features}
    if module.endswith(".resnet_large"):
        kind = "bottleneck" if "Bottleneck" in type(model.layer1[0]).__name__ else "basic"
        stages = tuple(len(getattr(model, f"layer{i}")) for i in range(1, 5))
        key = (kind, stages, model.groups, model.base_width)
        if key not in _LARGE:
            raise ValueError(f"no factory for a bregmanet ResNet with {key}")
        version = "bregman" if type(model).__name__.startswith("Bregman") else "standard"
        return _LARGE[key], {"version": version, "num_classes": model.fc.out_features}
    raise TypeError(f"not a bregmanet model: {type(model).__module__}.{type(model).__name__}")


def _mlp_dims(state: Mapping[str, torch.Tensor]) -> dict:
    shapes = {}
    for k, v in state.items():
        m = re.fullmatch(r"lin\.(\d+)\.(weight|weight_v)", k)
        if m:
            shapes[int(m.group(1))] = tuple(v.shape)
    if not shapes or "output.weight" not in state:
        raise ValueError("not a bregmanet MLP state_dict (no lin.<i>.weight / output.weight)")
    dims = [shapes[i] for i in range(len(shapes))]
    return {"hidden_dim": [d[0] for d in dims], "input_dim": dims[0][1],
            "output_dim": state["output.weight"].shape[0], "weight_norm": "lin.0.weight_v" in state}


def build(arch: str, **kwargs) -> nn.Module:
    """Our model for a bregmanet factory name ('mlp', 'bresnet20', …, 'wide_bresnet101_2')."""
    if arch == "mlp":
        return BregmanMLP(**kwargs)
    if arch in _SMALL.values():
        return getattr(resnet_small, arch)(**kwargs)
    if arch in _LARGE.values():
        return getattr(resnet_large, arch)(**kwargs)
    raise ValueError(f"unknown architecture {arch!r}")


def from_bregmanet(source: nn.Module | Mapping[str, torch.Tensor], arch: str | None = None, *,
                   activation: str | None = None, version: str | None = None, backend: str = "auto",
                   **kwargs) -> nn.Module:
    """The model of this package equivalent to a bregmanet model, with its weights loaded.

    source: a bregmanet model (architecture, version and activation are read from it; the result takes its
    device, dtype and train/eval mode) or a bregmanet state_dict (then ``arch`` is required: 'mlp' or a
    factory name such as 'bresnet20' or 'bresnet50'; ``version`` defaults to 'bregman', ``activation`` to the
    factory's default, MLP widths are read from the weights). Other keywords go to the constructor.
    """
    if isinstance(source, nn.Module):
        found, ctor = _describe_module(source)
        if arch is not None and arch != found:
            raise ValueError(f"the model is a {found}, not a {arch}")
        arch, state = found, source.state_dict()
        if activation is not None:
            ctor["activation"] = activation
        elif not (ctor["version"] == "standard" and arch in _LARGE.values()):
            ctor["activation"] = _infer_activation(source)
    elif isinstance(source, Mapping):
        if arch is None:
            raise ValueError("arch is required to convert a state_dict")
        state = source
        ctor = _mlp_dims(state) if arch == "mlp" else {}
        if activation is not None:
            ctor["activation"] = activation
        elif arch == "mlp":
            raise ValueError("activation is required to convert an MLP state_dict")
    else:
        raise TypeError(f"expected a bregmanet model or a state_dict, got {type(source).__name__}")
    if version is not None:
        ctor["version"] = version
    ctor.update(kwargs)
    ctor["backend"] = backend
    model = build(arch, **ctor)
    model.load_state_dict(state)
    if isinstance(source, nn.Module):
        p = next(source.parameters(), None)
        if p is not None:
            model.to(device=p.device, dtype=p.dtype)
        model.train(source.training)
    return model

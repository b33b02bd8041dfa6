"""Projected gradient descent (PGD) attacks in pixel space, ℓ∞ and ℓ2 (Madry et al., 2018).

A small implementation of our own rather than torchattacks: that library pins ``requests~=2.25``, which
conflicts with any current environment, and the jobs need only these two attacks. The attacked model takes
images in [0, 1] (normalisation inside the model), so budgets are in pixel units: ε = 8/255 for ℓ∞ means every
pixel moves by at most 8 grey levels.

Robust accuracy counts an image as robust only while the clean image and every iterate of the attack are
classified correctly, so it can never exceed the clean accuracy of the same images.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

NORMS = ("linf", "l2")


def _l2(v: torch.Tensor) -> torch.Tensor:
    """Per-image ℓ2 norm, shaped to broadcast against the batch."""
    return v.flatten(1).norm(dim=1).view(-1, *([1] * (v.dim() - 1)))


def project(delta: torch.Tensor, x: torch.Tensor, norm: str, eps: float) -> torch.Tensor:
    """δ projected onto {‖δ‖ ≤ ε} and then onto the image box: x + δ ∈ [0, 1] (which only shrinks |δ|)."""
    if norm == "linf":
        delta = delta.clamp(-eps, eps)
    elif norm == "l2":
        # δ ← δ · min(1, ε / ‖δ‖₂)
        delta = delta * (eps / _l2(delta).clamp_min(1e-12)).clamp(max=1.0)
    else:
        raise ValueError(f"unknown norm {norm!r}; valid: {', '.join(NORMS)}")
    return (x + delta).clamp(0.0, 1.0) - x


def random_start(x: torch.Tensor, norm: str, eps: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """A random δ inside the ball: uniform per pixel for ℓ∞; a uniformly random direction scaled by ε·U for ℓ2."""
    if norm == "linf":
        u = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        return project((2 * u - 1) * eps, x, norm, eps)
    g = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    r = torch.rand((x.shape[0],) + (1,) * (x.dim() - 1), generator=generator, device=x.device, dtype=x.dtype)
    return project(g / _l2(g).clamp_min(1e-12) * eps * r, x, norm, eps)


def pgd(model, x: torch.Tensor, y: torch.Tensor, *, norm: str, eps: float, steps: int, step_size: float,
        rand_init: bool = True, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(x_adv, robust): the last PGD iterate and a bool mask, True where the clean image and every iterate are
    classified as ``y``. Maximises the cross-entropy; the model is used as given (call ``model.eval()`` first)."""
    if norm not in NORMS:
        raise ValueError(f"unknown norm {norm!r}; valid: {', '.join(NORMS)}")
    x = x.detach()
    with torch.no_grad():
        robust = model(x).argmax(1) == y
    delta = random_start(x, norm, eps, generator) if rand_init else torch.zeros_like(x)
    for _ in range(steps):
        delta.requires_grad_(True)
        logits = model(x + delta)
        (grad,) = torch.autograd.grad(F.cross_entropy(logits, y, reduction="sum"), delta)
        with torch.no_grad():
            robust &= logits.argmax(1) == y
            if norm == "linf":
                # ascent along sign(∇): the steepest ℓ∞ step
                delta = delta + step_size * grad.sign()
            else:
                # ascent along ∇/‖∇‖₂: the steepest ℓ2 step
                delta = delta + step_size * grad / _l2(grad).clamp_min(1e-12)
            delta = project(delta, x, norm, eps)
    with torch.no_grad():
        x_adv = x + delta
        robust &= model(x_adv).argmax(1) == y
    return x_adv.detach(), robust


def parse_fraction(text: str) -> float:
    """'8/255' → 0.0313…, '0.5' → 0.5."""
    num, _, den = str(text).partition("/")
    return float(num) / float(den) if den else float(num)

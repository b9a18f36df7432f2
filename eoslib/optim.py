"""Optimizers and their stability thresholds.

The optimizers are PyTorch's own (``torch.optim.SGD`` and ``torch.optim.Adam``),
so what the book measures is what practitioners run. Conventions, with
gradient g_t, step size η and momentum β:

* **GD / SGD**: θ ← θ − η g.
* **Heavy ball** (PyTorch ``SGD(momentum=β)``): v ← β v + g, θ ← θ − η v.
* **Nesterov** (PyTorch ``SGD(momentum=β, nesterov=True)``): v ← β v + g, θ ← θ − η (g + β v).
* **Adam** (β₁, β₂, ε): θ ← θ − η m̂ / (√v̂ + ε).

**Stability thresholds.** On a quadratic with curvature λ each method is a
linear recursion; it is stable iff λ is below its threshold:

=============  ==============================  =======================================
method         threshold on λ                  derivation
=============  ==============================  =======================================
GD, SGD        2/η                             |1 − ηλ| < 1
heavy ball     (2 + 2β)/η                      char. poly z² − (1 + β − ηλ) z + β
Nesterov       (2 + 2β)/((1 + 2β)η)            z² − (1 + β)(1 − ηλ) z + β(1 − ηλ)
Adam           (2 + 2β₁)/((1 − β₁)η)           heavy ball in EMA form, on P⁻¹H
=============  ==============================  =======================================

For Adam the threshold applies to the *preconditioned* sharpness λ_max(P⁻¹H)
with P = diag(√v̂ + ε) (Cohen et al., 2022); with β₁ = 0.9 it is 38/η.

References: Cohen et al., ICLR 2021 (GD, momentum); Cohen et al., *Adaptive
Gradient Methods at the Edge of Stability*, 2022 (Adam).
"""

from __future__ import annotations

from typing import Iterable

import torch

# The formulas are derived on the quadratic model, so they live in eoslib.quadratic.
from .quadratic import gd_threshold, heavy_ball_threshold, nesterov_threshold

__all__ = ["OPTIMIZERS", "gd_threshold", "heavy_ball_threshold", "nesterov_threshold", "adam_threshold",
           "stability_threshold", "make_optimizer", "adam_preconditioner"]

OPTIMIZERS = ("gd", "sgd", "heavy-ball", "nesterov", "adam")


def adam_threshold(lr: float, beta1: float) -> float:
    """(2 + 2β₁)/((1 − β₁)η), the threshold of Adam's preconditioned sharpness.

    >>> round(adam_threshold(0.001, 0.9), 6)
    38000.0
    """
    return (2.0 + 2.0 * beta1) / ((1.0 - beta1) * lr)


def _check(name: str, lr: float, momentum: float) -> None:
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; valid: {', '.join(OPTIMIZERS)}")
    if not lr > 0:
        raise ValueError(f"learning rate {lr} must be positive")
    if not 0 <= momentum < 1:
        raise ValueError(f"momentum {momentum} must lie in [0, 1)")


def stability_threshold(name: str, lr: float, momentum: float = 0.0, beta1: float = 0.9) -> float:
    """The threshold the (preconditioned, for Adam) sharpness is compared with.

    ``momentum`` is β of heavy ball, Nesterov and SGD with momentum; ``beta1`` is Adam's β₁.

    >>> stability_threshold("gd", 0.1), round(stability_threshold("adam", 0.1), 6)
    (20.0, 380.0)
    """
    _check(name, lr, momentum)
    if name == "adam":
        return adam_threshold(lr, beta1)
    if name == "nesterov":
        return nesterov_threshold(lr, momentum)
    if name == "heavy-ball" or momentum > 0:
        return heavy_ball_threshold(lr, momentum)
    return gd_threshold(lr)


def make_optimizer(name: str, params: Iterable[torch.nn.Parameter], lr: float, *, momentum: float = 0.0,
                   beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8) -> torch.optim.Optimizer:
    """The PyTorch optimizer behind ``name``.

    ``gd`` and ``sgd`` are the same update (the difference is the batch, chosen by
    the training loop); ``momentum`` > 0 turns them into heavy ball.
    """
    _check(name, lr, momentum)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=(beta1, beta2), eps=eps)
    if name in ("heavy-ball", "nesterov") and momentum == 0:
        raise ValueError(f"{name} needs momentum > 0")
    return torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=name == "nesterov")


def adam_preconditioner(optimizer: torch.optim.Adam, params: Iterable[torch.nn.Parameter]) -> torch.Tensor:
    """Adam's diagonal preconditioner P = √v̂ + ε as a flat vector (parameter order of ``params``).

    v̂ = v / (1 − β₂^t) is the bias-corrected second moment. Raises if Adam has not stepped yet.
    """
    group = optimizer.param_groups[0]
    beta2, eps = group["betas"][1], group["eps"]
    parts = []
    for p in params:
        state = optimizer.state.get(p)
        if not state:
            raise ValueError("Adam has no second-moment estimate yet; take a step first")
        step = float(state["step"])
        parts.append((state["exp_avg_sq"] / (1 - beta2 ** step)).sqrt().add(eps).reshape(-1))
    return torch.cat(parts)

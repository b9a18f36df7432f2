"""Optimizers and their stability thresholds.

The optimizers are PyTorch's own (``torch.optim.SGD`` and ``torch.optim.Adam``),
so what the book measures is what practitioners run. Conventions, with
gradient g_t, step size η and momentum β:

* **GD / SGD** (``"gd"``, ``"sgd"``): θ ← θ − η g.
* **Heavy ball** (``"heavy_ball"``, PyTorch ``SGD(momentum=β)``): v ← β v + g, θ ← θ − η v.
* **Nesterov** (``"nesterov"``, PyTorch ``SGD(momentum=β, nesterov=True)``): v ← β v + g,
  θ ← θ − η (g + β v).
* **Adam** (``"adam"``; β₁, β₂, ε): θ ← θ − η m̂ / (√v̂ + ε).

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

The first three formulas are derived (and defined, once) in :mod:`eoslib.quadratic`;
:func:`stability_threshold` maps an optimizer onto them (SGD with momentum is heavy
ball) and adds Adam's. For Adam the threshold applies to the *preconditioned*
sharpness λ_max(P⁻¹H) with P = diag(√v̂ + ε) (Cohen et al., 2022); with β₁ = 0.9 it
is 38/η.

References: Cohen et al., ICLR 2021 (GD, momentum); Cohen et al., *Adaptive
Gradient Methods at the Edge of Stability*, 2022 (Adam).
"""

from __future__ import annotations

from typing import Iterable

import torch

from . import quadratic
from .quadratic import check_step

__all__ = ["OPTIMIZERS", "adam_threshold", "stability_threshold", "validate", "make_optimizer",
           "adam_preconditioner"]

OPTIMIZERS = ("gd", "sgd", "heavy_ball", "nesterov", "adam")


def adam_threshold(lr: float, beta1: float) -> float:
    """(2 + 2β₁)/((1 − β₁)η), the threshold of Adam's preconditioned sharpness.

    >>> round(adam_threshold(0.001, 0.9), 6)
    38000.0
    """
    return (2.0 + 2.0 * beta1) / ((1.0 - beta1) * lr)


def validate(name: str, lr: float, momentum: float = 0.0, beta1: float = 0.9, beta2: float = 0.999) -> None:
    """ValueError (one line) unless ``name`` is an optimizer of :data:`OPTIMIZERS` with valid settings.

    η > 0 and β ∈ [0, 1) are checked by :func:`eoslib.quadratic.check_step`; heavy ball
    and Nesterov need β > 0; Adam needs β₁, β₂ ∈ [0, 1).
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; valid: {', '.join(OPTIMIZERS)}")
    check_step(lr, momentum)
    if name in ("heavy_ball", "nesterov") and momentum == 0:
        raise ValueError(f"{name} needs momentum > 0 (momentum=0 is plain gd)")
    if name == "adam":
        for label, beta in (("beta1", beta1), ("beta2", beta2)):
            try:
                check_step(1.0, beta)
            except ValueError:
                raise ValueError(f"Adam's {label}={beta!r} must lie in [0, 1)") from None


def stability_threshold(name: str, lr: float, momentum: float = 0.0, beta1: float = 0.9) -> float:
    """The threshold the (preconditioned, for Adam) sharpness is compared with.

    ``momentum`` is β of heavy ball, Nesterov and SGD with momentum; ``beta1`` is Adam's β₁.

    >>> [round(stability_threshold(*args), 6) for args in [("gd", 0.1), ("heavy_ball", 0.1, 0.9), ("adam", 0.1)]]
    [20.0, 38.0, 380.0]
    """
    validate(name, lr, momentum, beta1)
    if name == "adam":
        return adam_threshold(lr, beta1)
    method = "nesterov" if name == "nesterov" else "heavy_ball" if momentum > 0 else "gd"
    return quadratic.threshold(method, lr, momentum)


def make_optimizer(name: str, params: Iterable[torch.nn.Parameter], lr: float, *, momentum: float = 0.0,
                   beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8) -> torch.optim.Optimizer:
    """The PyTorch optimizer behind ``name``.

    ``gd`` and ``sgd`` are the same update (the difference is the batch, chosen by
    the training loop); ``momentum`` > 0 turns them into heavy ball.
    """
    validate(name, lr, momentum, beta1, beta2)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=(beta1, beta2), eps=eps)
    return torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=name == "nesterov")


def adam_preconditioner(optimizer: torch.optim.Adam, params: Iterable[torch.nn.Parameter]) -> torch.Tensor:
    """Adam's diagonal preconditioner P = √v̂ + ε as a flat vector (parameter order of ``params``).

    Pass the *trainable* parameters (:func:`eoslib.hessian.hvp.trainable`), the space
    of the Hessian. v̂ = v / (1 − β₂^t) is the bias-corrected second moment. Raises if
    Adam has not stepped yet.
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

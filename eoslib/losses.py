"""Losses in the paper's conventions.

Notation: a model maps an input batch to outputs ``f`` of shape ``(n, k)``;
targets are one-hot ``y`` of shape ``(n, k)`` for MSE, or integer labels of
shape ``(n,)`` for cross-entropy.

* **MSE** (Cohen et al., 2021, App. C):
  :math:`L = \\frac1n \\sum_i \\tfrac12 \\lVert f(x_i) - y_i \\rVert^2`
  -- one half of the squared error *summed over outputs*, *averaged over
  examples*. With this normalisation the Gauss-Newton part of the Hessian is
  :math:`\\frac1n\\sum_i J_i^\\top J_i`, with no factor 2 and no 1/k.
* **Cross-entropy**: :math:`L = \\frac1n \\sum_i -\\log \\mathrm{softmax}(f(x_i))_{y_i}`.
  One-hot targets are accepted too (their argmax is used).

Every loss returns the *mean* over examples, a 0-dim tensor; this is the
``loss_fn(outputs, targets)`` contract of :mod:`eoslib.hessian` and
:mod:`eoslib.train`. Sequence models return ``(n, T, k)`` outputs; both losses
then average over all ``n*T`` positions.

Reference: J. Cohen et al., *Gradient Descent on Neural Networks Typically
Occurs at the Edge of Stability*, ICLR 2021.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _flatten(outputs: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Merge leading (batch, time) axes so each row is one prediction."""
    k = outputs.shape[-1]
    one_hot = targets.is_floating_point() and targets.dim() == outputs.dim()
    return outputs.reshape(-1, k), (targets.reshape(-1, k) if one_hot else targets.reshape(-1))


def mse(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """½‖f − y‖² summed over outputs, averaged over examples.

    Integer labels are one-hot encoded on the fly.

    >>> f = torch.tensor([[1.0, 0.0], [0.0, 0.0]]); y = torch.tensor([[0.0, 0.0], [0.0, 2.0]])
    >>> float(mse(f, y))  # (½·1 + ½·4) / 2
    1.25
    """
    outputs, targets = _flatten(outputs, targets)
    if not targets.is_floating_point():
        targets = F.one_hot(targets, outputs.shape[-1]).to(outputs.dtype)
    return 0.5 * (outputs - targets).pow(2).sum(dim=-1).mean()


def cross_entropy(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean softmax cross-entropy; one-hot targets are reduced to labels.

    >>> float(cross_entropy(torch.zeros(3, 4), torch.tensor([0, 1, 2]))) == float(torch.log(torch.tensor(4.0)))
    True
    """
    outputs, targets = _flatten(outputs, targets)
    if targets.is_floating_point():
        targets = targets.argmax(dim=-1)
    return F.cross_entropy(outputs, targets)


def accuracy(outputs: torch.Tensor, targets: torch.Tensor) -> float:
    """Fraction of rows whose argmax matches the label (or the one-hot target's argmax).

    >>> accuracy(torch.tensor([[2.0, 1.0], [0.0, 3.0]]), torch.tensor([0, 0]))
    0.5
    """
    outputs, targets = _flatten(outputs, targets)
    if targets.is_floating_point():
        targets = targets.argmax(dim=-1)
    return (outputs.argmax(dim=-1) == targets).double().mean().item()


LOSSES: dict[str, LossFn] = {"mse": mse, "ce": cross_entropy}


def get_loss(name: str) -> LossFn:
    """Look a loss up by name (``"mse"`` or ``"ce"``)."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; valid: {', '.join(LOSSES)}")
    return LOSSES[name]

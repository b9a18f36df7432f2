"""Self-stabilization: why GD at the edge of stability does not blow up.

Damian, Nichani & Lee (ICLR 2023) explain the edge of stability with the
*third-order* Taylor term of the loss. Let S(θ) = λ_max(∇²L(θ)) be the
sharpness, u its unit eigenvector, and θ* a point with S(θ*) = 2/η and
⟨∇L(θ*), u⟩ = 0. Write a GD iterate as θ = θ* + x u + (rest) and let
y = ⟨∇S, θ − θ*⟩ ≈ S(θ) − 2/η. Then

    ∇L(θ* + xu) ≈ ∇L(θ*) + x S u + ½ x² ∇S(θ*),

and one GD step gives, to leading order, the **reduced dynamics**

    x_{t+1} = −(1 + η y_t) x_t,
    y_{t+1} = y_t + η (α − β x_t² / 2),

with α = −⟨∇L, ∇S⟩ (progressive sharpening: the rate at which GD would raise
S without the oscillation) and β = ‖∇S‖² (how strongly the oscillation lowers
it). While y > 0 (S > 2/η) |x| grows; once ½βx² > α the oscillation pushes y
down; with y < 0 |x| shrinks, and sharpening starts again. :func:`reduced_dynamics`
iterates the map. Summing the y-update over T steps gives the exact identity

    (1/T) Σ_t x_t² = 2α/β − 2 (y_T − y_0) / (η β T),

so whenever y stays bounded the time average of x² is 2α/β (their prediction
⟨x²⟩ = 2α/β). For small η the orbits are closed curves of the conserved
quantity E(x, y) = y² + βx²/2 − α log x² of the continuous-time limit
(:func:`conserved_quantity`); its minimum is at y = 0, x² = 2α/β.

**Stable GD.** Averaged over the oscillation, GD follows projected gradient
descent onto the stable set M = {θ : S(θ) ≤ 2/η, ⟨∇L(θ), u(θ)⟩ = 0},
θ†_{t+1} = proj_M(θ†_t − η∇L(θ†_t)) (Damian et al.'s constrained trajectory);
the projection adds −½ησ²∇S with σ² = 2α/β while S is at 2/η.
:func:`stable_gd` computes it with the linearised projection of
:func:`eoslib.central_flow.projected_step` (several critical eigenvalues
included: σ² becomes a matrix Σ), and :func:`oscillation` measures GD's
displacement from it along the critical eigenvectors, whose mean square the
theory predicts to be tr Σ (= 2α/β with one critical eigenvalue).

:func:`sharpening_terms` measures S, α and β of a network, with ∇S from
:func:`eoslib.hessian.sharpness_gradient` (third derivatives by autograd).

Reference: A. Damian, E. Nichani, J. D. Lee. Self-Stabilization: The Implicit
Bias of Gradient Descent at the Edge of Stability. ICLR 2023.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from . import hessian
from .central_flow import Flow, central_flow

# ---------------------------------------------------------------- the reduced 2-D model


def reduced_dynamics(x0: float, y0: float, alpha: float, beta: float, lr: float,
                     steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Iterate x ← −(1 + ηy)x, y ← y + η(α − βx²/2) for ``steps`` steps (float64).

    Returns:
        ``(x, y)``, arrays of length ``steps + 1`` (index t = 0..steps).

    >>> x, y = reduced_dynamics(0.1, 0.0, alpha=1.0, beta=2.0, lr=0.1, steps=2)
    >>> x.round(6).tolist(), y.round(6).tolist()
    ([0.1, -0.1, 0.10099], [0.0, 0.099, 0.198])
    """
    if steps < 0 or not lr > 0 or not beta > 0:
        raise ValueError(f"need steps >= 0, lr > 0 and beta > 0 (got {steps}, {lr}, {beta})")
    x, y = np.empty(steps + 1), np.empty(steps + 1)
    x[0], y[0] = x0, y0
    for t in range(steps):
        x[t + 1] = -(1 + lr * y[t]) * x[t]
        y[t + 1] = y[t] + lr * (alpha - beta * x[t] ** 2 / 2)
        if not (math.isfinite(x[t + 1]) and math.isfinite(y[t + 1])):
            raise ValueError(f"the reduced dynamics diverged at step {t + 1}")
    return x, y


def conserved_quantity(x: np.ndarray, y: np.ndarray, alpha: float, beta: float) -> np.ndarray:
    """E(x, y) = y² + βx²/2 − α log x², constant along the continuous-time limit of the map.

    (With z = log x², dz/dt = 2ηy and dy/dt = η(α − βeᶻ/2), so dE/dt = 0.)

    >>> float(conserved_quantity(np.array([1.0]), np.array([0.0]), alpha=1.0, beta=2.0)[0])
    1.0
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    return y ** 2 + beta * x ** 2 / 2 - alpha * np.log(x ** 2)


# ---------------------------------------------------------------- measured on a network


@dataclass(frozen=True)
class SharpeningTerms:
    """S, α, β at one point (:func:`sharpening_terms`)."""

    sharpness: float  # S = λ_max(∇²L)
    alpha: float  # α = −⟨∇L, ∇S⟩, progressive sharpening
    beta: float  # β = ‖∇S‖², self-stabilization

    @property
    def predicted_x2(self) -> float:
        """2α/β (0 if α ≤ 0: nothing sharpens, nothing needs to oscillate)."""
        return max(0.0, 2 * self.alpha / self.beta)


def sharpening_terms(model: nn.Module, loss_fn, inputs: torch.Tensor, targets: torch.Tensor, *,
                     tol: float = 1e-5, v0: torch.Tensor | None = None, seed: int = 0) -> SharpeningTerms:
    """S, α = −⟨∇L, ∇S⟩ and β = ‖∇S‖² of the full-batch loss at the model's parameters.

    The top eigenpair comes from Lanczos (:func:`eoslib.hessian.top_eigenpairs`),
    ∇S = ∇_θ(uᵀ∇²L(θ)u) from :func:`eoslib.hessian.sharpness_gradient`.
    """
    op = hessian.HVP(model, loss_fn, inputs, targets)
    g = op.gradient().detach()
    res = hessian.lanczos(op, op.dim, 1, tol=tol, v0=v0, seed=seed)
    u = res.vectors[0].detach()
    grad_s = hessian.sharpness_gradient(model, loss_fn, inputs, targets, u / u.norm())
    return SharpeningTerms(float(res.values[0]), -float(g.double() @ grad_s.double()), float(grad_s.double().norm() ** 2))


def stable_gd(model: nn.Module, loss_fn, inputs: torch.Tensor, targets: torch.Tensor, lr: float, steps: int, *,
              k: int = 8, window: float = 0.02, tol: float = 1e-4, seed: int = 0,
              keep_vectors: bool = True) -> Flow:
    """Stable GD θ†_{t+1} = proj_M(θ†_t − η∇L(θ†_t)), from the model's parameters, for ``steps`` steps.

    The projection onto M is linearised at θ†_t: Newton steps along the critical
    eigenvectors (eigenvalues within ``window`` of 2/η), and the Σ term that keeps
    them ≤ 2/η (:func:`eoslib.central_flow.projected_step` with ``newton=True``,
    ``dt=1``). Before any eigenvalue is critical, stable GD is GD.

    Returns:
        A :class:`~eoslib.central_flow.Flow` recorded at every step (with the
        critical eigenvectors if ``keep_vectors``, for :func:`oscillation`).
    """
    return central_flow(model, loss_fn, inputs, targets, lr, steps, dt=1.0, k=k, window=window, tol=tol,
                        seed=seed, newton=True, keep_vectors=keep_vectors)


def oscillation(params: list[torch.Tensor] | torch.Tensor, stable: Flow) -> tuple[np.ndarray, np.ndarray]:
    """GD's squared displacement from stable GD along the critical eigenvectors, and its prediction.

    x_t = U_tᵀ(θ_t − θ†_t), U_t the critical eigenvectors of stable GD at step t;
    returns (‖x_t‖², tr Σ_t) per step. With one critical eigenvalue
    ‖x_t‖² = x_t² and tr Σ_t = σ² (≈ 2α/β); steps with no critical eigenvalue give (0, 0).

    Args:
        params: GD's iterates θ_0, θ_1, … (flat), one per step of ``stable``'s records.
        stable: :func:`stable_gd` from the same start, recorded every step with vectors.
    """
    if not stable.vectors or len(stable.vectors) != len(stable.params):
        raise ValueError("stable GD must be recorded at every step with keep_vectors=True")
    n = min(len(params), len(stable.params))
    x2, pred = np.zeros(n), np.zeros(n)
    for t in range(n):
        u = stable.vectors[t]
        if len(u):
            x = u @ (params[t].to(u.dtype) - stable.params[t])
            x2[t], pred[t] = float(x.double().pow(2).sum()), float(np.trace(stable.sigma[t]))
    return x2, pred


__all__ = ["reduced_dynamics", "conserved_quantity", "SharpeningTerms", "sharpening_terms", "stable_gd",
           "oscillation"]

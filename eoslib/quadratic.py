"""Gradient descent, heavy ball and Nesterov on a quadratic, simulated and in closed form.

The model problem of the book is the quadratic

    L(θ) = ½ θᵀAθ,   ∇L(θ) = Aθ,   ∇²L = A   (A symmetric, eigenvalues λ_1 ≥ … ≥ λ_d),

whose sharpness λ_max(∇²L) = λ_1 is the same everywhere. Gradient descent
θ' = θ − η∇L(θ) = (I − ηA)θ acts on each eigendirection q_i separately: its
coordinate is multiplied by the factor 1 − ηλ_i at every step, so after t steps

    ⟨q_i, θ_t⟩ = (1 − ηλ_i)^t ⟨q_i, θ_0⟩.

GD therefore converges iff every |1 − ηλ_i| < 1, i.e. iff λ_max < 2/η; it
oscillates with a sign flip along directions with 1/η < λ_i < 2/η and diverges
along directions with λ_i > 2/η.

Momentum follows PyTorch's ``torch.optim.SGD`` convention (gradient g = ∇L(θ),
buffer v, v_0 = 0):

    heavy ball  v' = βv + g,   θ' = θ − ηv'
    Nesterov    v' = βv + g,   θ' = θ − η(g + βv')

On a quadratic both are linear maps of (θ, v) per eigendirection; they are
stable iff λ_max is below :func:`heavy_ball_threshold` (2 + 2β)/η, respectively
:func:`nesterov_threshold` (2 + 2β)/((1 + 2β)η). These formulas and the dispatcher
:func:`threshold` are the book's one definition of a stability threshold (pure Python,
no torch import); :func:`eoslib.optim.stability_threshold` maps each optimizer onto them.
The methods are named ``"gd"``, ``"heavy_ball"`` and ``"nesterov"`` everywhere in eoslib.

Everything here is a pure function of numpy float64 arrays.

References:
    B. T. Polyak. Some methods of speeding up the convergence of iteration methods. 1964.
    Y. Nesterov. Introductory Lectures on Convex Optimization. 2004.
    J. Cohen et al. Gradient Descent on Neural Networks Typically Occurs at the Edge
    of Stability. ICLR 2021 (appendix on momentum thresholds).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

METHODS = ("gd", "heavy_ball", "nesterov")


@dataclass(frozen=True)
class Trajectory:
    """Iterates and losses of one run on a quadratic.

    Attributes:
        thetas: iterates θ_0 … θ_T, shape (T + 1, d).
        losses: L(θ_t) = ½ θ_tᵀAθ_t, shape (T + 1,).
    """

    thetas: np.ndarray
    losses: np.ndarray


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; valid: {', '.join(METHODS)}")


def check_step(lr: float, beta: float = 0.0) -> None:
    """The one check of a step size η > 0 (finite) and a momentum β ∈ [0, 1); ValueError otherwise.

    >>> check_step(0.1, 0.9)
    >>> check_step(0.0)
    Traceback (most recent call last):
    ...
    ValueError: step size lr=0.0 must be a positive finite number
    """
    if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not 0 < lr < float("inf"):
        raise ValueError(f"step size lr={lr!r} must be a positive finite number")
    if isinstance(beta, bool) or not isinstance(beta, numbers.Real) or not 0 <= beta < 1:
        raise ValueError(f"momentum {beta!r} must lie in [0, 1)")


def _as_matrix(A) -> np.ndarray:
    """A number becomes the 1×1 matrix [[a]] (a 1-D quadratic of curvature a)."""
    A = np.atleast_2d(np.asarray(A, dtype=np.float64))
    if A.shape[0] != A.shape[1] or not np.allclose(A, A.T):
        raise ValueError(f"A must be a symmetric square matrix, got shape {A.shape}")
    return A


def loss(A, thetas) -> np.ndarray:
    """L(θ) = ½ θᵀAθ for one iterate (shape (d,)) or a stack of them (shape (T, d)).

    >>> float(loss([[2.0]], [3.0]))
    9.0
    """
    A = _as_matrix(A)
    thetas = np.asarray(thetas, dtype=np.float64)
    return 0.5 * np.einsum("...i,ij,...j->...", thetas, A, thetas)


def run(A, theta0, lr: float, steps: int, method: str = "gd", beta: float = 0.0) -> Trajectory:
    """Simulate ``steps`` steps of GD, heavy ball or Nesterov on L(θ) = ½ θᵀAθ.

    The gradient is g = Aθ. Updates (PyTorch convention, v_0 = 0):
    ``gd`` θ' = θ − ηg; ``heavy_ball`` v' = βv + g, θ' = θ − ηv';
    ``nesterov`` v' = βv + g, θ' = θ − η(g + βv').

    Args:
        A: symmetric matrix, shape (d, d), or a number (1-D quadratic).
        theta0: initial point θ_0, shape (d,) (a number for d = 1).
        lr: step size η > 0.
        steps: number of steps T.
        method: one of :data:`METHODS`.
        beta: momentum β ∈ [0, 1) (ignored by ``gd``).

    Returns:
        A :class:`Trajectory` with thetas of shape (T + 1, d) and losses of shape (T + 1,).
        Diverging runs overflow to inf without warnings.

    >>> traj = run(1.0, 1.0, lr=0.5, steps=3)
    >>> traj.thetas[:, 0].tolist()
    [1.0, 0.5, 0.25, 0.125]
    """
    _check_method(method)
    check_step(lr, beta)
    A = _as_matrix(A)
    theta = np.atleast_1d(np.asarray(theta0, dtype=np.float64)).copy()
    v = np.zeros_like(theta)
    thetas = np.empty((steps + 1, theta.size))
    thetas[0] = theta
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(steps):
            g = A @ theta
            if method == "gd":
                theta = theta - lr * g
            else:
                v = beta * v + g
                theta = theta - lr * (v if method == "heavy_ball" else g + beta * v)
            thetas[t + 1] = theta
        losses = loss(A, thetas)
    return Trajectory(thetas=thetas, losses=losses)


def multiplier(lr: float, curvature):
    """Per-step factor 1 − ηλ of GD along an eigendirection of curvature λ.

    >>> float(multiplier(0.1, 15.0))   # 1/η < λ < 2/η: sign flip, shrinking
    -0.5
    """
    return 1.0 - lr * np.asarray(curvature, dtype=np.float64)


def gd_closed_form(A, theta0, lr: float, steps: int) -> np.ndarray:
    """GD iterates in closed form, θ_t = Q diag((1 − ηλ_i)^t) Qᵀ θ_0 with A = Q diag(λ) Qᵀ.

    Args:
        A: symmetric matrix, shape (d, d), or a number.
        theta0: θ_0, shape (d,).
        lr: step size η.
        steps: T.

    Returns:
        Iterates θ_0 … θ_T, shape (T + 1, d); equal to ``run(A, theta0, lr, steps).thetas``.

    >>> gd_closed_form(4.0, 1.0, lr=0.5, steps=2)[:, 0].tolist()   # factor 1 − 0.5·4 = −1
    [1.0, -1.0, 1.0]
    """
    A = _as_matrix(A)
    lam, Q = np.linalg.eigh(A)
    coords = Q.T @ np.atleast_1d(np.asarray(theta0, dtype=np.float64))
    t = np.arange(steps + 1)[:, None]
    with np.errstate(over="ignore"):
        return (multiplier(lr, lam)[None, :] ** t * coords[None, :]) @ Q.T


def iteration_matrix(lr: float, curvature: float, method: str = "gd", beta: float = 0.0) -> np.ndarray:
    """The linear map one step applies along an eigendirection of curvature λ.

    ``gd`` acts on θ alone (1×1: [1 − ηλ]); momentum methods act on (θ, v):
    heavy ball [[1 − ηλ, −ηβ], [λ, β]], Nesterov [[1 − ηλ(1 + β), −ηβ²], [λ, β]].
    The method is stable along that direction iff the spectral radius is < 1.

    >>> iteration_matrix(0.1, 10.0, "heavy_ball", 0.5).tolist()
    [[0.0, -0.05], [10.0, 0.5]]
    """
    _check_method(method)
    lam = float(curvature)
    if method == "gd":
        return np.array([[1.0 - lr * lam]])
    if method == "heavy_ball":
        return np.array([[1.0 - lr * lam, -lr * beta], [lam, beta]])
    return np.array([[1.0 - lr * lam * (1.0 + beta), -lr * beta**2], [lam, beta]])


def spectral_radius(lr: float, curvature: float, method: str = "gd", beta: float = 0.0) -> float:
    """Largest |eigenvalue| of :func:`iteration_matrix`; < 1 means the direction converges.

    >>> round(spectral_radius(0.1, 25.0), 6)   # |1 − 0.1·25|
    1.5
    """
    return float(np.max(np.abs(np.linalg.eigvals(iteration_matrix(lr, curvature, method, beta)))))


def gd_threshold(lr: float) -> float:
    """Largest stable curvature of GD with step size η: 2/η.

    >>> gd_threshold(0.01)
    200.0
    """
    return 2.0 / lr


def heavy_ball_threshold(lr: float, beta: float) -> float:
    """Largest stable curvature of heavy-ball momentum: (2 + 2β)/η.

    Along a direction of curvature λ the characteristic polynomial of the
    iteration is z² − (1 + β − ηλ)z + β, which has the root z = −1 exactly at
    ηλ = 2 + 2β (Polyak, 1964).

    >>> heavy_ball_threshold(0.5, 0.5)
    6.0
    """
    return (2.0 + 2.0 * beta) / lr


def nesterov_threshold(lr: float, beta: float) -> float:
    """Largest stable curvature of Nesterov momentum (PyTorch convention): (2 + 2β)/((1 + 2β)η).

    The characteristic polynomial is z² − (1 + β)(1 − ηλ)z + β(1 − ηλ); it has the
    root z = −1 exactly at ηλ(1 + 2β) = 2 + 2β.

    >>> round(nesterov_threshold(0.1, 0.5), 6)
    15.0
    """
    return (2.0 + 2.0 * beta) / ((1.0 + 2.0 * beta) * lr)


THRESHOLDS = {
    "gd": lambda lr, beta=0.0: gd_threshold(lr),
    "heavy_ball": heavy_ball_threshold,
    "nesterov": nesterov_threshold,
}


def threshold(method: str, lr: float, beta: float = 0.0) -> float:
    """Largest stable curvature of ``method`` (one of :data:`METHODS`) at step size η and momentum β.

    >>> threshold("gd", 0.5), threshold("heavy_ball", 0.5, 0.5)
    (4.0, 6.0)
    """
    _check_method(method)
    check_step(lr, beta)
    return THRESHOLDS[method](lr, beta)

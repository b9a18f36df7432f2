"""The two-layer scalar network, a case of the edge of stability that can be proved.

The network f(x) = a·b·x with one training example (x, y) = (1, 1) and the
square loss has the loss

    L(a, b) = ½ (ab − 1)²,        r = ab − 1 (the residual),
    ∇L = r (b, a),                ∇²L = [[b², 2ab − 1], [2ab − 1, a²]].

The minima form the hyperbola ab = 1, where ∇²L = [[b², 1], [1, a²]] has the
eigenvalues 0 and a² + b²: the sharpness of a minimum is a² + b².

* **Gradient flow** θ̇ = −∇L conserves the imbalance c = a² − b², so from (a, b)
  it lands on the minimum with ab = 1 and a² − b² = c, whose sharpness is the
  *gradient-flow-solution (GFS) sharpness* S(a, b) = √(c² + 4).
* **Gradient descent** a' = a − η r b, b' = b − η r a shrinks the imbalance
  exactly: a'² − b'² = (1 − η² r²)(a² − b²), and the residual obeys
  r' = r (1 − η(a² + b²) + η² r (1 + r)). So S decreases along GD whenever
  η|r| ≤ √2, and a limit minimum with sharpness above 2/η is impossible unless
  GD lands on it exactly in finitely many steps.

The module also holds the *minimalist example* L(x, y) = ¼ (x²y² − 1)² of Zhu
et al. (ICLR 2023), written with the same functions (``model="minimalist"``):
its minima x²y² = 1 have sharpness 2(x² + y²), its gradient flow also conserves
x² − y², and GD shrinks x² − y² by the factor 1 − η² r² x² y² per step.

All functions are pure NumPy (float64) and broadcast over arrays of parameters,
so a whole grid of initialisations runs at once.

References: I. Kreisler, M. Shpigel Nacson, D. Soudry, Y. Carmon, *Gradient
Descent Monotonically Decreases the Sharpness of Gradient Flow Solutions in
Scalar Networks and Beyond*, ICML 2023. X. Zhu, Z. Wang, X. Wang, M. Zhou,
R. Ge, *Understanding Edge-of-Stability Training Dynamics with a Minimalist
Example*, ICLR 2023.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MODELS = ("scalar", "minimalist")


def _check(model: str) -> None:
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; valid: {', '.join(MODELS)}")


def _arrays(a, b):
    return np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)


def residual(a, b, model: str = "scalar"):
    """r = ab − 1 (scalar network) or x²y² − 1 (minimalist example)."""
    _check(model)
    a, b = _arrays(a, b)
    return a * b - 1.0 if model == "scalar" else (a * b) ** 2 - 1.0


def loss(a, b, model: str = "scalar"):
    """L = ½ r² (scalar network) or ¼ r² (minimalist example).

    >>> float(loss(2.0, 1.0)), float(loss(2.0, 1.0, "minimalist"))
    (0.5, 2.25)
    """
    r = residual(a, b, model)
    return 0.5 * r**2 if model == "scalar" else 0.25 * r**2


def gradient(a, b, model: str = "scalar"):
    """∇L as a pair: r(b, a) (scalar) or r(x y², x² y) (minimalist)."""
    a, b = _arrays(a, b)
    r = residual(a, b, model)
    if model == "scalar":
        return r * b, r * a
    return r * a * b**2, r * a**2 * b


def hessian(a, b, model: str = "scalar"):
    """The 2×2 Hessian entries (h_aa, h_ab, h_bb), each broadcast like a and b.

    Scalar: [[b², 2ab − 1], [2ab − 1, a²]]. Minimalist:
    [[2x²y⁴ + r y², 4x³y³ − 2xy], [·, 2x⁴y² + r x²]] with r = x²y² − 1.
    """
    a, b = _arrays(a, b)
    if model == "scalar":
        return b**2, 2 * a * b - 1.0, a**2
    r = residual(a, b, model)
    return 2 * a**2 * b**4 + r * b**2, 2 * a**3 * b**3 + 2 * r * a * b, 2 * a**4 * b**2 + r * a**2


def sharpness(a, b, model: str = "scalar"):
    """λ_max(∇²L(a, b)), in closed form for a symmetric 2×2 matrix.

    At a minimum it is a² + b² (scalar) or 2(x² + y²) (minimalist).

    >>> float(sharpness(2.0, 0.5)), float(sharpness(2.0, 0.5, "minimalist"))
    (4.25, 8.5)
    """
    p, q, s = hessian(a, b, model)
    return 0.5 * (p + s) + np.sqrt(0.25 * (p - s) ** 2 + q**2)


def imbalance(a, b):
    """c = a² − b², conserved by gradient flow (in both models)."""
    a, b = _arrays(a, b)
    return a**2 - b**2


def gfs_sharpness(a, b, model: str = "scalar"):
    """Sharpness of the minimum that gradient flow reaches from (a, b).

    Gradient flow keeps c = a² − b² and ends on the minimum set, where
    (a² + b²)² = c² + 4(ab)² = c² + 4. So S = √(c² + 4) (scalar) and
    2√(c² + 4) (minimalist). (From the line a = −b, c = 0, the scalar flow
    reaches the saddle 0 instead; S is still defined there.)

    >>> float(gfs_sharpness(1.0, 1.0)), float(gfs_sharpness(2.0, 0.5))
    (2.0, 4.25)
    """
    _check(model)
    s = np.sqrt(imbalance(a, b) ** 2 + 4.0)
    return s if model == "scalar" else 2.0 * s


def gf_limit(a, b, model: str = "scalar"):
    """The minimum (a*, b*) that gradient flow reaches from (a, b) (if a + b ≠ 0).

    It solves a*² − b*² = a² − b² on the minimum set: a*² = (c + √(c² + 4))/2,
    a*b* = 1 (scalar; for the minimalist example a*²b*² = 1), with the sign of
    a + b, which the flow preserves (d(a + b)/dt = −r(a + b) for the scalar net).
    """
    _check(model)
    a, b = _arrays(a, b)
    c = imbalance(a, b)
    a2 = 0.5 * (c + np.sqrt(c**2 + 4.0))
    sign = np.sign(a + b)
    return sign * np.sqrt(a2), sign / np.sqrt(a2)


def gd_step(a, b, lr: float, model: str = "scalar"):
    """One gradient descent step θ' = θ − η∇L(θ)."""
    ga, gb = gradient(a, b, model)
    return a - lr * ga, b - lr * gb


@dataclass
class Trajectory:
    """Iterates of GD (or gradient flow) from one or many initialisations."""

    a: np.ndarray  # shape (T + 1, *init_shape); NaN after divergence
    b: np.ndarray
    lr: float
    model: str

    @property
    def converged(self) -> np.ndarray:
        """Whether the last iterate is finite and has loss below 1e-12."""
        final = loss(self.a[-1], self.b[-1], self.model)
        return np.isfinite(final) & (final < 1e-12)

    def sharpness(self) -> np.ndarray:
        return sharpness(self.a, self.b, self.model)

    def gfs_sharpness(self) -> np.ndarray:
        return gfs_sharpness(self.a, self.b, self.model)

    def residual(self) -> np.ndarray:
        return residual(self.a, self.b, self.model)


def gd(a0, b0, lr, steps: int, model: str = "scalar", blowup: float = 1e6) -> Trajectory:
    """Run GD for ``steps`` steps from (a0, b0) (scalars or arrays of the same shape).

    ``lr`` is a step size, or an array of them broadcasting against (a0, b0).

    Iterates whose |a| or |b| exceed ``blowup`` are marked diverged (NaN from then on).
    """
    _check(model)
    a, b = np.broadcast_arrays(*_arrays(a0, b0))
    a, b = a.astype(np.float64).copy(), b.astype(np.float64).copy()
    out_a, out_b = np.empty((steps + 1, *a.shape)), np.empty((steps + 1, *a.shape))
    out_a[0], out_b[0] = a, b
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(steps):
            a, b = gd_step(a, b, lr, model)
            bad = ~(np.isfinite(a) & np.isfinite(b)) | (np.abs(a) > blowup) | (np.abs(b) > blowup)
            a, b = np.where(bad, np.nan, a), np.where(bad, np.nan, b)
            out_a[t + 1], out_b[t + 1] = a, b
    return Trajectory(out_a, out_b, lr, model)


def gradient_flow(a0, b0, time: float, n_steps: int = 2000, model: str = "scalar") -> Trajectory:
    """Gradient flow θ̇ = −∇L integrated with classical Runge–Kutta (RK4), ``n_steps`` steps."""
    _check(model)
    h = time / n_steps
    a, b = (x.astype(np.float64).copy() for x in np.broadcast_arrays(*_arrays(a0, b0)))
    out_a, out_b = np.empty((n_steps + 1, *a.shape)), np.empty((n_steps + 1, *a.shape))
    out_a[0], out_b[0] = a, b

    def field(a, b):
        ga, gb = gradient(a, b, model)
        return -ga, -gb

    for t in range(n_steps):
        k1 = field(a, b)
        k2 = field(a + 0.5 * h * k1[0], b + 0.5 * h * k1[1])
        k3 = field(a + 0.5 * h * k2[0], b + 0.5 * h * k2[1])
        k4 = field(a + h * k3[0], b + h * k3[1])
        a = a + h / 6 * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0])
        b = b + h / 6 * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1])
        out_a[t + 1], out_b[t + 1] = a, b
    return Trajectory(out_a, out_b, float("nan"), model)


def residual_factor(a, b, lr: float):
    """The exact factor of the scalar net's residual: r' = r · (1 − η(a² + b²) + η² r (1 + r))."""
    a, b = _arrays(a, b)
    r = a * b - 1.0
    return 1.0 - lr * (a**2 + b**2) + lr**2 * r * (1.0 + r)


def imbalance_factor(a, b, lr: float, model: str = "scalar"):
    """The exact factor of c = a² − b² per GD step: 1 − η²r² (scalar), 1 − η²r²x²y² (minimalist)."""
    a, b = _arrays(a, b)
    r = residual(a, b, model)
    return 1.0 - lr**2 * r**2 if model == "scalar" else 1.0 - lr**2 * r**2 * (a * b) ** 2


def bifurcation(lrs, a0: float, b0: float, steps: int = 3000, keep: int = 64, model: str = "scalar"):
    """For each step size, GD from (a0, b0): the last ``keep`` values of the product and the final sharpness.

    Returns ``(lrs, products, final_sharpness)``: products has shape (len(lrs), keep)
    (ab, or x²y² for the minimalist example; NaN if diverged); final_sharpness is
    the sharpness at the last iterate (meaningful where GD converged).
    """
    lrs = np.asarray(lrs, dtype=np.float64)
    traj = gd(np.full(lrs.shape, a0), np.full(lrs.shape, b0), lrs, steps, model)  # all step sizes at once
    products = (residual(traj.a[-keep:], traj.b[-keep:], model) + 1.0).T
    final = sharpness(traj.a[-1], traj.b[-1], model)
    return lrs, products, final


__all__ = ["MODELS", "Trajectory", "bifurcation", "gd", "gd_step", "gf_limit", "gfs_sharpness", "gradient",
           "gradient_flow", "hessian", "imbalance", "imbalance_factor", "loss", "residual", "residual_factor",
           "sharpness"]

"""The catapult mechanism on the uv model (Lewkowycz, Bahri, Dyer, Sohl-Dickstein & Gur-Ari, 2020).

The uv model is a two-layer linear network of width m on one example (x, y) = (1, 0):

    f = vᵀu / √m,    L = ½ f²,    u, v ∈ R^m,

trained by GD, u ← u − η f v/√m, v ← v − η f u/√m. Its neural tangent kernel
λ = ‖∇f‖² = (‖u‖² + ‖v‖²)/m is the curvature of L along the gradient, and at a
minimum (f = 0) the sharpness: ∇²L = ∇f∇fᵀ + f∇²f. One GD step maps (f, λ) exactly to

    f' = f (1 − ηλ + η² f² / m),
    λ' = λ + (η f² / m)(ηλ − 4).

For large m and f_0 of order 1, three regimes follow from λ_0 (Lewkowycz et al.):

* **lazy**, ηλ_0 < 2: |1 − ηλ| < 1, f → 0 geometrically, λ moves by O(1/m);
* **catapult**, 2 < ηλ_0 < 4: |f| grows (the loss spikes) until η²f²/m is of
  order 1; meanwhile λ *decreases* (ηλ − 4 < 0) until ηλ < 2, after which f → 0:
  training converges in a flatter region, with ηλ_final < 2;
* **divergent**, ηλ_0 > 4: λ increases with f and the run blows up.

:func:`uv_runs` simulates the model in its m-dimensional parameters for a grid of
ηλ_0 at once (NumPy, float64); :func:`regime` classifies a run.

Reference: A. Lewkowycz, Y. Bahri, E. Dyer, J. Sohl-Dickstein, G. Gur-Ari. The
Large Learning Rate Phase of Deep Learning: the Catapult Mechanism. arXiv:2003.02218, 2020.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class UVRuns:
    """GD on the uv model for several step sizes (one row per entry of ``lr_lambda0``)."""

    lr_lambda0: np.ndarray  # (g,) ηλ_0 of each run
    lr: np.ndarray  # (g,) the step sizes η = ηλ_0 / λ_0
    loss: np.ndarray  # (g, steps + 1) L_t = ½ f_t² (inf after a divergence)
    ntk: np.ndarray  # (g, steps + 1) λ_t = (‖u_t‖² + ‖v_t‖²)/m (inf after a divergence)
    width: int  # m


def uv_runs(lr_lambda0, *, width: int = 1000, steps: int = 300, seed: int = 0, max_loss: float = 1e12) -> UVRuns:
    """GD on the uv model from one Gaussian initialisation, at step sizes η = c/λ_0 for each c in ``lr_lambda0``.

    u_0, v_0 have i.i.d. N(0, 1) entries drawn from ``seed`` (shared by all runs),
    so λ_0 ≈ 2 and f_0 is of order 1. A run whose loss exceeds ``max_loss`` is
    stopped and its later records are inf.

    >>> r = uv_runs([1.0, 3.0], width=200, steps=100)
    >>> [regime(r, i) for i in range(2)]
    ['lazy', 'catapult']
    """
    c = np.atleast_1d(np.asarray(lr_lambda0, dtype=np.float64))
    if width < 1 or steps < 1 or not np.all(c > 0):
        raise ValueError("need width >= 1, steps >= 1 and positive ηλ_0 values")
    rng = np.random.default_rng(seed)
    u0, v0 = rng.standard_normal(width), rng.standard_normal(width)
    lam0 = (u0 @ u0 + v0 @ v0) / width
    lr = c / lam0
    u, v = np.tile(u0, (len(c), 1)), np.tile(v0, (len(c), 1))
    loss = np.full((len(c), steps + 1), np.inf)
    ntk = np.full((len(c), steps + 1), np.inf)
    alive = np.ones(len(c), dtype=bool)
    root = np.sqrt(width)
    for t in range(steps + 1):
        f = np.einsum("gi,gi->g", u, v) / root
        lt, nt = 0.5 * f ** 2, (np.einsum("gi,gi->g", u, u) + np.einsum("gi,gi->g", v, v)) / width
        alive &= np.isfinite(lt) & (lt <= max_loss)
        loss[alive, t], ntk[alive, t] = lt[alive], nt[alive]
        if t == steps or not alive.any():
            break
        step = (lr * f / root)[:, None]
        u, v = np.where(alive[:, None], u - step * v, u), np.where(alive[:, None], v - step * u, v)
    return UVRuns(c, lr, loss, ntk, width)


def regime(runs: UVRuns, i: int) -> str:
    """'lazy', 'catapult', 'divergent' or 'unclear' for run ``i`` of :func:`uv_runs`.

    * divergent: the loss became non-finite or exceeded the cap;
    * lazy: the loss never rose above L_0 and fell below 1e-6·L_0, and λ moved by
      less than 10%;
    * catapult: the loss rose above 2·L_0 (the spike), λ fell by more than 10%,
      the final ηλ is below 2 (a stable region) and the final loss is below L_0;
    * unclear: anything else (e.g. a run still on its way).
    """
    loss, ntk, lr = runs.loss[i], runs.ntk[i], runs.lr[i]
    if not np.all(np.isfinite(loss)):
        return "divergent"
    moved = ntk[-1] / ntk[0] - 1
    if loss.max() <= loss[0] and loss[-1] < 1e-6 * loss[0] and abs(moved) < 0.1:
        return "lazy"
    if loss.max() > 2 * loss[0] and moved < -0.1 and lr * ntk[-1] < 2 and loss[-1] < loss[0]:
        return "catapult"
    return "unclear"


__all__ = ["UVRuns", "uv_runs", "regime"]

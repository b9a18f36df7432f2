"""Summaries of edge-of-stability runs, and a probe of GD's oscillation.

Notation: GD takes steps θ_{t+1} = θ_t − η∇L(θ_t); the sharpness λ_max(∇²L(θ_t))
is measured at some steps t (``sharpness_steps``); the stability threshold is
2/η for GD (``run.threshold`` in general). Definitions used by the book's claim
checks, all on the *measured* values:

* **crossing step** c: the first measured step t with λ_max(θ_t) ≥ threshold
  (:func:`crossing_step`; ``None`` if it never happens);
* **return step** r, for runs that *start* above the threshold (then c = 0): the
  first measured step at which λ_max is back at the threshold after having dropped
  below it, e.g. after a catapult (:func:`return_step`);
* **ratio after crossing**: the median over measured steps t ≥ c of
  λ_max(θ_t) / threshold (:func:`median_ratio_after`); 1 means "exactly at 2/η";
* **loss increases** after c: the number of t ≥ c with L(θ_{t+1}) > L(θ_t)
  (:func:`loss_increases`);
* **loss drop** from c: L(θ_c) / L(θ_T), T the last recorded step
  (:func:`loss_drop`); ``start=0`` gives the drop from the initial loss;
* **late ratio**: the median ratio over the second half of the measurements,
  for runs without a meaningful crossing (SGD, the command line's summary):
  ``median_ratio_after(steps, values, threshold, late_start(steps))``.

Functions take plain sequences; :func:`edge_summary` takes a :class:`eoslib.train.Run`
(or anything with its fields) and applies them all.

:func:`gd_probe` continues GD from a model and records, per step, what happens
along the top Hessian eigenvector: the projection of the step θ_{t+1} − θ_t on
it (it flips sign at the edge of stability), the curvature along the gradient
gᵀHg/‖g‖², the sharpness at θ_t and at the midpoint (θ_t + θ_{t+1})/2, and the
curvature *along the step*, between the iterates (:func:`step_curvature`).

**The two-step view.** Once GD oscillates, θ_{t+2} ≈ θ_t, and its stability is a
property of the two-step map θ_t ↦ θ_{t+2}, not of λ_max at one iterate
(Ahn, Zhang & Sra, 2022). Two exact statements hold on a period-2 cycle
θ_0 → θ_1 → θ_0 of GD with step η:

* the curvature along the step, ⟨∇L(θ_1) − ∇L(θ_0), θ_1 − θ_0⟩ / ‖θ_1 − θ_0‖²,
  equals 2/η (from θ_1 − θ_0 = −η∇L(θ_0) = η∇L(θ_1));
* the cycle is linearly stable iff the spectral radius of the Jacobian of the
  two-step map, M = (I − η∇²L(θ_1))(I − η∇²L(θ_0)), is at most 1
  (:func:`two_step_radius`), whatever λ_max at θ_0 or θ_1 is.

Reference: J. Cohen et al., *Gradient Descent on Neural Networks Typically
Occurs at the Edge of Stability*, ICLR 2021.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
from torch import nn

from . import hessian
from .hessian.hvp import trainable

# ---------------------------------------------------------------- run summaries


def crossing_step(steps: Sequence, sharpness: Sequence[float], threshold: float):
    """First measured step t with ``sharpness ≥ threshold``, or None.

    ``steps`` may be step numbers or gradient-flow times τ = t·η (chapter 3); the
    matching entry is returned as a plain Python number.

    >>> crossing_step([0, 10, 20, 30], [3.0, 9.0, 10.2, 9.9], 10.0)
    20
    >>> crossing_step([0.0, 0.5, 1.0], [3.0, 9.0, 10.2], 10.0)
    1.0
    >>> crossing_step([0, 10], [3.0, 9.0], 10.0) is None
    True
    """
    for t, s in zip(steps, sharpness):
        if s >= threshold:
            return t.item() if hasattr(t, "item") else t
    return None


def return_step(steps: Sequence[int], sharpness: Sequence[float], threshold: float) -> tuple[int | None, int | None]:
    """(b, r): the first measured step b with ``sharpness < threshold``, and the first measured step r > b
    with ``sharpness ≥ threshold`` again; None where it does not happen.

    For a run that starts above the threshold, r is where it comes back to the edge after its collapse.

    >>> return_step([0, 10, 20, 30], [30.0, 9.0, 9.5, 10.1], 10.0)
    (10, 30)
    >>> return_step([0, 10, 20], [30.0, 9.0, 9.5], 10.0)
    (10, None)
    """
    below = next((int(t) for t, s in zip(steps, sharpness) if s < threshold), None)
    if below is None:
        return None, None
    later = [(t, s) for t, s in zip(steps, sharpness) if t > below]
    return below, crossing_step([t for t, _ in later], [s for _, s in later], threshold)


def median_ratio_after(steps: Sequence[int], sharpness: Sequence[float], threshold: float,
                       start: int) -> float:
    """Median of ``sharpness / threshold`` over the measured steps t ≥ ``start``.

    >>> median_ratio_after([0, 10, 20, 30], [3.0, 9.0, 10.2, 9.9], 10.0, 20)
    1.005
    """
    values = [s / threshold for t, s in zip(steps, sharpness) if t >= start]
    if not values:
        raise ValueError(f"no measurement at or after step {start}")
    return round(float(np.median(values)), 12)


def late_start(steps: Sequence[int], fraction: float = 0.5) -> int:
    """The first step of the last ``fraction`` of the measurements (the "late" window).

    >>> late_start([0, 10, 20, 30])
    20
    """
    if len(steps) == 0:
        raise ValueError("no measurements")
    return int(steps[min(len(steps) - 1, int(len(steps) * (1 - fraction)))])


def loss_increases(losses: Sequence[float], start: int = 0) -> int:
    """Number of steps t ≥ ``start`` with L(θ_{t+1}) > L(θ_t).

    >>> loss_increases([5.0, 4.0, 4.5, 3.0, 3.2, 1.0], start=1)
    2
    """
    losses = np.asarray(losses, dtype=np.float64)[start:]
    return int((np.diff(losses) > 0).sum())


def loss_drop(losses: Sequence[float], start: int = 0) -> float:
    """L(θ_start) / L(θ_T), T the last recorded step: how many times the loss fell.

    >>> loss_drop([5.0, 4.0, 4.5, 3.0, 3.2, 1.0], start=1)
    4.0
    """
    if not 0 <= start < len(losses):
        raise ValueError(f"start={start} outside the {len(losses)} recorded losses")
    first, last = float(losses[start]), float(losses[-1])
    return first / last if last != 0 else (math.inf if first > 0 else math.nan)


@dataclass(frozen=True)
class EdgeSummary:
    """The edge-of-stability numbers of one run (definitions in the module docstring)."""

    threshold: float  # 2/η for GD
    initial_sharpness: float  # λ_max at the first measurement
    peak_sharpness: float  # the largest measured λ_max
    peak_step: int  # where it was measured
    final_sharpness: float  # λ_max at the last measurement
    crossing: int | None  # crossing step c (None: never crossed)
    median_ratio: float  # median λ_max / threshold over measured t ≥ c (nan if never crossed)
    increases: int  # loss increases at t ≥ c (0 if never crossed)
    drop_from_crossing: float  # L(θ_c) / L(θ_T) (nan if never crossed)
    drop_overall: float  # L(θ_0) / L(θ_T)

    def __str__(self) -> str:  # wrapped to the book's 88-character code column
        if self.crossing is None:
            return (f"2/η = {self.threshold:.3g}: never crossed (sharpness {self.initial_sharpness:.3g} → "
                    f"peak {self.peak_sharpness:.3g})")
        return (f"2/η = {self.threshold:.3g}: sharpness {self.initial_sharpness:.3g} → crosses at step "
                f"{self.crossing};\n    median sharpness·η/2 after = {self.median_ratio:.3f}; "
                f"{self.increases} loss increases;\n    loss ÷{self.drop_from_crossing:.1f} from crossing, "
                f"÷{self.drop_overall:.1f} overall")


def edge_summary(run, metric: str = "sharpness") -> EdgeSummary:
    """:class:`EdgeSummary` of a run (``train_loss``, ``sharpness_steps``, ``sharpness``, ``threshold``).

    ``metric`` picks ``run.sharpness`` or a key of ``run.extras`` (same steps).
    """
    values = list(run.sharpness if metric == "sharpness" else run.extras[metric])
    steps, losses, thr = list(run.sharpness_steps), list(run.train_loss), float(run.threshold)
    if not values:
        raise ValueError("the run has no sharpness measurements")
    c = crossing_step(steps, values, thr)
    peak = int(np.argmax(values))
    return EdgeSummary(
        threshold=thr, initial_sharpness=values[0], peak_sharpness=values[peak], peak_step=int(steps[peak]),
        final_sharpness=values[-1], crossing=c,
        median_ratio=math.nan if c is None else median_ratio_after(steps, values, thr, c),
        increases=0 if c is None else loss_increases(losses, c),
        drop_from_crossing=math.nan if c is None else loss_drop(losses, c),
        drop_overall=loss_drop(losses, 0))


# ---------------------------------------------------------------- the oscillation probe


@dataclass
class Probe:
    """Per-step records of :func:`gd_probe`, index t = 0..steps−1 (θ_0 = the model it started from)."""

    lr: float
    loss: list[float] = field(default_factory=list)  # L(θ_t)
    sharpness: list[float] = field(default_factory=list)  # λ_max(∇²L(θ_t))
    mid_sharpness: list[float] = field(default_factory=list)  # λ_max at (θ_t + θ_{t+1}) / 2
    projection: list[float] = field(default_factory=list)  # ⟨θ_{t+1} − θ_t, u_t⟩, u_t top unit eigenvector
    step_norm: list[float] = field(default_factory=list)  # ‖θ_{t+1} − θ_t‖
    step_sharpness: list[float] = field(default_factory=list)  # gᵀHg / ‖g‖² at θ_t, g = ∇L(θ_t)
    step_curvature: list[float] = field(default_factory=list)  # ⟨g_{t+1} − g_t, θ_{t+1} − θ_t⟩/‖θ_{t+1} − θ_t‖²
    params: list[torch.Tensor] = field(default_factory=list, repr=False)  # θ_t (flat), kept if keep_params

    @property
    def threshold(self) -> float:
        return 2.0 / self.lr

    def sign_flips(self) -> float:
        """Fraction of consecutive steps whose projections on u_t have opposite signs.

        Meaningful only while u_t is the same direction at consecutive iterates; when the top
        eigenvector alternates between two directions (large oscillations, chapter 6), use
        :meth:`step_ratios`, which does not refer to any eigenvector.
        """
        p = np.sign(self.projection)
        return float(np.mean(p[1:] != p[:-1])) if len(p) > 1 else math.nan

    def step_ratios(self) -> np.ndarray:
        """⟨θ_{t+2} − θ_{t+1}, θ_{t+1} − θ_t⟩ / ‖θ_{t+1} − θ_t‖², t = 0..steps−3 (needs ``keep_params``).

        −1 on a period-2 cycle; below −1 for a growing oscillation, above −1 for a shrinking
        one. For GD it equals ⟨∇L(θ_{t+1}), ∇L(θ_t)⟩ / ‖∇L(θ_t)‖².
        """
        if len(self.params) < 3:
            raise ValueError("step_ratios needs gd_probe(..., keep_params=True) and at least 3 steps")
        d = [b - a for a, b in zip(self.params, self.params[1:])]
        return np.array([float(d1 @ d0) / float(d0 @ d0) for d0, d1 in zip(d, d[1:])])

    def cosines(self) -> np.ndarray:
        """|cos| of the angle between each step θ_{t+1} − θ_t and the top eigenvector u_t."""
        return np.abs(np.asarray(self.projection)) / np.asarray(self.step_norm)


def at_params(model: nn.Module, vector: torch.Tensor) -> nn.Module:
    """A copy of ``model`` whose trainable parameters are the flat ``vector`` (e.g. a probe's θ_t).

    The copy shares nothing with ``model``, which is left unchanged.
    """
    clone = copy.deepcopy(model)
    _set_params(clone, vector)
    return clone


def _set_params(model: nn.Module, vector: torch.Tensor) -> None:
    with torch.no_grad():
        for p, v in zip(trainable(model), hessian.unflatten(vector, model)):
            p.copy_(v)


def step_curvature(theta0: torch.Tensor, theta1: torch.Tensor, grad0: torch.Tensor, grad1: torch.Tensor) -> float:
    """Curvature along the step from θ_0 to θ_1: ⟨∇L(θ_1) − ∇L(θ_0), θ_1 − θ_0⟩ / ‖θ_1 − θ_0‖².

    It is the average of the directional sharpness dᵀ∇²L(θ)d (d = the unit step)
    along the segment from θ_0 to θ_1. On a quadratic it is the Rayleigh quotient of
    the Hessian along the step; on an exact period-2 cycle of GD with step size η
    it equals 2/η.

    >>> A = torch.diag(torch.tensor([4.0, 1.0], dtype=torch.float64))   # L = ½θᵀAθ, η = 0.5: 2/η = 4
    >>> t0 = torch.tensor([1.0, 0.0], dtype=torch.float64); t1 = t0 - 0.5 * A @ t0   # t1 = −t0: a 2-cycle
    >>> step_curvature(t0, t1, A @ t0, A @ t1)
    4.0
    """
    d, dg = (theta1 - theta0).double(), (grad1 - grad0).double()
    dd = float(d @ d)
    if not dd > 0:
        raise ValueError("θ_0 and θ_1 coincide: the step has no direction")
    return float(dg @ d) / dd


def two_step_radius(model: nn.Module, loss_fn, inputs: torch.Tensor, targets: torch.Tensor, lr: float,
                    theta0: torch.Tensor, theta1: torch.Tensor, *, tol: float = 1e-4, seed: int = 0) -> float:
    """Spectral radius of the two-step map's Jacobian, M = (I − η∇²L(θ_1))(I − η∇²L(θ_0)).

    If GD runs through θ_0 → θ_1 → θ_0 (a period-2 cycle), M is the Jacobian of the
    map θ_t ↦ θ_{t+2} at θ_0, and the cycle is linearly stable iff ρ(M) ≤ 1. With
    one Hessian, M = (I − η∇²L)² and ρ(M) = max_i (1 − ηλ_i)²; with two, λ_max at
    either point can exceed 2/η while ρ(M) ≤ 1 (Ahn, Zhang & Sra, 2022; the two-step
    map of GD is analysed by Chen & Bruna, 2023).

    M is not symmetric, so ρ(M) is computed by ARPACK's implicitly restarted Arnoldi
    method (``scipy.sparse.linalg.eigs``, largest magnitude) over Hessian-vector
    products at θ_0 and θ_1 (two per product with M), in float64 on the host.

    Args:
        model: a network of the right shape; copied, never changed.
        loss_fn, inputs, targets: the full-batch loss, as in :func:`eoslib.hessian.sharpness`.
        lr: step size η.
        theta0, theta1: flat parameter vectors (e.g. two consecutive GD iterates).
        tol: relative accuracy of the eigenvalue (ARPACK's ``tol``).
        seed: seed of the start vector.

    Returns:
        ρ(M) = max |μ| over the eigenvalues μ of M.
    """
    from scipy.sparse.linalg import LinearOperator, eigs

    ops = [hessian.HVP(at_params(model, theta), loss_fn, inputs, targets) for theta in (theta0, theta1)]
    dim, dtype, device = ops[0].dim, ops[0].dtype, ops[0].device

    def matvec(x: np.ndarray) -> np.ndarray:
        v = torch.as_tensor(np.asarray(x, dtype=np.float64).reshape(-1), dtype=dtype, device=device)
        v = v - lr * ops[0](v)
        v = v - lr * ops[1](v)
        return v.double().cpu().numpy()

    if dim <= 3:  # ARPACK needs k < dim − 1: build M densely
        m = np.stack([matvec(e) for e in np.eye(dim)], axis=1)
        return float(np.abs(np.linalg.eigvals(m)).max())
    start = np.random.default_rng(seed).standard_normal(dim)
    values = eigs(LinearOperator((dim, dim), matvec=matvec, dtype=np.float64), k=1, which="LM", tol=tol,
                  v0=start, return_eigenvectors=False, maxiter=max(1000, dim))
    return float(np.abs(values).max())


def gd_probe(model: nn.Module, loss_fn, inputs: torch.Tensor, targets: torch.Tensor, lr: float, steps: int, *,
             tol: float = 1e-4, seed: int = 0, keep_params: bool = False) -> Probe:
    """Take ``steps`` GD steps from ``model`` (changing it in place) and record the oscillation.

    At each θ_t: the loss, the gradient g, the top eigenpair (λ_max, u_t) by Lanczos
    (u_t's sign chosen to agree with u_{t−1}), the curvature gᵀHg/‖g‖² along the
    gradient, then θ_{t+1} = θ_t − ηg, the projection ⟨θ_{t+1} − θ_t, u_t⟩ = −η⟨g, u_t⟩,
    the sharpness at the midpoint (θ_t + θ_{t+1})/2, and (from t = 1) the curvature
    along the previous step, :func:`step_curvature` of (θ_{t−1}, θ_t). On a quadratic
    with 1/η < λ_max < 2/η the projection flips sign every step and all these
    curvatures are constant.

    Args:
        model: the network at θ_0; left at θ_steps.
        loss_fn: ``loss_fn(outputs, targets)`` → mean loss.
        inputs, targets: the full training set.
        lr: step size η.
        steps: number of GD steps.
        tol: Lanczos tolerance.
        seed: seed of Lanczos's first start vector.
        keep_params: also keep every θ_t (``probe.params``), e.g. for :func:`two_step_radius`.

    Returns:
        A :class:`Probe`; ``step_curvature`` has ``steps − 1`` entries.
    """
    if steps < 1:
        raise ValueError(f"steps={steps} must be positive")
    probe = Probe(lr=lr)
    u_prev = theta_prev = g_prev = None
    for t in range(steps):
        theta = hessian.flat_params(model)
        op = hessian.HVP(model, loss_fn, inputs, targets)
        g = op.gradient().detach()
        probe.loss.append(float(op.loss))
        if keep_params:
            probe.params.append(theta.clone())
        if theta_prev is not None:
            probe.step_curvature.append(step_curvature(theta_prev, theta, g_prev, g))
        res = hessian.lanczos(op, op.dim, 1, tol=tol, v0=u_prev, seed=seed + t)
        u = res.vectors[0].detach()
        u = u / u.norm()
        if u_prev is not None and float(u @ u_prev) < 0:
            u = -u
        probe.sharpness.append(float(res.values[0]))
        probe.step_sharpness.append(float(g @ op(g)) / float(g @ g))
        delta = -lr * g
        probe.projection.append(float(delta @ u))
        probe.step_norm.append(float(delta.norm()))
        _set_params(model, theta + delta / 2)
        probe.mid_sharpness.append(hessian.sharpness(model, loss_fn, inputs, targets, tol=tol, v0=u, seed=seed + t))
        _set_params(model, theta + delta)
        u_prev, theta_prev, g_prev = u, theta, g
    return probe


__all__ = ["crossing_step", "return_step", "median_ratio_after", "late_start", "loss_increases", "loss_drop",
           "EdgeSummary", "edge_summary", "Probe", "at_params", "step_curvature", "two_step_radius", "gd_probe"]

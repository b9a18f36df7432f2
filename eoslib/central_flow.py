"""The central flow of gradient descent: the ODE its time average follows at the edge of stability.

GD with step size η on a network oscillates, at the edge of stability, along the
top Hessian eigenvectors. Cohen, Damian, Talwalkar, Kolter & Lee (ICLR 2025)
model the *time-averaged* iterate w(t), t counted in steps, by the central flow

    dw/dt = −η [∇L(w) + ½ ∇⟨Σ(t), ∇²L(w)⟩],

where Σ ⪰ 0 is the covariance of the oscillation, supported on the *critical*
eigenvectors (those whose eigenvalue sits at 2/η). Expanding ∇L(w + δ) to second
order in the oscillation δ and averaging (E δ = 0, E δδᵀ = Σ) gives this
equation; Σ is then fixed by requiring that the critical eigenvalues stay at
2/η. The authors call this derivation informal and verify it numerically.

**Σ as a complementarity problem.** Let U = [u_1 … u_k] hold the top-k unit
eigenvectors with eigenvalues Λ = diag(λ_i), g = ∇L(w), and
G_ij = ∇_w (u_iᵀ∇²L(w)u_j) (third derivatives; :func:`critical_geometry`).
Along a velocity v the block Uᵀ∇²L U changes at the rate D(v)_ij = ⟨G_ij, v⟩, and
⟨Σ, ∇²L⟩ has gradient GΣ = Σ_ij Σ_ij G_ij. With v = −η(g + ½GΣ), the
eigenvalues must not rise above 2/η: Σ solves

    Σ ⪰ 0,   M = D(g) + ½ 𝒜(Σ) ⪰ 0,   ⟨Σ, M⟩ = 0,     𝒜(Σ)_ij = ⟨G_ij, GΣ⟩,

a semidefinite complementarity problem. 𝒜 is a Gram operator (positive
semidefinite), so these are the optimality conditions of the convex problem

    Σ = argmin_{Σ ⪰ 0}  ‖g + ½ GΣ‖²,

i.e. −(g + ½GΣ) is the projection of −∇L onto the directions that do not raise
the critical eigenvalues: the central flow is gradient flow (time scaled by η)
projected onto the stable set {λ_max(∇²L) ≤ 2/η}. With one critical eigenvalue
S = λ_1, u = u_1, ∇S = G_11, α = −⟨g, ∇S⟩ and β = ‖∇S‖²,

    Σ = σ² u uᵀ,   σ² = max(0, 2α/β),

the ⟨x²⟩ = 2α/β of self-stabilization (Damian, Nichani & Lee, ICLR 2023;
:mod:`eoslib.selfstab`). :func:`solve_sigma` solves the problem in the
k(k+1)/2 entries of Σ by accelerated projected gradient (projection onto the
PSD cone = clipping eigenvalues at 0); k is small (the eigenvalues at 2/η).

**Prediction of the loss.** GD's time-averaged loss is predicted as
E L(w + δ) ≈ L(w) + ½⟨Σ, ∇²L(w)⟩ = L(w) + ½ Σ_ij Σ_ij λ_i δ_ij, which is
L(w) + tr Σ / η when the critical eigenvalues equal 2/η.

**Discretisation** (ours). :func:`central_flow` integrates by Euler steps of dt
GD steps, w ← w + Δ with Δ = −η·dt·(g + ½GΣ) (:func:`projected_step`). A plain
Euler step lets the critical eigenvalues drift off 2/η, so each step asks
instead that the *linearised* critical block after the step stay below 2/η,
(2/η)I − Λ − D(Δ) ⪰ 0: the same problem with D(g) replaced by
b = D(g) + ((2/η)I − Λ)/(η·dt), which pulls back eigenvalues that overshot and
leaves those below 2/η free. The critical set holds the tracked eigenvalues
within ``window`` (relative) of 2/η or above it; Lanczos tracks two more than
are critical, so that an eigenvalue entering the set is seen a step ahead.
With dt = 1 and a Newton step to the bottom of the valley along the critical
eigenvectors (``newton=True``) the scheme is stable GD
(:func:`eoslib.selfstab.stable_gd`); with ``project=False`` it is gradient flow,
and with dt = 1 as well, gradient descent (:func:`gradient_descent`).

References:
    J. M. Cohen, A. Damian, A. Talwalkar, J. Z. Kolter, J. D. Lee. Understanding
    Optimization in Deep Learning with Central Flows. ICLR 2025.
    A. Damian, E. Nichani, J. D. Lee. Self-Stabilization: The Implicit Bias of
    Gradient Descent at the Edge of Stability. ICLR 2023.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from . import hessian
from .hessian.hvp import check_model, chunks, frozen_buffers, scalar_loss, trainable


# ---------------------------------------------------------------- third derivatives


def pair_gradients(model: nn.Module, loss_fn, inputs: torch.Tensor, targets: torch.Tensor,
                   vectors: torch.Tensor) -> torch.Tensor:
    """G_ij = ∇_θ (u_iᵀ ∇²L(θ) u_j) = ∇³L(θ)[u_i, u_j, ·] for all pairs of the rows u_i of ``vectors``.

    The diagonal G_ii is :func:`eoslib.hessian.sharpness_gradient` of u_i; the
    off-diagonal entries are its polarisation, computed here in one pass: the
    gradient g = ∇L with its graph, h_i = ∇(g·u_i) with their graphs, then
    ∇(h_i·u_j) for i ≤ j (1 + k + k(k+1)/2 backward passes instead of 3k² by
    polarisation).

    Args:
        model, loss_fn, inputs, targets: as in :func:`eoslib.hessian.sharpness`.
        vectors: ``(k, P)`` directions (used as given).

    Returns:
        ``(k, k, P)`` tensor, symmetric in its first two indices.
    """
    params = check_model(model)
    dim = sum(p.numel() for p in params)
    vectors = vectors.detach().to(params[0].device, params[0].dtype)
    if vectors.dim() != 2 or vectors.shape[1] != dim or not torch.isfinite(vectors).all():
        raise ValueError(f"vectors must be a finite (k, {dim}) tensor, got {tuple(vectors.shape)}")
    k = vectors.shape[0]
    sizes = [p.numel() for p in params]
    pieces = [[v.view_as(p) for v, p in zip(row.split(sizes), params)] for row in vectors]
    out = torch.zeros(k, k, dim, dtype=vectors.dtype, device=vectors.device)
    for x, y, w in chunks(inputs, targets, None, params[0]):
        with frozen_buffers(model):
            loss = w * scalar_loss(loss_fn(model(x), y))
        g = torch.autograd.grad(loss, params, create_graph=True, allow_unused=True)
        hs = []
        for us in pieces:
            gu = sum((a * b).sum() for a, b in zip(g, us) if a is not None)
            hs.append(torch.autograd.grad(gu, params, create_graph=True, allow_unused=True)
                      if isinstance(gu, torch.Tensor) and gu.requires_grad else None)
        for i in range(k):
            for j in range(i, k):
                if hs[i] is None:
                    continue
                hu = sum((a * b).sum() for a, b in zip(hs[i], pieces[j]) if a is not None)
                if not (isinstance(hu, torch.Tensor) and hu.requires_grad):
                    continue
                third = torch.autograd.grad(hu, params, retain_graph=True, allow_unused=True)
                flat = torch.cat([torch.zeros_like(p).reshape(-1) if d is None else d.reshape(-1)
                                  for d, p in zip(third, params)])
                out[i, j] += flat
                if j != i:
                    out[j, i] += flat
    return out.detach()


# ---------------------------------------------------------------- the complementarity problem


def solve_sigma(gram: np.ndarray, b: np.ndarray, *, sigma0: np.ndarray | None = None, tol: float = 1e-10,
                max_iter: int = 20000) -> np.ndarray:
    """Σ ⪰ 0 with M = b + ½𝒜(Σ) ⪰ 0 and ⟨Σ, M⟩ = 0, where 𝒜(Σ)_ij = Σ_kl gram[i,j,k,l] Σ_kl.

    ``gram[i,j,k,l] = ⟨G_ij, G_kl⟩`` is the Gram tensor of symmetric families of
    vectors G_ij, so 𝒜 is positive semidefinite and Σ minimises the convex
    f(Σ) = ¼⟨Σ, 𝒜Σ⟩ + ⟨b, Σ⟩ over the PSD cone (∇f = M; the conditions above are
    its optimality conditions). Solved by FISTA (accelerated projected gradient)
    with step 1/L, L = ½‖𝒜‖, the projection clipping eigenvalues at 0; stops when
    an iterate moves less than ``tol`` relative to its norm. One variable: the
    closed form max(0, −2b/gram).

    Args:
        gram: ``(k, k, k, k)`` Gram tensor.
        b: ``(k, k)`` symmetric matrix.
        sigma0: warm start ``(k, k)``.

    Returns:
        Σ, ``(k, k)`` symmetric positive semidefinite.

    >>> solve_sigma(np.full((1, 1, 1, 1), 4.0), np.array([[-3.0]]))   # σ² = 2α/β with α = 3, β = 4
    array([[1.5]])
    """
    gram, b = np.asarray(gram, dtype=np.float64), np.asarray(b, dtype=np.float64)
    k = b.shape[0]
    if b.shape != (k, k) or gram.shape != (k, k, k, k):
        raise ValueError(f"need b (k, k) and gram (k, k, k, k), got {b.shape} and {gram.shape}")
    if not (np.isfinite(gram).all() and np.isfinite(b).all()):
        raise ValueError("gram and b must be finite")
    b = (b + b.T) / 2
    if k == 0:
        return np.zeros((0, 0))
    if k == 1:
        return np.array([[max(0.0, -2.0 * b[0, 0] / gram[0, 0, 0, 0])]]) if gram[0, 0, 0, 0] > 0 else \
            np.array([[0.0 if b[0, 0] >= 0 else math.inf]])
    lip = 0.5 * np.linalg.norm(gram.reshape(k * k, k * k), 2)
    if not lip > 0:
        raise ValueError("the Gram tensor is zero: the eigenvalues do not depend on the parameters")

    def grad(s):
        return b + 0.5 * np.einsum("ijkl,kl->ij", gram, s)

    def project(s):
        s = (s + s.T) / 2
        w, v = np.linalg.eigh(s)
        return (v * np.clip(w, 0.0, None)) @ v.T

    x = project(np.zeros((k, k)) if sigma0 is None else np.asarray(sigma0, dtype=np.float64))
    y, t = x.copy(), 1.0
    for _ in range(max_iter):
        x_new = project(y - grad(y) / lip)
        t_new = (1 + math.sqrt(1 + 4 * t * t)) / 2
        y = x_new + ((t - 1) / t_new) * (x_new - x)
        moved = np.linalg.norm(x_new - x)
        x, t = x_new, t_new
        if moved <= tol * max(np.linalg.norm(x), 1e-300):
            break
    return x


def sigma_residual(gram: np.ndarray, b: np.ndarray, sigma: np.ndarray) -> float:
    """How far Σ is from solving :func:`solve_sigma`'s problem, relative to the size of M.

    max(−λ_min(Σ), −λ_min(M), |⟨Σ, M⟩|/‖Σ‖) / max(‖b‖, tiny), M = b + ½𝒜(Σ).
    """
    m = b + 0.5 * np.einsum("ijkl,kl->ij", gram, sigma)
    parts = [-np.linalg.eigvalsh((sigma + sigma.T) / 2).min(), -np.linalg.eigvalsh((m + m.T) / 2).min(),
             abs(float((sigma * m).sum())) / max(np.linalg.norm(sigma), 1e-300)]
    return float(max(parts) / max(np.linalg.norm(b), 1e-300)) + 0.0  # + 0.0: no negative zero


# ---------------------------------------------------------------- the critical geometry at a point


@dataclass
class Geometry:
    """What the projected step needs at one point w (:func:`critical_geometry`)."""

    loss: float  # L(w)
    grad: torch.Tensor  # (P,) ∇L(w)
    values: np.ndarray  # (k,) top-k Hessian eigenvalues, descending
    vectors: torch.Tensor  # (k, P) their unit eigenvectors
    critical: np.ndarray  # indices i with values[i] ≥ (1 − window)·2/η: the critical set C
    pairs: torch.Tensor  # (c, c, P) G_ij = ∇(u_iᵀ∇²L u_j) for i, j in C (c = len(C); empty if c = 0)
    n_hvp: int  # Hessian-vector products of the eigensolver


def critical_geometry(model: nn.Module, loss_fn, inputs: torch.Tensor, targets: torch.Tensor, lr: float, *,
                      k: int = 4, window: float = 0.02, tol: float = 1e-6, v0: torch.Tensor | None = None,
                      seed: int = 0) -> Geometry:
    """Loss, gradient, top-k eigenpairs and, for the critical ones, the third derivatives G_ij.

    The critical set C holds the eigenvalues within ``window`` (relative) of 2/η
    or above it; G_ij (:func:`pair_gradients`) is computed only for them.
    """
    if not 0 <= window < 1:
        raise ValueError(f"window={window} must lie in [0, 1)")
    op = hessian.HVP(model, loss_fn, inputs, targets)
    g = op.gradient().detach()
    res = hessian.lanczos(op, op.dim, k, tol=tol, v0=v0, seed=seed)
    values = res.values.detach().double().cpu().numpy()
    critical = np.flatnonzero(values >= (1 - window) * 2 / lr)
    vectors = res.vectors.detach()
    pairs = (pair_gradients(model, loss_fn, inputs, targets, vectors[critical]) if len(critical)
             else torch.zeros(0, 0, op.dim, dtype=g.dtype, device=g.device))
    return Geometry(float(op.loss), g, values, vectors, critical, pairs, int(res.n_hvp))


def projected_step(geom: Geometry, lr: float, dt: float = 1.0, *, newton: bool = False,
                   sigma0: np.ndarray | None = None) -> tuple[torch.Tensor, np.ndarray]:
    """The step Δ from w and the Σ it uses: −η·dt·(∇L + ½GΣ), kept inside the stable set.

    Σ solves :func:`solve_sigma` for the critical set with
    b = D(g) + ((2/η)I − Λ)/(η·dt), so that the linearised critical block after the
    step, Λ + D(Δ), is ⪯ (2/η)I (module docstring). With ``newton=True`` the step
    also puts w at the bottom of the valley along each critical eigenvector
    (⟨∇L(w + Δ), u_i⟩ = 0 to first order): the component of Δ along u_i is the
    Newton step −⟨g, u_i⟩/λ_i, and the rest of Δ (including the Σ term) is
    projected orthogonally to the u_i. This is the projection onto Damian et
    al.'s stable set M = {S ≤ 2/η, ⟨∇L, u⟩ = 0} used by stable GD
    (:func:`eoslib.selfstab.stable_gd`); ``dt`` is then 1.

    Returns:
        (Δ ``(P,)``, Σ ``(c, c)`` over the critical set).
    """
    g = geom.grad
    c = len(geom.critical)
    if c == 0:
        return -lr * dt * g, np.zeros((0, 0))
    u = geom.vectors[geom.critical]  # (c, P)
    lam = geom.values[geom.critical]
    pairs = geom.pairs.reshape(c * c, -1)
    if newton:
        coef = (u @ g).double().cpu().numpy() / lam
        base = -lr * dt * (g - u.T @ (u @ g)) - u.T @ torch.as_tensor(coef, dtype=g.dtype, device=g.device)
        direction = pairs - (pairs @ u.T) @ u  # G_ij projected orthogonally to the u_i
    else:
        base, direction = -lr * dt * g, pairs
    d_base = (pairs @ base).double().cpu().numpy().reshape(c, c)  # D(Δ₀)_ij = ⟨G_ij, Δ₀⟩
    b = (np.diag(2 / lr - lam) - d_base) / (lr * dt)
    gram = (direction @ direction.T).double().cpu().numpy().reshape(c, c, c, c)
    sigma = solve_sigma(gram, b, sigma0=sigma0 if sigma0 is not None and sigma0.shape == (c, c) else None)
    gs = torch.as_tensor(sigma.reshape(-1), dtype=g.dtype, device=g.device) @ direction
    return base - 0.5 * lr * dt * gs, sigma


# ---------------------------------------------------------------- integration


@dataclass
class Flow:
    """Records of :func:`central_flow` at integer times t = 0, r, 2r, … (in GD steps)."""

    lr: float
    dt: float
    times: list[float] = field(default_factory=list)  # t
    loss: list[float] = field(default_factory=list)  # L(w(t))
    predicted_loss: list[float] = field(default_factory=list)  # L(w) + ½⟨Σ, Λ⟩: GD's time-averaged loss
    eigenvalues: list[np.ndarray] = field(default_factory=list)  # (k,) top-k eigenvalues of ∇²L(w(t))
    sigma: list[np.ndarray] = field(default_factory=list)  # (c, c) Σ over the critical set (c = |C|)
    vectors: list[torch.Tensor] = field(default_factory=list, repr=False)  # (c, P) critical u_i, if keep_vectors
    params: list[torch.Tensor] = field(default_factory=list, repr=False)  # w(t), flat
    n_hvp: int = 0  # eigensolver products, in all

    @property
    def threshold(self) -> float:
        return 2.0 / self.lr

    @property
    def sharpness(self) -> np.ndarray:
        """λ_1 at the records."""
        return np.array([v[0] for v in self.eigenvalues])

    @property
    def last_tracked(self) -> np.ndarray:
        """λ_k at the records: the smallest tracked eigenvalue (below the window if k sufficed)."""
        return np.array([v[-1] for v in self.eigenvalues])

    @property
    def sigma_trace(self) -> np.ndarray:
        """tr Σ at the records."""
        return np.array([float(np.trace(s)) for s in self.sigma])

    @property
    def n_critical(self) -> np.ndarray:
        """|C| at the records."""
        return np.array([len(s) for s in self.sigma])


def _set_flat(model: nn.Module, vector: torch.Tensor) -> None:
    with torch.no_grad():
        for p, v in zip(trainable(model), hessian.unflatten(vector, model)):
            p.copy_(v)


def model_at(model: nn.Module, theta: torch.Tensor) -> nn.Module:
    """A copy of ``model`` with its trainable parameters set to the flat vector θ (e.g. a recorded iterate)."""
    import copy

    clone = copy.deepcopy(model)
    _set_flat(clone, theta)
    return clone


def central_flow(model: nn.Module, loss_fn, inputs: torch.Tensor, targets: torch.Tensor, lr: float,
                 steps: int, *, dt: float = 0.5, k: int = 8, window: float = 0.02, record_every: int = 1,
                 tol: float = 1e-4, seed: int = 0, project: bool = True, newton: bool = False,
                 keep_vectors: bool = False) -> Flow:
    """Integrate the central flow from ``model``'s parameters for ``steps`` GD-steps of time.

    Euler steps of ``dt`` (in GD steps; 1/dt must be an integer): w ← w + Δ with
    Δ = :func:`projected_step`. ``project=False`` integrates gradient flow
    dw/dt = −η∇L(w) with the same steps (nothing but gradients is computed then,
    and the eigenvalue records stay empty); ``dt=1, newton=True`` is stable GD.

    Args:
        model: the network at w(0); copied, never changed.
        loss_fn, inputs, targets: the full-batch loss.
        lr: GD's step size η (threshold 2/η).
        steps: length of the run in GD steps (time t = steps).
        dt: Euler step in GD steps.
        k: most eigenvalues tracked. Lanczos tracks |C| + 2 of them (at least 2), so that an
            eigenvalue entering the critical set is seen a step ahead; a critical set of k
            eigenvalues raises ValueError.
        window: relative distance below 2/η at which an eigenvalue becomes critical.
        record_every: record every this many GD steps of time.
        tol: Lanczos tolerance.
        seed: seed of Lanczos's first start vector.
        project: False gives gradient flow.
        newton: project onto Damian et al.'s stable set (with ``dt=1``: stable GD).
        keep_vectors: also record the critical eigenvectors at every record.

    Returns:
        A :class:`Flow`.
    """
    import copy

    sub = round(1 / dt)
    if not (dt > 0 and abs(sub * dt - 1) < 1e-9):
        raise ValueError(f"dt={dt} must be 1/m for a positive integer m")
    if steps < 1 or record_every < 1:
        raise ValueError(f"steps={steps} and record_every={record_every} must be positive")
    if k < 2:
        raise ValueError(f"k={k} must be at least 2 (one eigenvalue beyond the critical set is watched)")
    model = copy.deepcopy(model)
    flow = Flow(lr=lr, dt=dt)
    v0, sigma, tracked = None, None, 2
    for n in range(steps * sub + 1):
        record = n % (sub * record_every) == 0
        w = hessian.flat_params(model)
        if project:
            geom = critical_geometry(model, loss_fn, inputs, targets, lr, k=tracked, window=window, tol=tol,
                                     v0=v0, seed=seed + n)
            v0, flow.n_hvp = geom.vectors, flow.n_hvp + geom.n_hvp
            if len(geom.critical) == k:
                raise ValueError(f"all k={k} tracked eigenvalues are critical at time {n / sub}: increase k")
            tracked = min(k, max(2, len(geom.critical) + 2))
            delta, sigma = projected_step(geom, lr, dt, newton=newton, sigma0=sigma)
            loss = geom.loss
        else:
            op = hessian.HVP(model, loss_fn, inputs, targets)
            loss, delta = float(op.loss), -lr * dt * op.gradient().detach()
        if record:
            flow.times.append(n / sub)
            flow.loss.append(loss)
            flow.params.append(w.clone())
            if project:
                lam = geom.values[geom.critical]
                flow.predicted_loss.append(loss + 0.5 * float(np.sum(np.diag(sigma) * lam)))
                flow.eigenvalues.append(geom.values.copy())
                flow.sigma.append(sigma.copy())
                if keep_vectors:
                    flow.vectors.append(geom.vectors[geom.critical].clone())
            else:
                flow.predicted_loss.append(loss)
        if not math.isfinite(loss):
            raise ValueError(f"the flow diverged at time {n / sub} (loss {loss})")
        if n < steps * sub:
            _set_flat(model, w + delta)
    return flow


def gradient_descent(model: nn.Module, loss_fn, inputs: torch.Tensor, targets: torch.Tensor, lr: float,
                     steps: int) -> Flow:
    """GD θ_{t+1} = θ_t − η∇L(θ_t) for ``steps`` steps, every iterate recorded (the model is not changed).

    It is gradient flow's Euler scheme with dt = 1 (:func:`central_flow` with
    ``project=False``), so GD, gradient flow and the central flow share one loop.
    """
    return central_flow(model, loss_fn, inputs, targets, lr, steps, dt=1.0, project=False)


def gradient_flow(model: nn.Module, loss_fn, inputs: torch.Tensor, targets: torch.Tensor, lr: float,
                  steps: int, *, dt: float = 0.25) -> Flow:
    """Gradient flow dw/dt = −η∇L(w) for ``steps`` GD-steps of time, by Euler steps of ``dt``."""
    return central_flow(model, loss_fn, inputs, targets, lr, steps, dt=dt, project=False)


def centered_mean(values, half_width: int) -> np.ndarray:
    """Centred moving average over 2·half_width + 1 entries along the first axis.

    Entry i of the result is the mean of ``values[i : i + 2·half_width + 1]``, i.e.
    the time average around t = i + half_width; GD's time-averaged loss and
    iterate are taken this way.

    >>> centered_mean([1.0, 2.0, 3.0, 4.0, 5.0], 1).tolist()
    [2.0, 3.0, 4.0]
    """
    a = np.asarray(torch.stack(list(values)).double().cpu() if isinstance(values, list) and values
                   and isinstance(values[0], torch.Tensor) else values, dtype=np.float64)
    width = 2 * half_width + 1
    if half_width < 0 or len(a) < width:
        raise ValueError(f"half_width={half_width} needs at least {width} values, got {len(a)}")
    c = np.cumsum(np.concatenate([np.zeros((1,) + a.shape[1:]), a]), axis=0)
    return (c[width:] - c[:-width]) / width


__all__ = ["pair_gradients", "solve_sigma", "sigma_residual", "Geometry", "critical_geometry", "projected_step",
           "Flow", "model_at", "central_flow", "gradient_descent", "gradient_flow", "centered_mean"]

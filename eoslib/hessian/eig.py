"""Top eigenpairs of a symmetric operator that we can only multiply by.

Everything here is plain linear algebra on a *matvec* ``v ↦ A v`` (flat
tensors of length ``dim``); nothing knows about networks.  In the book the
operator is the Hessian of the training loss, ``A = ∇²L(θ)``, and its top
eigenvalue is the sharpness ``λ_max`` that gradient descent drives to ``2/η``
(Cohen et al., 2021).

Two algorithms:

* :func:`power_iteration` -- the teaching version.  ``v ← A v / ‖A v‖``
  converges to the eigenvector of the eigenvalue of *largest magnitude*, at the
  rate ``|λ₂/λ₁|`` per product.  Its Rayleigh quotient ``vᵀAv`` keeps the sign,
  so on an indefinite Hessian it may return a *negative* eigenvalue; pass
  ``shift=σ`` to iterate on ``A − σI`` instead (e.g. ``σ`` = that negative
  eigenvalue, which then makes ``λ_max − σ`` the largest in magnitude).
* :func:`lanczos` -- what the library uses.  From ``q₁ = v₀/‖v₀‖`` it builds an
  orthonormal basis ``Q_m = [q₁ … q_m]`` of the Krylov space
  ``span{v₀, Av₀, …, A^{m−1}v₀}`` in which ``A`` is tridiagonal,
  ``Q_mᵀ A Q_m = T_m`` (diagonal ``α_j = q_jᵀAq_j``, off-diagonal
  ``β_j = ‖A q_j − α_j q_j − β_{j−1} q_{j−1}‖``; Lanczos, 1950).  The
  eigenvalues of the small ``T_m`` (Ritz values) approach the extreme
  eigenvalues of ``A`` far faster than power iteration: the error shrinks like
  a Chebyshev polynomial, roughly ``exp(−2m√(gap/spread))`` instead of
  ``(λ₂/λ₁)^{2m}``.  In floating point the three-term recurrence loses
  orthogonality exactly when a Ritz value converges, producing spurious
  copies ("ghosts") of it; we therefore reorthogonalise each new vector
  against *all* previous ones (one classical Gram-Schmidt pass, repeated only
  if it cancelled most of the vector: Kahan-Parlett "twice is enough").  For
  the ≤ 30 vectors the book needs, this costs far less than one
  Hessian-vector product.

Stopping rule of :func:`lanczos`.  A Ritz pair ``(θ, y)`` has residual
``r = ‖A y − θ y‖ = β_m |s_m|`` (``s_m``: last entry of the eigenvector of
``T_m``), available for free.  Some eigenvalue lies within ``r`` of ``θ``, and
by the Kato–Temple inequality the top one lies within ``r²/gap``, where ``gap``
separates ``θ`` from the rest of the spectrum.  We stop when every wanted Ritz
value has ``r ≤ tol·|θ|`` or ``r²/gap ≤ tol·|θ|``, estimating ``gap`` by
``θ₁ − θ₂ − r₂``: the second Ritz value's eigenvalue may lie up to its own
residual ``r₂`` higher (the plain Ritz gap ``θ₁ − θ₂`` is optimistic, and
stopped 1.5% off on one of 12 starts; ``benchmarks/README.md`` has the dated
measurements of this rule's accuracy and cost).  Watching the Ritz value stop
changing is cheaper but unreliable on clustered spectra: it can stall for several
steps while 0.5% off.

:func:`power_iteration` stops when its Rayleigh quotient changes by less than
``tol``, relative (the teaching version; it has the same weakness).

References:
    C. Lanczos. An iteration method for the solution of the eigenvalue problem
    of linear differential and integral operators. J. Res. NBS, 1950.
    J. Cohen et al. Gradient Descent on Neural Networks Typically Occurs at the
    Edge of Stability. ICLR 2021.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Callable

import torch

MatVec = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class EigResult:
    """Eigenpairs found by :func:`lanczos` or :func:`power_iteration`."""

    values: torch.Tensor  # (k,) eigenvalues, descending (power iteration: the one largest in magnitude)
    vectors: torch.Tensor  # (k, dim) unit-norm eigenvectors, row i belongs to values[i]
    n_hvp: int  # matrix-vector (Hessian-vector) products used
    converged: bool  # True if the stopping rule fired before max_iter


def _start_vector(dim: int, v0: torch.Tensor | None, seed: int, dtype, device) -> torch.Tensor:
    """Unit start vector: ``v0`` (rows summed if 2-D) plus a 1e-3 random nudge, or a random one.

    The nudge keeps Lanczos from stopping in an invariant subspace when ``v0``
    is exactly an eigenvector (e.g. on a quadratic); it costs nothing measurable.
    """
    g = torch.Generator().manual_seed(seed)
    r = torch.randn(dim, generator=g).to(device=device, dtype=dtype)  # float32 draw: same vector in any dtype
    r = r / r.norm()
    if v0 is None:
        return r
    v0 = v0.detach().to(device=device, dtype=dtype)
    if v0.dim() == 2:
        v0 = v0.sum(dim=0)
    if v0.shape != (dim,):
        raise ValueError(f"v0 must have shape ({dim},) or (m, {dim}), got {tuple(v0.shape)}")
    if not torch.isfinite(v0).all() or v0.norm() == 0:
        raise ValueError("v0 must be finite and nonzero")
    q = v0 / v0.norm() + 1e-3 * r
    return q / q.norm()


def _check_sizes(dim: int, k: int, max_iter: int, tol: float = 1e-3, seed: int = 0) -> None:
    for name, value in (("dim", dim), ("k", k), ("max_iter", max_iter), ("seed", seed)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise ValueError(f"{name}={value!r} must be an integer")
    if isinstance(tol, bool) or not isinstance(tol, numbers.Real) or not 0 <= tol < 1:
        raise ValueError(f"tol={tol!r} must be a relative tolerance in [0, 1) (0: run all max_iter products)")
    if not 0 <= seed < 2**63 - 1 - max_iter:
        raise ValueError(f"seed={seed} must lie in 0..2**63 - 1 - max_iter")
    if dim < 1:
        raise ValueError(f"the operator has dimension {dim}; need at least 1")
    if not 1 <= k <= dim:
        raise ValueError(f"k={k} must be between 1 and the number of parameters ({dim})")
    if max_iter < k:
        raise ValueError(f"max_iter={max_iter} must be at least k={k}")


def _converged(theta: torch.Tensor, S: torch.Tensor, beta: float, k: int, tol: float, tiny: float) -> bool:
    """Stopping rule for the top-k Ritz pairs of ``T_m`` (``theta`` ascending, ``S`` its eigenvectors).

    Ritz pair ``(θ_i, y_i)`` has residual ``r_i = ‖A y_i − θ_i y_i‖ = β_m |s_{m,i}|``.
    It is accepted if ``r_i ≤ tol·|θ_i|`` (some eigenvalue lies within ``r_i``)
    or if the Kato–Temple estimate ``r_i² / gap_i ≤ tol·|θ_i|``, where
    ``gap_i = min_j (|θ_i − θ_j| − r_j)`` over the neighbouring Ritz values
    ``θ_j`` (whose eigenvalues may lie up to ``r_j`` closer).
    """
    if beta <= tiny:  # Krylov space is invariant: the Ritz values are exact
        return True
    m = theta.shape[0]
    resid = beta * S[-1].abs()  # r_j for every Ritz pair
    for i in range(m - 1, m - 1 - k, -1):
        r, bound = float(resid[i]), abs(float(theta[i])) * tol
        if r <= bound:
            continue
        neighbours = [n for n in (i - 1, i + 1) if 0 <= n < m]
        gap = min((abs(float(theta[i] - theta[n])) - float(resid[n]) for n in neighbours), default=0.0)
        if not (gap > 0 and r * r <= bound * gap):
            return False
    return True


def lanczos(
    matvec: MatVec,
    dim: int,
    k: int = 1,
    *,
    tol: float = 1e-3,
    max_iter: int = 100,
    v0: torch.Tensor | None = None,
    seed: int = 0,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> EigResult:
    """Top-``k`` (largest algebraic) eigenpairs of a symmetric operator by Lanczos.

    Args:
        matvec: ``v ↦ A v`` on flat tensors of shape ``(dim,)``; ``A`` symmetric.
        dim: dimension of ``A`` (number of parameters for a Hessian).
        k: number of top eigenpairs.
        tol: relative tolerance of the stopping rule (module docstring), in [0, 1);
            0 never stops early (all ``max_iter`` products run).
        max_iter: at most this many products (Krylov dimension); capped at ``dim``.
        v0: start vector ``(dim,)``, e.g. the previous eigenvector when tracking
            sharpness along a trajectory (warm start), or ``(m, dim)`` rows that
            are summed.  ``None``: a random vector drawn from ``seed``.
        seed: seed of the random start vector (and of the 1e-3 nudge to ``v0``).
        dtype, device: of the Krylov basis; default ``matvec.dtype`` /
            ``matvec.device`` when present, else float64 / CPU.

    Returns:
        :class:`EigResult` with ``values`` (k,) descending, ``vectors`` (k, dim).

    >>> A = torch.diag(torch.tensor([3.0, 1.0, -5.0], dtype=torch.float64))
    >>> r = lanczos(lambda v: A @ v, 3, k=2, tol=1e-10)
    >>> [round(x, 6) for x in r.values.tolist()]
    [3.0, 1.0]
    """
    dtype = dtype or getattr(matvec, "dtype", torch.float64)
    device = device or getattr(matvec, "device", "cpu")
    _check_sizes(dim, k, max_iter, tol, seed)
    m_max = min(max_iter, dim)
    Q = torch.empty(min(m_max, 32), dim, dtype=dtype, device=device)  # rows q_1..q_m; grown on demand
    Q[0] = _start_vector(dim, v0, seed, dtype, device)
    alphas: list[float] = []
    betas: list[float] = []
    converged = False
    tiny = 100 * torch.finfo(dtype).eps
    for j in range(m_max):
        q, basis = Q[j], Q[: j + 1]
        w = matvec(q).to(dtype)
        if w.data_ptr() == q.data_ptr():  # a matvec that returned its input: work on a copy
            w = w.clone()
        alpha = float(q @ w)
        w.sub_(q, alpha=alpha)  # three-term recurrence, in place (no large temporaries)
        if j > 0:
            w.sub_(Q[j - 1], alpha=betas[-1])
        beta = float(w.norm())
        for _ in range(2):  # full reorthogonalisation; a 2nd pass only if the 1st removed a lot
            c = basis @ w
            w.addmv_(basis.T, c, alpha=-1.0)
            alpha += float(c[j])
            beta, before = float(w.norm()), beta
            if beta > 0.7 * before:
                break
        alphas.append(alpha)
        T = torch.diag(torch.tensor(alphas, dtype=torch.float64))
        if j > 0:
            off = torch.tensor(betas, dtype=torch.float64)
            T += torch.diag(off, 1) + torch.diag(off, -1)
        theta, S = torch.linalg.eigh(T)  # ascending
        top = theta.flip(0)[:k]
        scale = max(float(theta.abs().max()), 1e-300)
        if j + 1 >= k and _converged(theta, S, beta, k, tol, tiny * scale):
            converged = True
            break
        if j + 1 == m_max:
            break
        if j + 1 == Q.shape[0]:
            Q = torch.cat([Q, torch.empty_like(Q[: min(j + 1, m_max - j - 1)])])
        if beta <= tiny * scale:  # invariant subspace of dimension < k: continue in a fresh direction
            w = _start_vector(dim, None, seed + j + 1, dtype, device)
            w -= Q[: j + 1].T @ (Q[: j + 1] @ w)
            beta = 0.0
            torch.div(w, w.norm(), out=Q[j + 1])
        else:
            torch.div(w, beta, out=Q[j + 1])
        betas.append(beta)
    m = len(alphas)
    values = top
    coeffs = S[:, -k:].flip(1).to(device=device, dtype=dtype)  # (m, k) Ritz coefficients (T_m lives on the CPU)
    vectors = coeffs.T @ Q[:m]
    vectors = vectors / vectors.norm(dim=1, keepdim=True)
    return EigResult(values.to(device=device, dtype=dtype), vectors, m, converged)


def power_iteration(
    matvec: MatVec,
    dim: int,
    *,
    tol: float = 1e-3,
    max_iter: int = 1000,
    v0: torch.Tensor | None = None,
    seed: int = 0,
    shift: float = 0.0,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> EigResult:
    """Eigenvalue of largest magnitude (sign kept) of ``A − shift·I``, plus ``shift``.

    Iterates ``v ← (A − σI)v / ‖(A − σI)v‖`` and reports the Rayleigh quotient
    ``vᵀAv``.  The eigenvector component of each other eigenvalue ``λ_i``
    shrinks by ``|λ_i − σ| / |λ₁ − σ|`` per product, so convergence is slow
    when the top two eigenvalues are close -- the reason the library uses
    :func:`lanczos` instead.  With ``σ = 0`` a Hessian with a negative
    eigenvalue larger in magnitude than ``λ_max`` (early in training, or at a
    saddle) makes this return that *negative* number; shifting by it (or by any
    ``σ`` below ``(λ_min + λ_max)/2``) recovers ``λ_max``.

    Stops when the Rayleigh quotient changes by less than ``tol`` relative.
    Returns an :class:`EigResult` with ``k = 1``.

    >>> A = torch.diag(torch.tensor([2.0, -3.0], dtype=torch.float64))
    >>> round(float(power_iteration(lambda v: A @ v, 2, tol=1e-12).values[0]), 6)
    -3.0
    >>> round(float(power_iteration(lambda v: A @ v, 2, tol=1e-12, shift=-3.0).values[0]), 6)
    2.0
    """
    dtype = dtype or getattr(matvec, "dtype", torch.float64)
    device = device or getattr(matvec, "device", "cpu")
    _check_sizes(dim, 1, max_iter, tol, seed)
    v = _start_vector(dim, v0, seed, dtype, device)
    lam = prev = None
    converged = False
    n = 0
    for n in range(1, max_iter + 1):
        w = matvec(v).to(dtype)
        lam = float(v @ w)  # Rayleigh quotient of A (v has unit norm)
        w = w - shift * v
        if prev is not None and abs(lam - prev) <= tol * abs(lam):
            converged = True
            break
        prev = lam
        norm = w.norm()
        if norm == 0:  # v is in the null space of A − σI: λ = σ exactly
            converged = True
            break
        v = w / norm
    return EigResult(torch.tensor([lam], dtype=dtype, device=device), v[None], n, converged)

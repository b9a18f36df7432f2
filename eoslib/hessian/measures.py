"""Curvature measurements of the book: sharpness and its relatives.

* sharpness ``λ_max(H)``, ``H = ∇²L(θ)`` of the full-batch loss: gradient
  descent ``θ' = θ − η∇L(θ)`` is stable on the local quadratic iff
  ``η λ_max < 2``, and in practice drives ``λ_max`` up to ``2/η``, the *edge of
  stability* (Cohen et al., 2021);
* directional sharpness ``vᵀHv / vᵀv`` along one direction (e.g. the step);
* batch sharpness ``E_B[g_Bᵀ H_B g_B / ‖g_B‖²]`` of minibatch losses ``L_B``,
  the quantity SGD equilibrates near ``2/η``;
* preconditioned sharpness ``λ_max(P⁻¹H)`` for a diagonal preconditioner ``P``
  (Adam: ``P = sqrt(v̂) + ε``), whose stability threshold is ``2/η`` (or
  ``(2 + 2β₁)/((1 − β₁)η)`` with momentum β₁; Cohen et al., 2022);
* the gradient of the sharpness, ``∇S(θ) = ∇_θ (uᵀ∇²L(θ)u)`` for the top unit
  eigenvector ``u`` (a third derivative of the loss), which drives
  self-stabilization (Damian, Nichani & Lee, 2023) and the central flow
  (Cohen et al., 2025).

All of them measure at the current parameters and change nothing.
"""

from __future__ import annotations

import torch
from torch import nn

import numpy as np

from .eig import EigResult, lanczos
from .hvp import HVP, LossFn, check_depends, check_model, chunks, frozen_buffers, model_loss


def top_eigenpairs(model: nn.Module, loss_fn: LossFn, inputs: torch.Tensor, targets: torch.Tensor,
                   k: int = 1, *, chunk_size: int | None = None, tol: float = 1e-3, max_iter: int = 100,
                   v0: torch.Tensor | None = None, seed: int = 0, method: str = "auto",
                   reuse_graph: bool = True) -> EigResult:
    """Top-``k`` eigenpairs of the full-batch Hessian: :func:`lanczos` over :class:`HVP`.

    Arguments as in :func:`sharpness`; ``k`` must not exceed the parameter count.
    """
    op = HVP(model, loss_fn, inputs, targets, chunk_size=chunk_size, method=method, reuse_graph=reuse_graph)
    return lanczos(op, op.dim, k, tol=tol, max_iter=max_iter, v0=v0, seed=seed)


def sharpness(model: nn.Module, loss_fn: LossFn, inputs: torch.Tensor, targets: torch.Tensor, *,
              chunk_size: int | None = None, tol: float = 1e-3, max_iter: int = 100,
              v0: torch.Tensor | None = None, seed: int = 0, method: str = "auto",
              reuse_graph: bool = True) -> float:
    """Sharpness ``λ_max(∇²L(θ))`` of the full-batch mean loss at the current parameters.

    Lanczos with full reorthogonalisation over Pearlmutter Hessian-vector
    products that reuse one first-order graph (see :mod:`eoslib.hessian.eig`
    and :mod:`eoslib.hessian.hvp` for the math).

    Args:
        model: the network; in train mode batch norm uses per-chunk statistics.
        loss_fn: ``loss_fn(outputs, targets)`` → 0-dim mean loss.
        inputs, targets: the full training set (examples along dim 0).
        chunk_size: examples per forward pass (None: all at once).
        tol: relative tolerance; ``1e-3`` gives ≲1e-3 relative error.
        max_iter: maximum Hessian-vector products.
        v0: warm start, e.g. the eigenvector of the previous measurement along a
            trajectory (:func:`top_eigenpairs` returns it; see benchmarks/README.md
            for how many products this saves).
        seed: seed of the random start vector.
        method, reuse_graph: Hessian-vector product flavour (:func:`hvp_operator`).

    Returns:
        ``λ_max`` as a float (use :func:`top_eigenpairs` for the eigenvector and the cost).

    >>> lin = nn.Linear(2, 1, bias=False).double()
    >>> x = torch.tensor([[1.0, 0.0], [0.0, 2.0]], dtype=torch.float64)
    >>> mse = lambda f, y: 0.5 * ((f - y) ** 2).sum(dim=1).mean()
    >>> round(sharpness(lin, mse, x, torch.zeros(2, 1), tol=1e-10), 6)  # H = xᵀx / n = diag(0.5, 2)
    2.0

    References:
        J. Cohen, S. Kaur, Y. Li, J. Z. Kolter, A. Talwalkar. Gradient Descent on
        Neural Networks Typically Occurs at the Edge of Stability. ICLR 2021.
    """
    result = top_eigenpairs(model, loss_fn, inputs, targets, 1, chunk_size=chunk_size, tol=tol,
                            max_iter=max_iter, v0=v0, seed=seed, method=method, reuse_graph=reuse_graph)
    return float(result.values[0])


def directional_sharpness(model: nn.Module, loss_fn: LossFn, inputs: torch.Tensor, targets: torch.Tensor,
                          v: torch.Tensor, *, chunk_size: int | None = None) -> float:
    """Curvature ``vᵀHv / vᵀv`` of the full-batch loss along ``v`` (flat, shape ``(P,)``).

    With ``v = ∇L`` it is the curvature along the GD step; it never exceeds
    ``λ_max``.  One Hessian-vector product.
    """
    op = HVP(model, loss_fn, inputs, targets, chunk_size=chunk_size)
    v = v.detach().to(op.device, op.dtype)
    vv = float(v @ v) if v.shape == (op.dim,) else 0.0
    if not vv > 0 or not torch.isfinite(v).all():
        raise ValueError(f"v must be a finite nonzero vector of shape ({op.dim},)")
    return float(v @ op(v)) / vv


def batch_curvatures(model: nn.Module, loss_fn: LossFn, inputs: torch.Tensor, targets: torch.Tensor,
                     batch_size: int, *, n_batches: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Per-minibatch ``(g_Bᵀ H_B g_B, ‖g_B‖²)`` for ``n_batches`` random minibatches ``B``.

    ``g_B`` and ``H_B`` are the gradient and Hessian of the minibatch mean loss
    ``L_B``; each ``B`` holds ``batch_size`` distinct examples drawn with a
    ``torch.Generator`` seeded by ``seed``. Costs ``n_batches`` gradients and
    Hessian-vector products on ``batch_size`` examples each. Both averages of
    batch sharpness are taken from these arrays (:func:`batch_sharpness`).

    Returns:
        Two float64 arrays of shape ``(n_batches,)``: ``gHg`` and ``gg``.
    """
    check_model(model)
    if isinstance(n_batches, bool) or not isinstance(n_batches, int) or isinstance(batch_size, bool) or \
            not isinstance(batch_size, int):
        raise ValueError(f"batch_size={batch_size!r} and n_batches={n_batches!r} must be integers")
    n = inputs.shape[0] if isinstance(inputs, torch.Tensor) and inputs.dim() else 0
    if not isinstance(targets, torch.Tensor) or targets.dim() == 0:
        raise ValueError("targets must be a tensor with examples along dim 0")
    if not 1 <= batch_size <= n:
        raise ValueError(f"batch_size={batch_size} must be between 1 and the number of examples ({n})")
    if len(targets) != n:
        raise ValueError(f"{len(targets)} targets for {n} inputs")
    if n_batches < 1:
        raise ValueError(f"n_batches={n_batches} must be at least 1")
    gen = torch.Generator().manual_seed(seed)
    ghg, gg = np.empty(n_batches), np.empty(n_batches)
    for b in range(n_batches):
        idx = torch.randperm(n, generator=gen)[:batch_size].to(inputs.device)
        op = HVP(model, loss_fn, inputs[idx], targets[idx])
        g = op.gradient()
        ghg[b], gg[b] = float(g @ op(g)), float(g @ g)
    return ghg, gg


def batch_sharpness(model: nn.Module, loss_fn: LossFn, inputs: torch.Tensor, targets: torch.Tensor,
                    batch_size: int, *, n_batches: int = 10, seed: int = 0, average: str = "ratios") -> float:
    """Batch sharpness: the curvature of minibatch losses along their own gradients.

    ``average="ratios"`` (default): ``E_B[g_Bᵀ H_B g_B / ‖g_B‖²]``, the default
    estimator of Andreyev & Beneventano's code (2024); ``"means"``:
    ``E_B[g_Bᵀ H_B g_B] / E_B[‖g_B‖²]``, the option there. Both come from
    :func:`batch_curvatures` (same arguments); a batch with zero gradient counts as 0.
    """
    if average not in ("ratios", "means"):
        raise ValueError(f"unknown average {average!r}; valid: ratios, means")
    ghg, gg = batch_curvatures(model, loss_fn, inputs, targets, batch_size, n_batches=n_batches, seed=seed)
    if average == "means":
        return float(ghg.mean() / gg.mean()) if gg.mean() > 0 else 0.0
    return float(np.mean(np.divide(ghg, gg, out=np.zeros_like(ghg), where=gg > 0)))


def sharpness_gradient(model: nn.Module, loss_fn: LossFn, inputs: torch.Tensor, targets: torch.Tensor,
                       u: torch.Tensor, *, chunk_size: int | None = None) -> torch.Tensor:
    """``∇S(θ)``, the gradient of the curvature along ``u``: ``∇_θ (uᵀ ∇²L(θ) u)`` (flat, ``(P,)``).

    For the top unit eigenvector ``u`` of a simple top eigenvalue, ``S(θ) = λ_max``
    and ``∇S = ∇_θ (uᵀ∇²L(θ)u)`` with ``u`` held fixed (the eigenvector's own
    change does not contribute, by first-order perturbation theory). It is the
    third derivative ``∇³L(θ)[u, u, ·]``, computed by differentiating the
    Hessian-vector product once more: ``g = ∇L`` with its graph, ``h = ∇(g·u)``
    with its graph, then ``∇(h·u)``. Costs about three times a Hessian-vector
    product. Self-stabilization (Damian, Nichani & Lee, 2023) uses
    ``α = −⟨∇L, ∇S⟩`` (progressive sharpening) and ``β = ‖∇S‖²``.

    Args:
        model, loss_fn, inputs, targets, chunk_size: as in :func:`sharpness`.
        u: flat direction ``(P,)``; it is used as given (normalise it for ``λ_max``).

    >>> lin = nn.Linear(2, 1, bias=False).double()   # a quadratic loss: ∇³L = 0
    >>> x = torch.eye(2, dtype=torch.float64); mse = lambda f, y: 0.5 * ((f - y) ** 2).sum(dim=1).mean()
    >>> sharpness_gradient(lin, mse, x, torch.zeros(2, 1), torch.tensor([1.0, 0.0])).tolist()
    [0.0, 0.0]
    """
    params = check_model(model)
    dim = sum(p.numel() for p in params)
    u = u.detach().to(params[0].device, params[0].dtype)
    if u.shape != (dim,) or not torch.isfinite(u).all():
        raise ValueError(f"u must be a finite vector of shape ({dim},), got {tuple(u.shape)}")
    us = [piece.view_as(p) for piece, p in zip(u.split([p.numel() for p in params]), params)]
    total = [torch.zeros_like(p) for p in params]
    for x, y, w in chunks(inputs, targets, chunk_size, params[0]):
        with frozen_buffers(model):
            loss = w * model_loss(model, loss_fn, x, y)
        check_depends(loss)
        g = torch.autograd.grad(loss, params, create_graph=True, allow_unused=True)
        gu = sum((a * b).sum() for a, b in zip(g, us) if a is not None)
        if not isinstance(gu, torch.Tensor) or not gu.requires_grad:
            continue  # the loss is linear in θ here: no curvature, no third derivative
        h = torch.autograd.grad(gu, params, create_graph=True, allow_unused=True)
        hu = sum((a * b).sum() for a, b in zip(h, us) if a is not None)
        if not isinstance(hu, torch.Tensor) or not hu.requires_grad:
            continue  # quadratic here: ∇³L = 0
        third = torch.autograd.grad(hu, params, allow_unused=True)
        total = [t if d is None else t + d for t, d in zip(total, third)]
    return torch.cat([t.reshape(-1) for t in total]).detach()


def preconditioned_sharpness(model: nn.Module, loss_fn: LossFn, inputs: torch.Tensor, targets: torch.Tensor,
                             precond: torch.Tensor, *, tol: float = 1e-3, max_iter: int = 100,
                             v0: torch.Tensor | None = None, seed: int = 0,
                             chunk_size: int | None = None) -> float:
    """``λ_max(P⁻¹H) = λ_max(P^{-1/2} H P^{-1/2})`` for a positive diagonal ``P``.

    ``precond`` is the flat ``(P,)`` diagonal; for Adam ``P = sqrt(v̂) + ε`` (the
    learning rate enters the threshold, not ``P``).  The symmetric form
    ``P^{-1/2} H P^{-1/2}`` has the same eigenvalues and is what Lanczos sees;
    the returned eigenvectors are those of the symmetric form.
    """
    op = HVP(model, loss_fn, inputs, targets, chunk_size=chunk_size)
    d = precond.detach().to(op.device, op.dtype) if isinstance(precond, torch.Tensor) else None
    if d is None or d.shape != (op.dim,) or not torch.isfinite(d).all() or not (d > 0).all():
        raise ValueError(f"precond must be a finite positive tensor of shape ({op.dim},)")
    s = d.rsqrt()
    result = lanczos(lambda u: s * op(s * u), op.dim, 1, tol=tol, max_iter=max_iter, v0=v0, seed=seed,
                     dtype=op.dtype, device=op.device)
    return float(result.values[0])


__all__ = ["top_eigenpairs", "sharpness", "directional_sharpness", "batch_curvatures", "batch_sharpness",
           "sharpness_gradient", "preconditioned_sharpness"]

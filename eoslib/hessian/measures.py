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
  ``(2 + 2β₁)/((1 − β₁)η)`` with momentum β₁; Cohen et al., 2022).

All of them measure at the current parameters and change nothing.
"""

from __future__ import annotations

import torch
from torch import nn

from .eig import EigResult, lanczos
from .hvp import HVP, LossFn, check_model


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
              v0: torch.Tensor | None = None, seed: int = 0, return_result: bool = False,
              method: str = "auto", reuse_graph: bool = True) -> float | EigResult:
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
        v0: warm start, e.g. ``result.vectors[0]`` from the previous measurement
            along a trajectory (in the benchmark, every 10 GD steps: a median of
            2 products instead of 16-28 cold).
        seed: seed of the random start vector.
        return_result: return the :class:`EigResult` (value, eigenvector,
            ``n_hvp``) instead of the float.
        method, reuse_graph: Hessian-vector product flavour (:func:`hvp_operator`).

    Returns:
        ``λ_max`` as a float, or the :class:`EigResult` if ``return_result``.

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
    return result if return_result else float(result.values[0])


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


def batch_sharpness(model: nn.Module, loss_fn: LossFn, inputs: torch.Tensor, targets: torch.Tensor,
                    batch_size: int, *, n_batches: int = 10, seed: int = 0) -> float:
    """Mean over random minibatches ``B`` of ``g_Bᵀ H_B g_B / ‖g_B‖²``.

    ``g_B`` and ``H_B`` are the gradient and Hessian of the minibatch mean loss
    ``L_B``; each ``B`` holds ``batch_size`` distinct examples drawn with a
    ``torch.Generator`` seeded by ``seed``.  (This mean of ratios is the default
    estimator of Andreyev & Beneventano's code, 2024; their ratio of means
    ``E[gᵀHg] / E[‖g‖²]`` is an option there, and chapter 9 compares the two:
    they differed by 0.01–0.04 × 2/η in its runs.)  Costs ``n_batches`` gradients and
    Hessian-vector products on ``batch_size`` examples each.
    """
    check_model(model)
    n = inputs.shape[0] if isinstance(inputs, torch.Tensor) and inputs.dim() else 0
    if not 1 <= batch_size <= n:
        raise ValueError(f"batch_size={batch_size} must be between 1 and the number of examples ({n})")
    if n_batches < 1:
        raise ValueError(f"n_batches={n_batches} must be at least 1")
    gen = torch.Generator().manual_seed(seed)
    ratios = []
    for _ in range(n_batches):
        idx = torch.randperm(n, generator=gen)[:batch_size]
        op = HVP(model, loss_fn, inputs[idx], targets[idx])
        g = op.gradient()
        gg = float(g @ g)
        ratios.append(float(g @ op(g)) / gg if gg > 0 else 0.0)
    return sum(ratios) / len(ratios)


def preconditioned_sharpness(model: nn.Module, loss_fn: LossFn, inputs: torch.Tensor, targets: torch.Tensor,
                             precond: torch.Tensor, *, tol: float = 1e-3, max_iter: int = 100,
                             v0: torch.Tensor | None = None, seed: int = 0, return_result: bool = False,
                             chunk_size: int | None = None) -> float | EigResult:
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
    return result if return_result else float(result.values[0])


__all__ = ["top_eigenpairs", "sharpness", "directional_sharpness", "batch_sharpness",
           "preconditioned_sharpness"]

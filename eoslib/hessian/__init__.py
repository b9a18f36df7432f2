"""eoslib.hessian: a fast, verified sharpness engine.

The book's central measurement is the *sharpness* ``λ_max(∇²L(θ))``, the top
eigenvalue of the Hessian of the full-batch training loss.  Gradient descent
``θ' = θ − η∇L(θ)`` on a quadratic is stable iff ``η λ_max < 2``; on neural
networks it drives ``λ_max`` up to ``2/η`` and hovers there (Cohen et al., 2021).

Three small modules, read in this order:

- :mod:`eoslib.hessian.hvp`       ``v ↦ Hv`` by Pearlmutter's trick, chunked over the data
- :mod:`eoslib.hessian.eig`       Lanczos and power iteration on any symmetric matvec
- :mod:`eoslib.hessian.measures`  sharpness, directional / batch / preconditioned sharpness

>>> from eoslib.hessian import sharpness
>>> # lam = sharpness(model, loss_fn, X, Y)                           # cold start
>>> # r = top_eigenpairs(model, loss_fn, X, Y, v0=r.vectors[0])          # tracking, warm start

Reference: J. Cohen, S. Kaur, Y. Li, J. Z. Kolter, A. Talwalkar. Gradient Descent
on Neural Networks Typically Occurs at the Edge of Stability. ICLR 2021.
"""

from .eig import EigResult, lanczos, power_iteration
from .hvp import HVP, dense_hessian, flat_params, hvp_operator, unflatten
from .measures import (batch_curvatures, batch_sharpness, directional_sharpness, preconditioned_sharpness,
                       sharpness, sharpness_gradient, top_eigenpairs)

__all__ = ["EigResult", "HVP", "batch_curvatures", "batch_sharpness", "sharpness_gradient", "dense_hessian", "directional_sharpness", "flat_params",
           "hvp_operator", "lanczos", "power_iteration", "preconditioned_sharpness", "sharpness",
           "top_eigenpairs", "unflatten"]

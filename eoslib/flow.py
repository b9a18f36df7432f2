"""Gradient descent as a discretisation of gradient flow, and distances between trajectories.

Gradient flow is the ODE

    dθ/dτ = −∇L(θ),        θ(0) = θ_0,

and gradient descent θ_{t+1} = θ_t − η∇L(θ_t) is its forward-Euler discretisation
with time step η: step t of GD sits at *time* τ = t·η.  On the local quadratic
model with curvature λ the Euler factor is 1 − ηλ against the exact exp(−ηλ),
so GD follows the flow closely while ηλ_max ≪ 1, and it becomes unstable once
λ_max > 2/η (Cohen et al., 2021, Sec. 3).  To compare runs with different step
sizes we therefore index them by time τ, not by step.

* :func:`record_path` -- a :func:`eoslib.train.train` run that also keeps the
  flat parameters θ_t at every sharpness measurement (cached like a run), as a
  :class:`Trajectory`;
* :func:`distances` -- ‖θ_a(τ) − θ_b(τ)‖ at the times two trajectories share;
* :meth:`Trajectory.crossing_time` -- the first time the recorded sharpness
  reaches a level (:func:`eoslib.analysis.crossing_step` on times).

Reference: J. Cohen, S. Kaur, Y. Li, J. Z. Kolter, A. Talwalkar. Gradient
Descent on Neural Networks Typically Occurs at the Edge of Stability. ICLR 2021.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import cache
from .analysis import crossing_step
from .hessian import flat_params
from .train import Run, TrainConfig, cache_key, train


@dataclass
class Trajectory:
    """A recorded run: parameters at the sharpness-measurement steps."""

    run: Run  # the run (losses, sharpness, config); run.model is the final model
    steps: np.ndarray  # (m,) steps t of the records (= run.sharpness_steps)
    params: torch.Tensor  # (m, P) flat parameters θ_t, one row per record

    @property
    def times(self) -> np.ndarray:
        """(m,) gradient-flow times τ = t·η of the records."""
        return self.steps * self.run.config.lr

    @property
    def sharpness(self) -> np.ndarray:
        """(m,) sharpness λ_max at the records."""
        return np.asarray(self.run.sharpness)

    def crossing_time(self, level: float) -> float | None:
        """First recorded time τ = t·η at which the sharpness is ≥ ``level`` (None if never)."""
        return crossing_step(self.times, self.sharpness, level)


def record_path(config: TrainConfig, *, cache_dir: str | Path | None = None,
                data_root: str | Path | None = None, download: bool = False) -> Trajectory:
    """Train as ``config`` says, keeping θ_t at every sharpness measurement.

    The records are the steps ``0, k, 2k, …`` with ``k = config.sharpness_every``
    (which must be positive).  The training loop is :func:`eoslib.train.train`
    itself, so the run is identical to an ordinary one with the same config.
    With ``cache_dir`` the result is stored under the run's key (plus a tag).

    Returns:
        :class:`Trajectory` with ``params`` of shape ``(m, P)`` in the config's dtype, on the CPU
        (whatever the training device, so that cached and fresh paths compare).
    """
    if config.sharpness_every < 1:
        raise ValueError("record_path needs sharpness_every >= 1 (records are taken at the measurements)")
    file = None
    if cache_dir is not None:
        key = {**config.to_dict(), "record": "params", "torch_threads": torch.get_num_threads()}
        file = Path(cache_dir) / f"{cache_key(config, record='params')}.path.pt"
        saved = cache.load_tensors(file)
        try:
            if saved is not None and saved.get("key") == key:
                run = Run.from_dict(saved["run"])
                if saved["params"].shape[0] == len(run.sharpness_steps):
                    return Trajectory(run, np.asarray(run.sharpness_steps), saved["params"])
            if saved is not None:
                raise ValueError("it holds another configuration's path")
        except Exception as err:  # noqa: BLE001 - an unusable entry is recomputed, never trusted
            warnings.warn(f"{file}: unusable cache entry ({type(err).__name__}); recomputing", UserWarning,
                          stacklevel=2)
    rows: list[torch.Tensor] = []
    run = train(config, data_root=data_root, download=download, progress=False,
                callback=lambda t, model, run: rows.append(flat_params(model).to("cpu", copy=True)))
    params = torch.stack(rows)
    if file is not None:
        try:
            cache.save_tensors(file, {"key": key, "run": run.to_dict(), "params": params})
        except OSError as err:
            warnings.warn(f"cache folder {file.parent} is not writable ({err.strerror or err}); the path is "
                          f"not cached", UserWarning, stacklevel=2)
    return Trajectory(run, np.asarray(run.sharpness_steps), params)


def distances(a: Trajectory, b: Trajectory, *, relative: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """‖θ_a(τ) − θ_b(τ)‖ at every time τ recorded by both paths.

    Args:
        a, b: paths from the same initialisation (e.g. two step sizes).
        relative: divide by ‖θ_a(τ) − θ_a(0)‖, how far ``a`` has moved (0 at τ = 0).

    Returns:
        ``(times, dist)``, both ``(m,)``; times are matched to 1e-9 relative.

    >>> cfg = TrainConfig(n=20, width=4, depth=1, lr=0.1, steps=4, sharpness_every=1)
    >>> times, dist = distances(record_path(cfg), record_path(cfg))
    >>> times.round(3).tolist(), dist.tolist()
    ([0.0, 0.1, 0.2, 0.3], [0.0, 0.0, 0.0, 0.0])
    """
    tb = b.times
    times, dist = [], []
    for i, tau in enumerate(a.times):
        j = np.flatnonzero(np.abs(tb - tau) <= 1e-9 * max(1.0, abs(tau)))
        if len(j) == 0:
            continue
        d = float((a.params[i] - b.params[j[0]].to(a.params.device, a.params.dtype)).norm())
        if relative:
            moved = float((a.params[i] - a.params[0]).norm())
            d = d / moved if moved > 0 else (0.0 if d == 0 else math.inf)
        times.append(float(tau))
        dist.append(d)
    if not times:
        raise ValueError("the two paths share no recorded time t·η; align sharpness_every with the step sizes")
    return np.asarray(times), np.asarray(dist)


__all__ = ["Trajectory", "record_path", "distances"]

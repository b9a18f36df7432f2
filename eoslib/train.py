"""Tracked training runs: ``train(config) -> Run``.

One loop serves every chapter. At step t (t = 0, 1, ...) it

1. computes the training loss L(θ_t) and the gradient: the *exact full-batch*
   gradient for GD and momentum, accumulated over chunks of the data as
   ∇L = Σ_c (n_c/n) ∇L_c, so the chunk size (memory) never changes the algorithm
   (Cohen et al., 2021, App. B); a fresh minibatch gradient for SGD;
2. records L(θ_t) (full batch, also under SGD) and the accuracy;
3. every ``sharpness_every`` steps measures the sharpness λ_max(∇²L(θ_t)) on the
   first ``sharpness_n`` examples, warm-starting Lanczos from the previous top
   eigenvector, plus the optional ``metrics``;
4. stops as ``diverged`` if the loss is not finite or exceeds ``max_loss``, as
   ``converged`` once a loss or accuracy goal is met;
5. takes the optimizer step θ_{t+1} = update(θ_t, ∇L).

The same config on the same device gives the same trace, bit for bit on CPU.
With a ``cache_dir`` a finished run is stored under the hash of its config
(:mod:`eoslib.cache`), and an interrupted run resumes from its last checkpoint.

Reference: J. Cohen et al., *Gradient Descent on Neural Networks Typically
Occurs at the Edge of Stability*, ICLR 2021.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Mapping

import torch

from . import __version__, cache, hessian
from .data import Dataset, load_dataset
from .hessian.hvp import trainable
from .losses import accuracy, get_loss
from .models import make_model
from .optim import adam_preconditioner, make_optimizer, stability_threshold

METRICS = ("step_sharpness", "batch_sharpness", "preconditioned_sharpness")
DTYPES = {"float32": torch.float32, "float64": torch.float64}
Options = Mapping[str, Any]


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a run (its hash is the cache key)."""

    model: str = "fc-tanh"  # a name of eoslib.models.MODELS
    dataset: str = "digits"  # a name of eoslib.data.DATASETS
    n: int = 1000  # training examples (the first n)
    loss: str = "mse"  # "mse" (½‖f − y‖², paper's convention) or "ce"
    opt: str = "gd"  # "gd", "sgd", "heavy-ball", "nesterov", "adam"
    lr: float = 0.05  # step size η
    momentum: float = 0.0  # β of heavy ball / Nesterov / SGD
    beta1: float = 0.9  # Adam's β₁
    beta2: float = 0.999  # Adam's β₂
    batch_size: int | None = None  # SGD minibatch size; None = full batch
    steps: int = 1000  # maximum number of optimizer steps
    sharpness_every: int = 10  # measure the sharpness every k steps; 0 = never
    sharpness_n: int | None = None  # examples used for the sharpness; None = all n
    sharpness_tol: float = 1e-3  # relative tolerance of Lanczos
    metrics: tuple[str, ...] = ()  # extra measurements, from METRICS
    width: int | None = None  # model width (None: the architecture's default)
    depth: int | None = None  # model depth (None: the architecture's default)
    model_options: Options = field(default_factory=dict)  # further make_model options, e.g. {"heads": 2}
    data_options: Options = field(default_factory=dict)  # further load_dataset options, e.g. {"dim": 50}
    seed: int = 0  # seed of the initialisation and of SGD's minibatches
    dtype: str = "float32"  # "float32" or "float64"
    device: str = "cpu"  # "cpu" or "cuda"
    chunk_size: int | None = None  # examples per physical batch; None = all at once
    loss_goal: float | None = None  # stop ("converged") once the train loss is below this
    acc_goal: float | None = None  # stop ("converged") once the train accuracy reaches this
    max_loss: float = 1e4  # a loss above this (or not finite) counts as divergence

    def __post_init__(self):
        for name in ("model_options", "data_options"):  # a read-only copy: the config stays frozen
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))
        if not self.lr > 0 or not math.isfinite(self.lr):
            raise ValueError(f"lr={self.lr} must be a positive number")
        for name in ("n", "steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be positive")
        if self.sharpness_every < 0:
            raise ValueError(f"sharpness_every={self.sharpness_every} must be >= 0")
        if self.batch_size is not None and not 1 <= self.batch_size <= self.n:
            raise ValueError(f"batch_size={self.batch_size} must lie in 1..n={self.n}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype={self.dtype!r}; valid: {', '.join(DTYPES)}")
        unknown = set(self.metrics) - set(METRICS)
        if unknown:
            raise ValueError(f"unknown metrics {sorted(unknown)}; valid: {', '.join(METRICS)}")
        if "preconditioned_sharpness" in self.metrics and self.opt != "adam":
            raise ValueError("preconditioned_sharpness needs opt='adam'")
        stability_threshold(self.opt, self.lr, self.momentum, self.beta1)  # validates opt and momentum

    @property
    def threshold(self) -> float:
        """The optimizer's stability threshold (2/η for GD)."""
        return stability_threshold(self.opt, self.lr, self.momentum, self.beta1)

    def __hash__(self) -> int:
        return hash(json.dumps(self.to_dict(), sort_keys=True))

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["metrics"] = list(self.metrics)
        d["model_options"] = dict(sorted(self.model_options.items()))
        d["data_options"] = dict(sorted(self.data_options.items()))
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        d = dict(d)
        d["metrics"] = tuple(d.get("metrics", ()))
        return cls(**d)


@dataclass
class Run:
    """The record of one run. Lists indexed by step hold one value per step taken."""

    config: TrainConfig
    status: str = "running"  # "converged", "diverged", "max_steps" (or "running")
    train_loss: list[float] = field(default_factory=list)  # L(θ_t), t = 0..T−1
    train_acc: list[float] = field(default_factory=list)  # accuracy at θ_t (classification)
    sharpness_steps: list[int] = field(default_factory=list)  # steps t of the measurements
    sharpness: list[float] = field(default_factory=list)  # λ_max(∇²L(θ_t)) at those steps
    hvps: list[int] = field(default_factory=list)  # Hessian-vector products per measurement
    extras: dict[str, list[float]] = field(default_factory=dict)  # metrics, aligned with sharpness_steps
    threshold: float = float("nan")  # the optimizer's stability threshold
    wall_seconds: float = 0.0
    dataset: str = ""  # description of the data that ran
    model: torch.nn.Module | None = field(default=None, repr=False, compare=False)  # final model

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in ("config", "model")}
        d["config"] = self.config.to_dict()
        d["eoslib_version"] = __version__
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Run":
        names = {f.name for f in dataclasses.fields(cls)} - {"config", "model"}
        return cls(config=TrainConfig.from_dict(d["config"]), **{k: v for k, v in d.items() if k in names})


# ---------------------------------------------------------------- pieces

def build(config: TrainConfig, *, data_root: str | Path | None = None, download: bool = False):
    """The model and training set that ``config`` describes: ``(model, data)``."""
    dtype = DTYPES[config.dtype]
    data = load_dataset(config.dataset, config.n, loss=config.loss, root=data_root, download=download, dtype=dtype,
                        device=config.device, **config.data_options)
    model = make_model(config.model, data.input_shape, data.n_out, seed=config.seed, dtype=dtype,
                       device=config.device, width=config.width, depth=config.depth, **config.model_options)
    return model, data


def _chunks(n: int, size: int | None):
    size = n if size is None else size
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


def full_batch_gradient(model: torch.nn.Module, loss_fn, inputs: torch.Tensor, targets: torch.Tensor,
                        chunk_size: int | None = None) -> tuple[float, float | None]:
    """Put ∇L of the full-batch mean loss into ``p.grad``; return (L, accuracy or None).

    L = Σ_c (n_c/n) L_c over chunks c, so the result does not depend on ``chunk_size``.
    """
    n = len(inputs)
    model.zero_grad(set_to_none=True)
    total, correct = 0.0, 0.0
    classify = targets.dim() >= 1 and (not targets.is_floating_point() or targets.shape[-1] > 1)
    for s in _chunks(n, chunk_size):
        out = model(inputs[s])
        loss = loss_fn(out, targets[s]) * ((s.stop - s.start) / n)
        loss.backward()
        total += loss.item()
        if classify:
            correct += accuracy(out.detach(), targets[s]) * (s.stop - s.start)
    return total, (correct / n if classify else None)


@torch.no_grad()
def evaluate(model: torch.nn.Module, loss_fn, inputs, targets, chunk_size: int | None = None):
    """(mean loss, accuracy or None) without touching gradients."""
    n = len(inputs)
    total, correct = 0.0, 0.0
    classify = not targets.is_floating_point() or targets.shape[-1] > 1
    for s in _chunks(n, chunk_size):
        out = model(inputs[s])
        total += loss_fn(out, targets[s]).item() * (s.stop - s.start) / n
        if classify:
            correct += accuracy(out, targets[s]) * (s.stop - s.start)
    return total, (correct / n if classify else None)


def _flat_grad(model: torch.nn.Module) -> torch.Tensor:
    """∇L as one flat vector over the *trainable* parameters, in the order eoslib.hessian uses."""
    return torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1)
                      for p in trainable(model)])


# ---------------------------------------------------------------- the loop

def train(config: TrainConfig, *, cache_dir: str | Path | None = None, data_root: str | Path | None = None,
          download: bool = False, progress: bool = True, checkpoint_every: int = 200,
          callback: Callable[[int, torch.nn.Module, Run], None] | None = None) -> Run:
    """Train as ``config`` says and return the :class:`Run`.

    Args:
        config: the experiment.
        cache_dir: if given, load a finished run from there, resume an
            interrupted one from its checkpoint, and save the result.
        data_root, download: where datasets live, and whether a download is allowed.
        progress: show a ``tqdm`` bar with the live loss and sharpness.
        checkpoint_every: steps between checkpoints (with ``cache_dir``).
        callback: ``callback(t, model, run)`` after each sharpness measurement,
            for chapter-specific measurements; not allowed with ``cache_dir``
            (the cache could not know what it recorded).

    Returns:
        The run, with ``run.model`` the final model.
    """
    if callback is not None and cache_dir is not None:
        raise ValueError("a callback's measurements cannot be cached; pass cache_dir=None")
    model, data = build(config, data_root=data_root, download=download)
    loss_fn = get_loss(config.loss)
    paths = None
    if cache_dir is not None:
        key = cache.run_key(config.to_dict())
        folder = Path(cache_dir)
        paths = {"run": folder / f"{key}.json", "model": folder / f"{key}.model.pt", "ckpt": folder / f"{key}.ckpt.pt"}
        done, weights = cache.load_json(paths["run"]), cache.load_tensors(paths["model"], config.device)
        if done is not None and weights is not None:
            run = Run.from_dict(done)
            model.load_state_dict(weights["model"])
            run.model = model
            return run

    optimizer = make_optimizer(config.opt, model.parameters(), config.lr, momentum=config.momentum,
                               beta1=config.beta1, beta2=config.beta2)
    generator = torch.Generator().manual_seed(config.seed)
    run = Run(config, threshold=config.threshold, dataset=data.description)
    start, v0, elapsed = 0, None, 0.0
    if paths is not None and (ckpt := cache.load_tensors(paths["ckpt"], config.device)) is not None:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        generator.set_state(ckpt["generator"])
        run, start, v0, elapsed = Run.from_dict(ckpt["run"]), ckpt["step"], ckpt["v0"], ckpt["elapsed"]

    sub = slice(0, config.sharpness_n or config.n)
    xs, ys = data.inputs[sub], data.targets[sub]
    clock = time.perf_counter()
    bar = _progress_bar(config.steps, start, progress)
    run.status = "max_steps"
    try:
        for t in range(start, config.steps):
            if paths is not None and t > start and t % checkpoint_every == 0:
                run.wall_seconds = elapsed + time.perf_counter() - clock
                cache.save_tensors(paths["ckpt"], dict(model=model.state_dict(), optimizer=optimizer.state_dict(),
                                                       generator=generator.get_state(), run=run.to_dict(), step=t,
                                                       v0=v0, elapsed=run.wall_seconds))
            if config.batch_size is None:
                loss, acc = full_batch_gradient(model, loss_fn, data.inputs, data.targets, config.chunk_size)
            else:
                idx = torch.randperm(config.n, generator=generator)[: config.batch_size].to(config.device)
                full_batch_gradient(model, loss_fn, data.inputs[idx], data.targets[idx], config.chunk_size)
                loss, acc = evaluate(model, loss_fn, data.inputs, data.targets, config.chunk_size)
            run.train_loss.append(loss)
            if acc is not None:
                run.train_acc.append(acc)
            if not math.isfinite(loss) or loss > config.max_loss:
                run.status = "diverged"
                break
            if (config.loss_goal is not None and loss < config.loss_goal) or \
                    (config.acc_goal is not None and acc is not None and acc >= config.acc_goal):
                run.status = "converged"
                break
            if config.sharpness_every and t % config.sharpness_every == 0:
                grads = [p.grad for p in model.parameters()]  # the step below still needs them
                v0 = _measure(model, loss_fn, optimizer, xs, ys, config, run, t, v0, data)
                for p, g in zip(model.parameters(), grads):
                    p.grad = g
                if callback is not None:
                    callback(t, model, run)
                bar.set_postfix(loss=f"{loss:.4g}", sharpness=f"{run.sharpness[-1]:.4g}",
                                threshold=f"{run.threshold:.4g}", refresh=False)
            optimizer.step()
            bar.update(1)
    finally:
        bar.close()
    model.zero_grad(set_to_none=True)
    run.wall_seconds = elapsed + time.perf_counter() - clock
    run.model = model
    if paths is not None:
        cache.save_tensors(paths["model"], {"model": model.state_dict()})
        cache.save_json(paths["run"], run.to_dict())
        paths["ckpt"].unlink(missing_ok=True)
    return run


def _measure(model, loss_fn, optimizer, xs, ys, config: TrainConfig, run: Run, t: int, v0, data: Dataset):
    """Sharpness (and metrics) at θ_t; returns the new warm-start vector."""
    grad = _flat_grad(model) if "step_sharpness" in config.metrics else None
    res = hessian.top_eigenpairs(model, loss_fn, xs, ys, 1, chunk_size=config.chunk_size,
                                 tol=config.sharpness_tol, v0=v0, seed=config.seed + t)
    run.sharpness_steps.append(t)
    run.sharpness.append(float(res.values[0]))
    run.hvps.append(int(res.n_hvp))
    extra: dict[str, float] = {}
    if grad is not None:
        extra["step_sharpness"] = hessian.directional_sharpness(model, loss_fn, xs, ys, grad,
                                                                chunk_size=config.chunk_size)
    if "batch_sharpness" in config.metrics:
        extra["batch_sharpness"] = hessian.batch_sharpness(model, loss_fn, data.inputs, data.targets,
                                                           config.batch_size or config.n, seed=config.seed + t)
    if "preconditioned_sharpness" in config.metrics:
        extra["preconditioned_sharpness"] = (
            hessian.preconditioned_sharpness(model, loss_fn, xs, ys, adam_preconditioner(optimizer, model.parameters()),
                                             tol=config.sharpness_tol, seed=config.seed + t)
            if optimizer.state else float("nan"))
    for name, value in extra.items():
        run.extras.setdefault(name, []).append(float(value))
    return res.vectors[0].detach()


def _progress_bar(total: int, initial: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, disable=not enabled, desc="train", leave=False)

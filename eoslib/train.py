"""Tracked training runs: ``train(config) -> Run``.

One loop serves every chapter. At step t (t = 0, 1, ...) it

1. computes the training loss L(θ_t) and the gradient: the *exact full-batch*
   gradient for GD and momentum, accumulated over chunks of the data as
   ∇L = Σ_c (n_c/n) ∇L_c, so the chunk size (memory) never changes the algorithm
   (Cohen et al., 2021, App. B); a fresh minibatch gradient for SGD;
2. records L(θ_t) (full batch, also under SGD) and, on labelled data, the accuracy;
3. stops as ``diverged`` if the loss is not finite or exceeds ``max_loss``, as
   ``converged`` once a loss or accuracy goal is met;
4. every ``sharpness_every`` steps measures the sharpness λ_max(∇²L(θ_t)) by
   Lanczos, warm-started from the previous top eigenvector, plus the optional
   ``metrics``. Under full-batch training the Hessian-vector products run on the
   step's own gradient graph (built with ``create_graph=True``), so a measurement
   costs only its products, not another gradient;
5. takes the optimizer step θ_{t+1} = update(θ_t, ∇L).

:func:`train` is that loop (read it next to ``src/gd.py`` of the paper's code,
locuslab/edge-of-stability); the pieces it calls follow it: the gradient
(:func:`full_batch_gradient`), the measurement (:func:`_measure`) and the cache
with resume (:class:`_Store`).

The same config on the same device (and the same number of CPU threads) gives the
same trace, bit for bit on CPU. With a ``cache_dir`` a finished run is stored
under the hash of its config (:mod:`eoslib.cache`), and an interrupted run
resumes from its last checkpoint.

Reference: J. Cohen et al., *Gradient Descent on Neural Networks Typically
Occurs at the Edge of Stability*, ICLR 2021.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import numbers
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Mapping

import torch

from . import __version__, cache, hessian
from .data import DATASETS, Dataset, check_device, check_request, load_dataset
from .hessian.hvp import trainable
from .losses import LOSSES, accuracy, get_loss
from .models import INPUTS, MODELS, count_parameters, make_model
from .optim import OPTIMIZERS, adam_preconditioner, make_optimizer, stability_threshold, validate

METRICS = ("step_sharpness", "batch_sharpness", "preconditioned_sharpness")
DTYPES = {"float32": torch.float32, "float64": torch.float64}
MAX_PARAMETERS = 100_000_000  # Lanczos keeps up to 100 vectors of P numbers: refuse larger models up front
MAX_SEED = 2**62  # seeds are offset by the step (seed + t): stay clear of int64's end
Options = Mapping[str, Any]


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a run (its hash is the cache key). Validated fully when built."""

    model: str = "fc-tanh"  # a name of eoslib.models.MODELS
    dataset: str = "digits"  # a name of eoslib.data.DATASETS
    n: int = 1000  # training examples (the first n)
    loss: str = "mse"  # "mse" (½‖f − y‖², paper's convention) or "ce"
    opt: str = "gd"  # "gd", "sgd", "heavy_ball", "nesterov", "adam"
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
        _validate(self)

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


def _validate(c: TrainConfig) -> None:
    """Check every field of ``c`` (one-line ValueErrors naming the valid choices) and normalise its types."""
    def put(name, value):
        object.__setattr__(c, name, value)

    def integer(name, minimum, maximum=None, optional=False):
        value = getattr(c, name)
        if optional and value is None:
            return
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum or \
                (maximum is not None and value > maximum):
            bound = f"in {minimum}..{maximum}" if maximum is not None else f">= {minimum}"
            raise ValueError(f"{name}={value!r} must be {'None or ' if optional else ''}an integer {bound}")
        put(name, int(value))

    def real(name, low=-math.inf, high=math.inf, *, low_open=False, high_open=False, optional=False, text=None):
        value = getattr(c, name)
        if optional and value is None:
            return
        ok = not isinstance(value, bool) and isinstance(value, numbers.Real) and not math.isnan(value)
        ok = ok and (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
        if not ok:
            raise ValueError(f"{name}={value!r} must be {'None or ' if optional else ''}{text}")
        put(name, float(value))

    def choice(name, valid):
        value = getattr(c, name)
        if not isinstance(value, str) or value not in valid:
            raise ValueError(f"{name}={value!r} is not one of {', '.join(valid)}")

    for name in ("model_options", "data_options"):  # a read-only copy: the config stays frozen
        value = getattr(c, name)
        try:
            value = dict(value)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a dict of options, got {value!r}") from None
        if not all(isinstance(k, str) for k in value):
            raise ValueError(f"{name} keys must be option names (strings)")
        put(name, MappingProxyType(value))
    choice("model", list(MODELS))
    choice("dataset", list(DATASETS))
    choice("loss", list(LOSSES))
    choice("opt", list(OPTIMIZERS))
    choice("dtype", list(DTYPES))
    if not isinstance(c.device, str):
        raise ValueError(f"device={c.device!r} must be a string such as 'cpu' or 'cuda'")
    check_device(c.device)
    integer("n", 1)
    integer("steps", 1)
    integer("sharpness_every", 0)
    integer("sharpness_n", 1, c.n, optional=True)
    integer("batch_size", 1, c.n, optional=True)
    integer("chunk_size", 1, optional=True)
    integer("width", 1, optional=True)
    integer("depth", 0, optional=True)
    integer("seed", 0, MAX_SEED)
    real("lr", 0, low_open=True, high_open=True, text="a positive finite number")
    for name in ("momentum", "beta1", "beta2"):
        real(name, 0, 1, high_open=True, text="a number in [0, 1)")
    real("sharpness_tol", 0, 1, low_open=True, high_open=True, text="a relative tolerance in (0, 1)")
    real("loss_goal", 0, low_open=True, high_open=True, optional=True, text="a positive finite number")
    real("acc_goal", 0, 1, low_open=True, optional=True, text="an accuracy in (0, 1]")
    real("max_loss", 0, low_open=True, text="a positive number")
    validate(c.opt, c.lr, c.momentum, c.beta1, c.beta2)
    if isinstance(c.metrics, str) or not all(isinstance(m, str) for m in c.metrics):
        raise ValueError(f"metrics={c.metrics!r} must be a tuple of names from {', '.join(METRICS)}")
    put("metrics", tuple(c.metrics))
    unknown = set(c.metrics) - set(METRICS)
    if unknown:
        raise ValueError(f"unknown metrics {sorted(unknown)}; valid: {', '.join(METRICS)}")
    if c.metrics and not c.sharpness_every:
        raise ValueError("metrics are measured with the sharpness: set sharpness_every > 0")
    if "preconditioned_sharpness" in c.metrics and c.opt != "adam":
        raise ValueError("preconditioned_sharpness needs opt='adam'")
    # the data and the model, checked without loading or allocating anything
    spec, _, input_shape, n_out = check_request(c.dataset, c.n, loss=c.loss, options=dict(c.data_options))
    if c.acc_goal is not None and spec.task != "classification":
        raise ValueError(f"acc_goal needs a classification dataset; {c.dataset!r} is a regression task")
    kind = INPUTS[c.model]
    if not (kind == spec.inputs or (kind == "vector" and spec.inputs == "image")):
        fits = [m for m, k in INPUTS.items() if k == spec.inputs or (k == "vector" and spec.inputs == "image")]
        users = [d for d, s in DATASETS.items() if s.inputs == kind or (kind == "vector" and s.inputs == "image")]
        raise ValueError(f"model {c.model!r} cannot take dataset {c.dataset!r} ({spec.inputs} inputs); "
                         f"models for {c.dataset}: {', '.join(fits)}; datasets for {c.model}: {', '.join(users)}")
    clash = {"width", "depth"} & set(c.model_options)
    if clash:
        raise ValueError(f"set {sorted(clash)} through the config's own fields, not model_options")
    p = count_parameters(c.model, input_shape, n_out, width=c.width, depth=c.depth, **c.model_options)
    if p > MAX_PARAMETERS:
        raise ValueError(f"model {c.model!r} would have {p:,} parameters, above eoslib's bound of "
                         f"{MAX_PARAMETERS:,} (Lanczos keeps up to 100 vectors of that size); use a smaller width")


@dataclass
class Run:
    """The record of one run. Lists indexed by step hold one value per step taken."""

    config: TrainConfig
    status: str = "running"  # "converged", "diverged", "max_steps" (or "running")
    train_loss: list[float] = field(default_factory=list)  # L(θ_t), t = 0..T−1
    train_acc: list[float] = field(default_factory=list)  # accuracy at θ_t (labelled data only)
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


def build(config: TrainConfig, *, data_root: str | Path | None = None, download: bool = False):
    """The model and training set that ``config`` describes: ``(model, data)``."""
    dtype = DTYPES[config.dtype]
    data = load_dataset(config.dataset, config.n, loss=config.loss, root=data_root, download=download, dtype=dtype,
                        device=config.device, seed=config.seed, **config.data_options)
    model = make_model(config.model, data.input_shape, data.n_out, seed=config.seed, dtype=dtype,
                       device=config.device, width=config.width, depth=config.depth, **config.model_options)
    return model, data


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
    if isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, int) or checkpoint_every < 1:
        raise ValueError(f"checkpoint_every={checkpoint_every!r} must be a positive integer")
    model, data = build(config, data_root=data_root, download=download)
    store = _Store(cache_dir, config) if cache_dir is not None else None
    if store is not None and (finished := store.finished(model)) is not None:
        return finished
    s = _State.fresh(config, model, data.description)  # optimizer, minibatch generator, empty run, t = 0
    if store is not None:
        store.resume(s, model)  # continue an interrupted run from its last checkpoint
    loss_fn, every = get_loss(config.loss), config.sharpness_every
    clock = time.perf_counter() - s.elapsed
    s.run.status = "max_steps"
    with _progress_bar(config.steps, s.step, progress) as bar:
        for t in range(s.step, config.steps):
            if store is not None and t > s.step and t % checkpoint_every == 0:
                store.checkpoint(s, model, t, time.perf_counter() - clock)
            measure = every > 0 and t % every == 0
            loss, acc, graph = _gradient(model, loss_fn, data, config, s.generator, keep_graph=measure)
            s.run.train_loss.append(loss)
            if acc is not None:
                s.run.train_acc.append(acc)
            if not math.isfinite(loss) or loss > config.max_loss:
                s.run.status = "diverged"
                break
            if (config.loss_goal is not None and loss < config.loss_goal) or \
                    (config.acc_goal is not None and acc is not None and acc >= config.acc_goal):
                s.run.status = "converged"
                break
            if measure:
                s.v0 = _measure(model, loss_fn, data, config, s, t, graph)
                del graph  # frees the step's second-order graph before the parameters change
                if callback is not None:
                    callback(t, model, s.run)
                bar.set_postfix(loss=f"{loss:.4g}", sharpness=f"{s.run.sharpness[-1]:.4g}",
                                threshold=f"{s.run.threshold:.4g}", refresh=False)
            if not _step(s.optimizer):  # η so large that θ_{t+1} overflows the dtype
                s.run.status = "diverged"
                break
            bar.update(1)
    model.zero_grad(set_to_none=True)
    s.run.wall_seconds = time.perf_counter() - clock
    s.run.model = model
    if store is not None:
        store.save(s.run, model)
    return s.run


def _step(optimizer: torch.optim.Optimizer) -> bool:
    """Take the optimizer step; False if PyTorch refuses it because the update overflows the dtype.

    A step size beyond the float range (``lr=1e39`` in float32; Adam's η/(1 − β₁ᵗ) near
    3e38) is a diverged run, not a crash.
    """
    try:
        optimizer.step()
    except RuntimeError as err:
        if "overflow" not in str(err):
            raise
        return False
    return True


# ---------------------------------------------------------------- the gradient

def _gradient(model: torch.nn.Module, loss_fn, data: Dataset, config: TrainConfig, generator: torch.Generator,
              keep_graph: bool):
    """The step's gradient in ``p.grad``; returns (full-batch L(θ_t), accuracy or None, graph or None).

    Full batch: ∇L of the whole training set; with ``keep_graph`` it is built with
    ``create_graph=True`` and returned as an :class:`~eoslib.hessian.HVP` for the
    measurement. SGD: a minibatch of ``batch_size`` distinct examples drawn from
    ``generator``; the full-batch loss is then evaluated without gradients.
    """
    if config.batch_size is None:
        return _full_batch(model, loss_fn, data.inputs, data.targets, config.chunk_size, data.labels,
                           create_graph=keep_graph and config.sharpness_n in (None, config.n))
    idx = torch.randperm(config.n, generator=generator)[: config.batch_size].to(data.inputs.device)
    _full_batch(model, loss_fn, data.inputs[idx], data.targets[idx], config.chunk_size, None)
    loss, acc = evaluate(model, loss_fn, data.inputs, data.targets, config.chunk_size, labels=data.labels)
    return loss, acc, None


def full_batch_gradient(model: torch.nn.Module, loss_fn, inputs: torch.Tensor, targets: torch.Tensor,
                        chunk_size: int | None = None, *, labels: torch.Tensor | None = None
                        ) -> tuple[float, float | None]:
    """Put ∇L of the full-batch mean loss into ``p.grad``; return (L, accuracy or None).

    L = Σ_c (n_c/n) L_c over chunks c, so the result does not depend on ``chunk_size``.
    The accuracy is measured against ``labels`` when they are given (classification data).
    """
    loss, acc, _ = _full_batch(model, loss_fn, inputs, targets, chunk_size, labels)
    return loss, acc


def _full_batch(model, loss_fn, inputs, targets, chunk_size, labels, create_graph: bool = False):
    n = len(inputs)
    params = trainable(model)
    model.zero_grad(set_to_none=True)
    total, correct, grads = 0.0, 0.0, None
    for s in _chunks(n, chunk_size):
        out = model(inputs[s])
        loss = loss_fn(out, targets[s]) * ((s.stop - s.start) / n)
        if create_graph:  # ∇L_c with its graph, summed over chunks: the measurement reuses it
            g = torch.autograd.grad(loss, params, create_graph=True, allow_unused=True)
            grads = g if grads is None else [b if a is None else a if b is None else a + b for a, b in zip(grads, g)]
        else:
            loss.backward()
        total += loss.item()
        if labels is not None:
            correct += accuracy(out.detach(), labels[s]) * (s.stop - s.start)
    graph = None
    if create_graph:
        for p, g in zip(params, grads):
            p.grad = None if g is None else g.detach()
        graph = hessian.HVP.from_graph(model, grads, total)
    return total, (correct / n if labels is not None else None), graph


@torch.no_grad()
def evaluate(model: torch.nn.Module, loss_fn, inputs, targets, chunk_size: int | None = None, *,
             labels: torch.Tensor | None = None) -> tuple[float, float | None]:
    """(mean loss, accuracy against ``labels`` or None) without touching gradients."""
    n = len(inputs)
    total, correct = 0.0, 0.0
    for s in _chunks(n, chunk_size):
        out = model(inputs[s])
        total += loss_fn(out, targets[s]).item() * (s.stop - s.start) / n
        if labels is not None:
            correct += accuracy(out, labels[s]) * (s.stop - s.start)
    return total, (correct / n if labels is not None else None)


def _chunks(n: int, size: int | None):
    size = n if size is None else size
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


def _flat_grad(model: torch.nn.Module) -> torch.Tensor:
    """∇L as one flat vector over the *trainable* parameters, in the order eoslib.hessian uses."""
    return torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1)
                      for p in trainable(model)])


# ---------------------------------------------------------------- the measurement

def _measure(model, loss_fn, data: Dataset, config: TrainConfig, s: "_State", t: int, graph) -> torch.Tensor:
    """Sharpness (and metrics) at θ_t, appended to ``s.run``; returns the next warm-start vector.

    ``graph`` is the step's own Hessian-vector product (full batch), or None: then one
    is built on the first ``sharpness_n`` examples.
    """
    xs, ys = data.inputs[: config.sharpness_n or config.n], data.targets[: config.sharpness_n or config.n]
    op = graph or hessian.HVP(model, loss_fn, xs, ys, chunk_size=config.chunk_size)
    res = hessian.lanczos(op, op.dim, 1, tol=config.sharpness_tol, v0=s.v0, seed=config.seed + t)
    s.run.sharpness_steps.append(t)
    s.run.sharpness.append(float(res.values[0]))
    s.run.hvps.append(int(res.n_hvp))
    extra: dict[str, float] = {}
    if "step_sharpness" in config.metrics:  # curvature of L along the step's gradient, gᵀHg/‖g‖²
        g = _flat_grad(model)
        gg = float(g @ g)
        extra["step_sharpness"] = float(g @ op(g)) / gg if gg > 0 else float("nan")
    if "batch_sharpness" in config.metrics:
        extra["batch_sharpness"] = hessian.batch_sharpness(model, loss_fn, data.inputs, data.targets,
                                                           config.batch_size or config.n, seed=config.seed + t)
    if "preconditioned_sharpness" in config.metrics:
        extra["preconditioned_sharpness"] = (
            hessian.preconditioned_sharpness(model, loss_fn, xs, ys,
                                             adam_preconditioner(s.optimizer, trainable(model)),
                                             tol=config.sharpness_tol, seed=config.seed + t,
                                             chunk_size=config.chunk_size)
            if s.optimizer.state else float("nan"))
    for name, value in extra.items():
        s.run.extras.setdefault(name, []).append(float(value))
    return res.vectors[0].detach()


# ---------------------------------------------------------------- state, cache and resume

@dataclass
class _State:
    """What a run carries from step to step (and what a checkpoint saves)."""

    optimizer: torch.optim.Optimizer
    generator: torch.Generator  # SGD's minibatches (CPU)
    run: Run
    step: int = 0  # first step to take
    v0: torch.Tensor | None = None  # warm start of the next sharpness measurement
    elapsed: float = 0.0  # seconds spent before a resume

    @classmethod
    def fresh(cls, config: TrainConfig, model: torch.nn.Module, description: str) -> "_State":
        optimizer = make_optimizer(config.opt, trainable(model), config.lr, momentum=config.momentum,
                                   beta1=config.beta1, beta2=config.beta2)
        return cls(optimizer, torch.Generator().manual_seed(config.seed),
                   Run(config, threshold=config.threshold, dataset=description))


def cache_key(config: TrainConfig, threads: int | None = None, **tags: Any) -> str:
    """The cache key of a run of ``config``: :func:`eoslib.cache.run_key` of the config, torch's
    CPU thread count (``threads``, default the current one: reductions, hence trajectories,
    differ between thread counts) and any ``tags`` (e.g. ``record="params"`` for a recorded path).

    >>> cache_key(TrainConfig(), threads=1) == cache_key(TrainConfig(), threads=1) != cache_key(TrainConfig(), threads=2)
    True
    """
    threads = torch.get_num_threads() if threads is None else threads
    return cache.run_key({**config.to_dict(), "torch_threads": threads, **tags})


class _Store:
    """A run's files in the cache: the finished record, the final weights and the checkpoint.

    The key covers the config, the eoslib version and source (:func:`eoslib.cache.run_key`)
    and torch's CPU thread count (reductions, hence trajectories, differ between thread
    counts). A file is only used if the config stored in it equals the one asked for;
    anything unusable is warned about and recomputed. An unwritable cache still
    serves what it holds, and runs are then computed without being saved.
    """

    def __init__(self, folder: str | Path, config: TrainConfig):
        self.config, self.threads = config.to_dict(), torch.get_num_threads()
        key = cache_key(config, threads=self.threads)
        folder = Path(folder)
        self.run_file, self.model_file, self.ckpt_file = (folder / f"{key}{ext}" for ext in
                                                          (".json", ".model.pt", ".ckpt.pt"))
        self.writable = True

    def _matches(self, saved: dict) -> bool:
        return saved.get("config") == self.config and saved.get("threads") == self.threads

    def finished(self, model: torch.nn.Module) -> Run | None:
        done = cache.load_json(self.run_file)
        if done is None:
            return None
        weights = cache.load_tensors(self.model_file)
        try:
            if not self._matches(done) or not self._matches(weights or {}):
                raise ValueError("it holds another configuration's result")
            run = Run.from_dict(done["run"])
            model.load_state_dict(weights["model"])
        except Exception as err:  # noqa: BLE001 - whatever is wrong with it, it is not this run
            if weights is not None:  # the record and weights are both needed; a lone record is not a fault
                warnings.warn(f"{self.run_file}: unusable cache entry ({_why(err)}); recomputing", UserWarning,
                              stacklevel=3)
            return None
        run.model = model
        return run

    def resume(self, s: _State, model: torch.nn.Module) -> None:
        ckpt = cache.load_tensors(self.ckpt_file)
        if ckpt is None:
            return
        initial = copy.deepcopy(model.state_dict())
        try:
            if not self._matches(ckpt):
                raise ValueError("it belongs to another configuration")
            run = Run.from_dict(ckpt["run"])
            step, v0, elapsed = int(ckpt["step"]), ckpt["v0"], float(ckpt["elapsed"])
            if len(run.train_loss) != step or not 0 < step <= run.config.steps:
                raise ValueError(f"its record has {len(run.train_loss)} losses for step {step}")
            model.load_state_dict(ckpt["model"])
            s.optimizer.load_state_dict(ckpt["optimizer"])
            s.generator.set_state(ckpt["generator"])
        except Exception as err:  # noqa: BLE001 - a checkpoint we cannot use is recomputed, never trusted
            warnings.warn(f"{self.ckpt_file}: unusable checkpoint ({_why(err)}); starting afresh", UserWarning,
                          stacklevel=3)
            model.load_state_dict(initial)
            vars(s).update(vars(_State.fresh(s.run.config, model, s.run.dataset)))
            return
        s.run, s.step, s.v0, s.elapsed = run, step, v0, elapsed

    def checkpoint(self, s: _State, model: torch.nn.Module, t: int, elapsed: float) -> None:
        s.run.wall_seconds = elapsed
        self._write(cache.save_tensors, self.ckpt_file, dict(
            config=self.config, threads=self.threads, model=model.state_dict(), optimizer=s.optimizer.state_dict(),
            generator=s.generator.get_state(), run=s.run.to_dict(), step=t, v0=s.v0, elapsed=elapsed))

    def save(self, run: Run, model: torch.nn.Module) -> None:
        meta = dict(config=self.config, threads=self.threads)
        self._write(cache.save_tensors, self.model_file, {**meta, "model": model.state_dict()})
        self._write(cache.save_json, self.run_file, {**meta, "run": run.to_dict()})
        if self.writable:
            try:
                self.ckpt_file.unlink(missing_ok=True)
            except OSError:
                pass

    def _write(self, save, path: Path, obj) -> None:
        if not self.writable:
            return
        try:
            save(path, obj)
        except OSError as err:
            self.writable = False
            warnings.warn(f"cache folder {path.parent} is not writable ({_why(err)}); the run is not cached",
                          UserWarning, stacklevel=4)


def _why(err: Exception) -> str:
    return f"{type(err).__name__}: {(str(err).splitlines() or [''])[0]}"[:200]


def _progress_bar(total: int, initial: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, disable=not enabled, desc="train", leave=False)

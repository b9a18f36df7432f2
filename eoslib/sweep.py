"""Sweeps: many training runs at once, on any ``concurrent.futures.Executor``.

``sweep(configs)`` trains every :class:`~eoslib.train.TrainConfig` of a list (a
grid of step sizes and seeds, say) and returns one :class:`Outcome` per config,
in the order given. Each run is one task, ``run_task(config, ...)``, handed to an
executor; eoslib has no scheduler of its own. The executor can be

* ``None`` (default): a local pool of ``workers`` processes
  (``concurrent.futures.ProcessPoolExecutor``; fresh processes, forked from a
  server that has imported eoslib once, or spawned on Windows); with
  ``workers=1`` the runs go one after another in this process;
* any ``concurrent.futures.Executor`` you create, e.g. a process pool of your own;
* a **Dask** cluster: a ``distributed.Client`` (its ``client.get_executor()`` is
  used) or that executor itself::

      from distributed import Client
      client = Client("tcp://scheduler:8786")     # or Client(LocalCluster(...))
      outcomes = sweep(configs, client, cache_dir="/shared/eoslib-cache")

* a **Ray** cluster, through the futures that Ray's object references provide
  (Ray has no ``Executor`` class of its own; this adapter submits, Ray schedules)::

      import concurrent.futures, ray
      class RayExecutor(concurrent.futures.Executor):
          def submit(self, fn, /, *args, **kwargs):
              return ray.remote(fn).options(max_retries=3).remote(*args, **kwargs).future()
      ray.init(address="auto")
      outcomes = sweep(configs, RayExecutor(), cache_dir="/shared/eoslib-cache")

**Where results go.** Every task sends its whole run record back, so the caller
gets all results whatever the executor. With ``cache_dir`` each run is also
cached under the hash of its config (:func:`eoslib.cache.run_key`): a finished
run is served from there, and an interrupted one resumes from its last
checkpoint (every ``checkpoint_every`` steps) bit for bit. On a cluster,
``cache_dir`` must be a folder every worker reaches (a shared file system).

**Faults.** A run that raises (a bad config, out of memory) is a failed
:class:`Outcome` with a one-line ``error``; the other runs go on. A run that
diverges is not a failure: its status is ``"diverged"``. When a worker process
dies, Dask and Ray run its task again on another worker (Dask up to
``distributed.scheduler.allowed-failures`` = 3 times), and with ``cache_dir`` the
rerun continues from the checkpoint. A local process pool cannot replace a dead
worker (``BrokenProcessPool``): the runs it had not finished are reported as
failed; run the sweep again and the cache serves what was done.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import multiprocessing
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from .cache import to_json
from .train import Run, TrainConfig, train

__all__ = ["Outcome", "sweep", "run_task", "config_id", "default_workers", "one_line"]


@dataclass
class Outcome:
    """The result of one config of a sweep: its run, or why it failed."""

    config: TrainConfig
    run: Run | None = None  # the finished run (without the model); None if it failed
    error: str | None = None  # one line, "Type: message", if the run failed

    @property
    def status(self) -> str:
        """The run's status (``converged``, ``diverged``, ``max_steps``), or ``failed``."""
        return "failed" if self.run is None else self.run.status


def config_id(config: TrainConfig) -> str:
    """A short hash of the config alone (12 hex digits): distinct configs, distinct ids.

    Unlike :func:`eoslib.cache.run_key` it does not change with the library's code,
    so it names a run's files stably.

    >>> config_id(TrainConfig(lr=0.1)) == config_id(TrainConfig(lr=0.1)) != config_id(TrainConfig(lr=0.1000001))
    True
    """
    return hashlib.sha256(to_json(config.to_dict(), sort_keys=True).encode()).hexdigest()[:12]


def default_workers(threads: int = 1) -> int:
    """Processes that fit this machine: usable CPU cores // torch threads per run (at least 1)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // max(1, threads))


def one_line(err: BaseException) -> str:
    """``"Type: first line of the message"`` (the message alone for ValueError and OSError)."""
    lines = [line for line in str(err).splitlines() if line.strip()]
    text = lines[0].strip() if lines else ""
    if isinstance(err, (ValueError, OSError)) and text:
        return text
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def run_task(config: dict[str, Any], cache_dir: str | None = None, data_root: str | None = None,
             download: bool = False, threads: int = 1, checkpoint_every: int = 200) -> dict[str, Any]:
    """Train one config (given as ``TrainConfig.to_dict()``) in a worker; return ``Run.to_dict()``.

    Plain dicts in and out, so any executor can send them (a ``TrainConfig``
    holds read-only mappings, which do not pickle). Sets torch's thread count,
    which the results depend on (reduction order).
    """
    import torch

    torch.set_num_threads(threads)
    run = train(TrainConfig.from_dict(config), cache_dir=cache_dir, data_root=data_root, download=download,
                progress=False, checkpoint_every=checkpoint_every)
    return run.to_dict()


def _process_context():
    """Fresh worker processes: forked from a server that has imported eoslib (fast), or spawned (Windows).

    Never a plain ``fork`` of this process: torch's OpenMP thread pool is not fork-safe.
    """
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["eoslib.sweep", "eoslib.train"])
        return context
    return multiprocessing.get_context("spawn")


def _as_executor(executor):
    """A Dask ``Client`` becomes its ``concurrent.futures`` executor; anything else is used as is."""
    if executor is not None and not isinstance(executor, cf.Executor) and hasattr(executor, "get_executor"):
        return executor.get_executor()
    if executor is not None and not callable(getattr(executor, "submit", None)):
        raise ValueError(f"executor {type(executor).__name__} has no submit(); "
                         f"give a concurrent.futures.Executor or a distributed.Client")
    return executor


def sweep(configs: Sequence[TrainConfig], executor: cf.Executor | Any | None = None, *,
          cache_dir: str | Path | None = None, data_root: str | Path | None = None, download: bool = False,
          threads: int = 1, workers: int | None = None, checkpoint_every: int = 200,
          on_result: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    """Train every config on ``executor``; one :class:`Outcome` per config, in order.

    Args:
        configs: the runs; equal configs are trained once and share an outcome.
        executor: a ``concurrent.futures.Executor``, a ``distributed.Client``, or
            ``None`` for a local process pool of ``workers`` processes (see the
            module docstring). A given executor is not shut down.
        cache_dir: cache runs there (keyed by config hash) and resume interrupted ones.
        data_root, download: where datasets live, and whether a download is allowed.
        threads: torch threads per run (results depend on it).
        workers: processes of the default pool (default: :func:`default_workers`);
            1 runs everything in this process, one run after another.
        checkpoint_every: steps between checkpoints (with ``cache_dir``).
        on_result: called with each outcome as soon as it is known (in completion order).

    Returns:
        The outcomes; a run that raised is an outcome with ``run=None`` and ``error`` set.
    """
    configs = list(configs)
    for c in configs:
        if not isinstance(c, TrainConfig):
            raise ValueError(f"sweep() takes TrainConfig objects, got {type(c).__name__}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers={workers!r} must be a positive integer")
    distinct = {to_json(c.to_dict(), sort_keys=True): c for c in configs}
    args = (None if cache_dir is None else str(cache_dir), None if data_root is None else str(data_root),
            bool(download), int(threads), int(checkpoint_every))  # positional: no clash with submit()'s options
    outcomes: dict[str, Outcome] = {}

    def finish(key: str, call: Callable[[], dict]) -> None:
        config = distinct[key]
        try:
            record = call()
            run = Run.from_dict(record)
            outcome = Outcome(config, run=run)
        except Exception as err:  # noqa: BLE001 - a failed run is a result of the sweep, with its cause
            outcome = Outcome(config, error=one_line(err))
        outcomes[key] = outcome
        if on_result is not None:
            on_result(outcome)

    executor = _as_executor(executor)
    n_workers = min(len(distinct), workers or default_workers(threads))
    if executor is None and n_workers <= 1:
        for key, config in distinct.items():
            finish(key, lambda config=config: run_task(config.to_dict(), *args))
        return [outcomes[to_json(c.to_dict(), sort_keys=True)] for c in configs]

    own = executor is None
    if own:
        executor = cf.ProcessPoolExecutor(max_workers=n_workers, mp_context=_process_context())
    try:
        futures = {executor.submit(run_task, config.to_dict(), *args): key for key, config in distinct.items()}
        for future in cf.as_completed(futures):
            finish(futures[future], future.result)
    except BaseException:  # e.g. Ctrl-C: stop at once; cached runs resume next time
        if own:
            executor.shutdown(wait=False, cancel_futures=True)
        raise
    if own:
        executor.shutdown(wait=True)
    return [outcomes[to_json(c.to_dict(), sort_keys=True)] for c in configs]

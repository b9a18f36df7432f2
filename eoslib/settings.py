"""Book-wide settings: the only place (besides :mod:`eoslib.cli`) that reads the environment.

Chapters call :func:`book_settings` once, print it, and pass its fields on
explicitly; nothing in the library reads environment variables itself.

=================  ==========================  =====================================
variable           values                      meaning
=================  ==========================  =====================================
``EOSLIB_DATASET``  ``digits`` (default),       image dataset of the image chapters;
                    ``cifar10``                 ``digits`` ships with scikit-learn,
                                                ``cifar10`` is downloaded (opt-in)
``EOSLIB_SCALE``    ``cpu`` (default),          experiment size: ``cpu`` fits the
                    ``paper``                   2-minute laptop budget, ``paper`` is
                                                the paper's setting (GPU advised)
``EOSLIB_DEVICE``   ``cpu`` (default), ``cuda`` where tensors live
``EOSLIB_CACHE``    a folder                    where runs are cached
                    (default ``~/.cache/eoslib``)
``EOSLIB_DATA``     a folder                    where downloads go
                    (default ``~/.cache/eoslib/data``)
``EOSLIB_THREADS``  an integer (default 1)      CPU threads for torch
=================  ==========================  =====================================
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

IMAGE_DATASETS = ("digits", "cifar10")
SCALES = ("cpu", "paper")
DEVICES = ("cpu", "cuda")


@dataclass(frozen=True)
class BookSettings:
    dataset: str  # image dataset used by the image chapters: "digits" or "cifar10"
    scale: str  # "cpu" (laptop budget) or "paper" (the paper's sizes)
    device: str  # "cpu" or "cuda"
    cache_dir: Path  # folder of cached runs
    data_dir: Path  # folder of downloaded datasets
    threads: int  # torch CPU threads; 1 avoids OpenMP spin-waiting on small machines

    def __str__(self) -> str:
        return (f"dataset={self.dataset} scale={self.scale} device={self.device} "
                f"threads={self.threads} cache={self.cache_dir}")


def _choice(env: dict, name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = env.get(name, default).strip().lower() or default
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not one of {', '.join(allowed)}")
    return value


def book_settings(env: dict | None = None, **overrides) -> BookSettings:
    """Read the book's settings from the environment (or ``env``), then apply ``overrides``.

    >>> s = book_settings(env={})
    >>> (s.dataset, s.scale, s.device, s.threads)
    ('digits', 'cpu', 'cpu', 1)
    >>> book_settings(env={"EOSLIB_DATASET": "mnist"})
    Traceback (most recent call last):
    ...
    ValueError: EOSLIB_DATASET='mnist' is not one of digits, cifar10
    """
    env = dict(os.environ) if env is None else env
    home = Path(env.get("EOSLIB_CACHE", Path.home() / ".cache" / "eoslib"))
    threads_raw = env.get("EOSLIB_THREADS", "1")
    try:
        threads = int(threads_raw)
    except ValueError:
        raise ValueError(f"EOSLIB_THREADS={threads_raw!r} is not an integer") from None
    if threads < 1:
        raise ValueError(f"EOSLIB_THREADS={threads} must be >= 1")
    values = dict(
        dataset=_choice(env, "EOSLIB_DATASET", "digits", IMAGE_DATASETS),
        scale=_choice(env, "EOSLIB_SCALE", "cpu", SCALES),
        device=_choice(env, "EOSLIB_DEVICE", "cpu", DEVICES),
        cache_dir=home,
        data_dir=Path(env.get("EOSLIB_DATA", home / "data")),
        threads=threads,
    )
    values.update(overrides)
    return BookSettings(**values)

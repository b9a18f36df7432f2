"""Book-wide settings: the only place (besides :mod:`eoslib.cli`) that reads the environment.

Chapters call :func:`book_settings` once, print it, and take everything machine-
or reader-dependent from it: the dataset, the experiment scale, the device, the
book-wide seed, and where cached runs and downloads live. Nothing else in the
library reads environment variables.

=================  ==========================  =====================================
variable           values                      meaning
=================  ==========================  =====================================
``EOSLIB_DATASET``  ``digits`` (default),       image dataset of the image chapters;
                    ``cifar10``                 ``digits`` ships with scikit-learn,
                                                ``cifar10`` is downloaded (opt-in)
``EOSLIB_SCALE``    ``cpu`` (default),          experiment size: ``cpu`` fits the
                    ``paper``                   2-minute laptop budget, ``paper`` is
                                                the paper's setting (GPU advised)
``EOSLIB_DEVICE``   ``auto`` (default),         where tensors live; ``auto`` is
                    ``cpu``, ``cuda``           ``cuda`` when a GPU is available
``EOSLIB_SEED``     an integer ≥ 0 (default 0)  the book-wide seed: every experiment
                                                derives its seeds from it
``EOSLIB_CACHE``    a folder                    where runs are cached
                    (default ``~/.cache/eoslib``)
``EOSLIB_DATA``     a folder                    where downloads go
                    (default ``~/.cache/eoslib/data``)
``EOSLIB_THREADS``  an integer ≥ 1 (default 1)  CPU threads for torch
=================  ==========================  =====================================

In a notebook (Colab, Jupyter) the same settings can be chosen from Python, before
the chapter's set-up cell runs, with :func:`configure` (it validates the values and
sets the variables above for this process)::

    import eoslib.settings
    eoslib.settings.configure(scale="paper", device="cuda")

The settings also carry the two helpers every experiment cell uses:
:meth:`BookSettings.config` (a :class:`~eoslib.train.TrainConfig` on the book's
dataset, device and seed) and :meth:`BookSettings.train` (a cached, silent
:func:`~eoslib.train.train`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

IMAGE_DATASETS = ("digits", "cifar10")
SCALES = ("cpu", "paper")
DEVICES = ("auto", "cpu", "cuda")
#: setting name -> environment variable
VARIABLES = {"dataset": "EOSLIB_DATASET", "scale": "EOSLIB_SCALE", "device": "EOSLIB_DEVICE",
             "seed": "EOSLIB_SEED", "cache_dir": "EOSLIB_CACHE", "data_dir": "EOSLIB_DATA",
             "threads": "EOSLIB_THREADS"}
_DOWNLOADED = ("cifar10",)  # datasets that need a download


@dataclass(frozen=True)
class BookSettings:
    dataset: str  # image dataset used by the image chapters: "digits" or "cifar10"
    scale: str  # "cpu" (laptop budget) or "paper" (the paper's sizes)
    device: str  # "cpu" or "cuda" ("auto" is resolved when the settings are read)
    seed: int  # the book-wide seed; experiments use seed, seed + 1, ...
    cache_dir: Path  # folder of cached runs
    data_dir: Path  # folder of downloaded datasets
    threads: int  # torch CPU threads; 1 avoids OpenMP spin-waiting on small machines

    def __str__(self) -> str:  # no machine paths: the printed line is the same on every machine
        return (f"dataset={self.dataset} scale={self.scale} device={self.device} seed={self.seed} "
                f"threads={self.threads}")

    @property
    def download(self) -> bool:
        """Whether the book's dataset is downloaded (and so may be fetched)."""
        return self.dataset in _DOWNLOADED

    def seeds(self, k: int) -> list[int]:
        """``k`` seeds derived from the book-wide seed: ``seed, seed + 1, …, seed + k − 1``.

        >>> book_settings(env={"EOSLIB_SEED": "7"}).seeds(3)
        [7, 8, 9]
        """
        return [self.seed + i for i in range(k)]

    def config(self, **fields):
        """A :class:`~eoslib.train.TrainConfig` on the book's dataset, device and seed.

        ``fields`` set everything else (and may override ``dataset``, ``device`` or
        ``seed``, e.g. ``seed=S.seed + 1`` for a second run).

        >>> c = book_settings(env={"EOSLIB_SEED": "3", "EOSLIB_DEVICE": "cpu"}).config(lr=0.1, n=50)
        >>> (c.dataset, c.device, c.seed, c.lr, c.n)
        ('digits', 'cpu', 3, 0.1, 50)
        """
        from .train import TrainConfig

        return TrainConfig(**{"dataset": self.dataset, "device": self.device, "seed": self.seed, **fields})

    def train(self, config, **options):
        """:func:`eoslib.train.train` with the book's cache and data folders, no progress bar.

        ``options`` go to :func:`~eoslib.train.train` (e.g. ``callback``, which
        turns the cache off).
        """
        from .train import train

        kw = {"cache_dir": self.cache_dir, "data_root": self.data_dir, "download": self.download,
              "progress": False, **options}
        if kw.get("callback") is not None:
            kw["cache_dir"] = None
        return train(config, **kw)


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    text = str(value).strip().lower()
    if text not in allowed:
        raise ValueError(f"{name}={value!r} is not one of {', '.join(allowed)}")
    return text


def _integer(name: str, value, minimum: int) -> int:
    text = str(value).strip()
    if isinstance(value, bool) or not re.fullmatch(r"[+]?[0-9]+", text, re.ASCII):
        raise ValueError(f"{name}={value!r} is not an integer >= {minimum}")
    number = int(text)
    if number < minimum or number >= 2 ** 63:
        raise ValueError(f"{name}={value!r} must lie in {minimum}..{2 ** 63 - 1}")
    return number


def _folder(name: str, value) -> Path:
    text = str(value).strip()
    if not text:
        raise ValueError(f"{name} is empty; give a folder")
    path = Path(text).expanduser()
    if path.exists() and not path.is_dir():
        raise ValueError(f"{name}={text!r} is a file, not a folder")
    return path


def _resolve_device(name: str, value: str) -> str:
    device = _choice(name, value, DEVICES)
    if device == "cpu":
        return device
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if not torch.cuda.is_available():
        raise ValueError(f"{name}=cuda but torch sees no CUDA device; use cpu or auto")
    return device


def _validated(values: dict) -> BookSettings:
    """Check every raw setting (strings from the environment or Python values) and build the settings."""
    unknown = set(values) - set(VARIABLES)
    if unknown:
        raise ValueError(f"unknown settings {sorted(unknown)}; valid: {', '.join(VARIABLES)}")
    v = VARIABLES
    cache_dir = _folder(v["cache_dir"], values["cache_dir"])
    return BookSettings(
        dataset=_choice(v["dataset"], values["dataset"], IMAGE_DATASETS),
        scale=_choice(v["scale"], values["scale"], SCALES),
        device=_resolve_device(v["device"], values["device"]),
        seed=_integer(v["seed"], values["seed"], 0),
        cache_dir=cache_dir,
        data_dir=_folder(v["data_dir"], values.get("data_dir") or cache_dir / "data"),
        threads=_integer(v["threads"], values["threads"], 1),
    )


def book_settings(env: dict | None = None, **overrides) -> BookSettings:
    """Read the book's settings from the environment (or ``env``), then apply ``overrides``.

    Overrides are Python values for the fields of :class:`BookSettings`
    (``scale="paper"``, ``seed=2``, ...) and are validated exactly like the
    environment; an empty environment variable counts as unset.

    >>> s = book_settings(env={"EOSLIB_DEVICE": "cpu"})
    >>> (s.dataset, s.scale, s.device, s.seed, s.threads)
    ('digits', 'cpu', 'cpu', 0, 1)
    >>> book_settings(env={"EOSLIB_DATASET": "mnist"})
    Traceback (most recent call last):
    ...
    ValueError: EOSLIB_DATASET='mnist' is not one of digits, cifar10
    >>> book_settings(env={}, scale="huge")
    Traceback (most recent call last):
    ...
    ValueError: EOSLIB_SCALE='huge' is not one of cpu, paper
    """
    env = dict(os.environ) if env is None else env
    defaults = {"dataset": "digits", "scale": "cpu", "device": "auto", "seed": "0",
                "cache_dir": Path.home() / ".cache" / "eoslib", "data_dir": None, "threads": "1"}
    values = {name: (env.get(var) if (env.get(var) or "").strip() else defaults[name])
              for name, var in VARIABLES.items()}
    values.update(overrides)
    return _validated(values)


def configure(**settings) -> BookSettings:
    """Choose book settings from Python (e.g. in a Colab cell), for this process and its children.

    Validates the values like :func:`book_settings`, then sets the corresponding
    ``EOSLIB_*`` environment variables, so the chapter's own ``book_settings()``
    call (and any process it starts) sees them. Returns the resulting settings.

    >>> import os
    >>> saved = dict(os.environ)
    >>> configure(seed=2, device="cpu").seed
    2
    >>> os.environ["EOSLIB_SEED"]
    '2'
    >>> os.environ.clear(); os.environ.update(saved)
    """
    result = book_settings(**settings)
    for name in settings:
        value = getattr(result, name)
        os.environ[VARIABLES[name]] = str(value)
    return result

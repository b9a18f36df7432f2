"""Datasets, resolved by name through the registry :data:`DATASETS` and :func:`load_dataset`.

==============  ========================================================  ==========
name            what                                                      offline?
==============  ========================================================  ==========
``digits``      scikit-learn's 8×8 handwritten digits (1,797 images,      yes
                10 classes); train = first 1,500, test = last 297
``cifar10``     torchvision's CIFAR-10 (50,000 train / 10,000 test)       download
``synthetic``   Gaussian inputs x ~ N(0, I_d) labelled by a random        yes
                linear teacher (argmax of W x); options ``dim``, ``classes``
``linear``      regression y = A x with orthogonal design, the paper's    yes
                deep-linear-network data; option ``dim``
``text``        next-token prediction on English prose (see               yes
                :func:`load_text`); options ``context``, ``level``,
                ``vocab``, ``source``
==============  ========================================================  ==========

Image preprocessing follows Cohen et al. (2021): each feature (pixel ×
channel) is centred and standardised with the statistics of the whole training
split, then the *first* n examples are kept (``cifar10`` with n = 5000 is the
paper's ``cifar10-5k``). CIFAR-10's statistics are computed once, exactly (integer
sums), and stored next to the data (``cifar10-train-stats.npz``), so a run on 5,000
images converts only those 5,000. Targets are one-hot for MSE and integer labels
for cross-entropy.

To add a dataset, write a loader ``load(n, split, *, loss, seed, root, download,
dtype, device, **options) -> Dataset`` and register a :class:`DatasetSpec` in
:data:`DATASETS` (its input kind, task, size and shape let a configuration be
checked before anything is loaded).

Reference: J. Cohen et al., ICLR 2021, Appendix B.
"""

from __future__ import annotations

import hashlib
import math
import numbers
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

TEXT_SOURCES = ("pydoc", "shakespeare")
SHAKESPEARE_URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
#: SHA-256 of that file (1,115,394 bytes; unchanged since char-rnn's first commit, git blob 7dcb3a2d).
SHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
MAX_VALUES = 2**31  # largest number of input values a generated dataset may hold (8 GiB in float32)


@dataclass(frozen=True)
class Dataset:
    """A dataset held in memory as tensors.

    ``inputs`` has shape ``(n, *input_shape)``; ``labels`` are integer classes
    ``(n,)`` (``(n, T)`` for text; ``None`` for regression); ``targets`` is what
    the loss consumes: one-hot ``(n, k)`` floats for MSE classification, labels
    for cross-entropy, real values ``(n, k)`` for regression.
    """

    name: str
    inputs: torch.Tensor
    labels: torch.Tensor | None
    targets: torch.Tensor
    n_out: int  # outputs of the model: classes, vocabulary size or regression dimension
    description: str  # one line saying what ran (printed by the chapters)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.inputs.shape[1:])

    def __len__(self) -> int:
        return len(self.inputs)


# ---------------------------------------------------------------- checks shared by every loader

def check_device(device: str | torch.device) -> torch.device:
    """``device`` as a ``torch.device`` if this machine has it, else a one-line ValueError.

    >>> check_device("cpu")
    device(type='cpu')
    >>> check_device("tpu")
    Traceback (most recent call last):
    ...
    ValueError: device='tpu' is not one of cpu, cuda, cuda:N
    """
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"device={device!r} is not one of cpu, cuda, cuda:N") from None
    if dev.type == "cpu":
        return dev
    if dev.type != "cuda":
        raise ValueError(f"device={device!r} is not one of cpu, cuda, cuda:N")
    if not torch.cuda.is_available():
        raise ValueError(f"device={device!r} but torch sees no CUDA device; use device='cpu'")
    if dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(f"device={device!r} but only {torch.cuda.device_count()} CUDA device(s) exist")
    return dev


def _integer(name: str, value, minimum: int, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum or \
            (maximum is not None and value > maximum):
        bound = f"in {minimum}..{maximum}" if maximum is not None else f">= {minimum}"
        raise ValueError(f"{name}={value!r} must be an integer {bound}")
    return int(value)


# ---------------------------------------------------------------- the registry

@dataclass(frozen=True)
class DatasetSpec:
    """What :func:`load_dataset` needs to know about a dataset before loading it."""

    load: Callable[..., Dataset]  # load(n, split, *, loss, seed, root, download, dtype, device, **options)
    inputs: str  # kind of input provided: "image" (c, h, w), "vector" (d,) or "tokens" (T,) integers
    task: str  # "classification" (mse or ce) or "regression" (mse only)
    options: dict[str, Any]  # accepted options and their defaults
    sizes: dict[str, int] | None  # examples per split; None: generated, any n
    shape: Callable[[dict], tuple[tuple[int, ...], int]]  # options -> (input_shape, n_out)
    download: bool = False  # may need a network download


def check_request(name: str, n: int | None = None, *, loss: str = "mse", split: str = "train",
                  options: dict | None = None) -> tuple[DatasetSpec, dict, tuple[int, ...], int]:
    """Validate a request for dataset ``name`` without loading anything.

    Returns ``(spec, options with defaults, input_shape, n_out)``; every bad value
    raises a one-line ValueError naming the valid choices.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid: {', '.join(DATASETS)}")
    spec = DATASETS[name]
    if loss not in ("mse", "ce"):
        raise ValueError(f"unknown loss {loss!r}; valid: mse, ce")
    if spec.task == "regression" and loss != "mse":
        raise ValueError(f"dataset {name!r} is a regression task; use loss='mse'")
    if split not in ("train", "test"):
        raise ValueError(f"unknown split {split!r}; valid: train, test")
    options = dict(options or {})
    unknown = sorted(set(options) - set(spec.options))
    if unknown:
        valid = ", ".join(spec.options) or "none"
        raise ValueError(f"dataset {name!r} does not take options {unknown}; valid options: {valid}")
    options = {**spec.options, **options}
    input_shape, n_out = spec.shape(options)
    if n is not None:
        _integer("n", n, 1)
        if spec.sizes is not None and n > spec.sizes[split]:
            raise ValueError(f"n={n} is outside 1..{spec.sizes[split]}, the size of the {name} {split} split")
        if n * math.prod(input_shape) > MAX_VALUES:
            raise ValueError(f"n={n} examples of shape {input_shape} exceed {MAX_VALUES:,} input values; "
                             f"use a smaller n")
    return spec, options, input_shape, n_out


def load_dataset(name: str, n: int | None = None, *, loss: str = "mse", split: str = "train", seed: int = 0,
                 root: str | Path | None = None, download: bool = False, dtype: torch.dtype = torch.float32,
                 device: str | torch.device = "cpu", **options) -> Dataset:
    """Load the first ``n`` examples of dataset ``name`` (all of them if ``n`` is None).

    Args:
        name: a key of :data:`DATASETS`.
        n: number of examples; must not exceed the split's size.
        loss: ``"mse"`` (one-hot targets) or ``"ce"`` (integer labels).
        split: ``"train"`` or ``"test"``.
        seed: seed of the generated sets (``synthetic``: the teacher and the inputs; ``linear``).
        root: download/cache folder of ``cifar10`` and online text.
        download: allow a network download (``cifar10``, ``text`` with source ``shakespeare``).
        dtype, device: of the floating tensors.
        options: the dataset's own options (table above; e.g. ``dim=50`` for ``linear``).

    Returns:
        A :class:`Dataset`; every bad request raises ``ValueError`` with a one-line
        message, before any data is loaded.

    >>> d = load_dataset("digits", 100)
    >>> d.inputs.shape, d.targets.shape, d.n_out
    (torch.Size([100, 1, 8, 8]), torch.Size([100, 10]), 10)
    """
    spec, options, _, _ = check_request(name, n, loss=loss, split=split, options=options)
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise ValueError(f"dtype={dtype!r} must be a floating torch dtype, e.g. torch.float32")
    _integer("seed", seed, 0, 2**63 - 1)
    device = check_device(device)
    folder = Path(root) if root is not None else Path.home() / ".cache" / "eoslib" / "data"
    return spec.load(n, split, loss=loss, seed=seed, root=folder, download=download, dtype=dtype, device=device,
                     **options)


# ---------------------------------------------------------------- image datasets

def _standardise(train: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Centre and scale each feature by the training split's mean and std (constant features: std 1)."""
    mean, std = train.mean(axis=0), train.std(axis=0)
    return (x - mean) / np.where(std > 0, std, 1.0)


def _classification(name, x, labels, n_classes, loss, dtype, device, description) -> Dataset:
    inputs = torch.as_tensor(x, dtype=dtype).to(device)
    labels = torch.as_tensor(np.asarray(labels), dtype=torch.long).to(device)
    targets = F.one_hot(labels, n_classes).to(dtype) if loss == "mse" else labels
    return Dataset(name, inputs, labels, targets, n_classes, description)


def _take(x: np.ndarray, y: np.ndarray, n: int | None, name: str, split: str):
    if n is None:
        return x, y
    if not 1 <= n <= len(x):
        raise ValueError(f"n={n} is outside 1..{len(x)}, the size of the {name} {split} split")
    return x[:n], y[:n]


def _load_digits(n, split, *, loss, seed, root, download, dtype, device) -> Dataset:
    from sklearn.datasets import load_digits  # ships its data; no download

    d = load_digits()
    x = d.images.reshape(-1, 1, 8, 8).astype(np.float64)
    cut = 1500
    train = x[:cut].reshape(cut, -1)
    xs, ys = (x[:cut], d.target[:cut]) if split == "train" else (x[cut:], d.target[cut:])
    xs = _standardise(train, xs.reshape(len(xs), -1)).reshape(xs.shape)
    x, y = _take(xs, ys, n, "digits", split)
    desc = f"digits (scikit-learn 8×8 handwritten digits), {len(x)} {split} examples"
    return _classification("digits", x, y, 10, loss, dtype, device, desc)


_CIFAR_STATS: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}  # memo: training files' fingerprint -> (mean, std)


def _cifar10_statistics(train_data: np.ndarray, root: Path) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and std (CHW order, 3072 each) of CIFAR-10's training images, scaled to [0, 1].

    Computed once from exact integer sums Σx and Σx² over the uint8 pixels, then
    kept in memory and in ``root/cifar10-train-stats.npz``, keyed by the training
    files' names, sizes and modification times (a replaced folder is recomputed).
    """
    from .cache import atomic_write

    folder = root / "cifar-10-batches-py"
    files = sorted(folder.glob("data_batch_*"))
    key = tuple((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files) + (train_data.shape,)
    if key in _CIFAR_STATS:
        return _CIFAR_STATS[key]
    tag = hashlib.sha256(repr(key).encode()).hexdigest()[:16]
    path = root / "cifar10-train-stats.npz"
    try:
        with np.load(path) as saved:
            if str(saved["key"]) == tag and saved["mean"].shape == (3072,) and saved["std"].shape == (3072,):
                _CIFAR_STATS[key] = (saved["mean"].copy(), saved["std"].copy())
                return _CIFAR_STATS[key]
    except (OSError, KeyError, ValueError):
        pass  # missing or unreadable: recompute
    count = len(train_data)
    s1 = np.zeros(train_data.shape[1:], dtype=np.int64)
    s2 = np.zeros(train_data.shape[1:], dtype=np.int64)
    for i in range(0, count, 2000):  # exact integer sums, in chunks of 2,000 images (≤ 50 MB at a time)
        chunk = train_data[i:i + 2000].astype(np.int64)
        s1 += chunk.sum(axis=0)
        s2 += (chunk * chunk).sum(axis=0)
    mean = s1 / count
    var = np.maximum(s2 / count - mean * mean, 0.0)
    to_chw = lambda a: (a.transpose(2, 0, 1).reshape(-1) / 255.0)  # noqa: E731 - HWC pixels -> CHW features
    stats = (to_chw(mean), to_chw(np.sqrt(var)))
    _CIFAR_STATS[key] = stats
    try:
        import io

        buffer = io.BytesIO()
        np.savez(buffer, key=np.array(tag), mean=stats[0], std=stats[1])
        atomic_write(path, buffer.getvalue())
    except OSError:
        pass  # a read-only data folder: the statistics stay in memory
    return stats


def _load_cifar10(n, split, *, loss, seed, root, download, dtype, device) -> Dataset:
    try:
        import torchvision
    except ImportError:  # pragma: no cover - torchvision is a dependency
        raise ValueError("cifar10 needs torchvision; install it or use EOSLIB_DATASET=digits") from None
    try:
        train = torchvision.datasets.CIFAR10(str(root), train=True, download=download)
        data = train if split == "train" else torchvision.datasets.CIFAR10(str(root), train=False, download=download)
    except (RuntimeError, OSError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        hint = "" if download else " (pass download=True to fetch it)"
        raise ValueError(f"CIFAR-10 is not available in {root}{hint}: {first}; "
                         f"alternatives: {', '.join(d for d in DATASETS if d != 'cifar10')}") from None
    mean, std = _cifar10_statistics(train.data, root)
    images, labels = _take(data.data, np.asarray(data.targets), n, "cifar10", split)  # (n, 32, 32, 3) uint8
    x = images.astype(np.float64).transpose(0, 3, 1, 2).reshape(len(images), -1) / 255.0  # CHW features
    x = ((x - mean) / np.where(std > 0, std, 1.0)).reshape(len(images), 3, 32, 32)
    desc = f"cifar10 (torchvision CIFAR-10), first {len(x)} {split} examples"
    return _classification("cifar10", x, labels, 10, loss, dtype, device, desc)


# ---------------------------------------------------------------- generated datasets

def _load_synthetic(n, split, *, loss, seed, root, download, dtype, device, dim, classes) -> Dataset:
    n = 1000 if n is None else n
    split_seed = seed if split == "train" else seed + 10_000  # fresh inputs, same teacher below
    teacher = np.random.default_rng(seed).standard_normal((classes, dim))
    x = np.random.default_rng([seed, split_seed]).standard_normal((n, dim))
    y = (x @ teacher.T).argmax(axis=1)
    desc = f"synthetic: {n} Gaussian points in R^{dim}, {classes} classes from a linear teacher (seed {seed})"
    return _classification("synthetic", x, y, classes, loss, dtype, device, desc)


def _load_linear(n, split, *, loss, seed, root, download, dtype, device, dim) -> Dataset:
    n = 1000 if n is None else n
    split_seed = seed if split == "train" else seed + 10_000
    g = np.random.default_rng([seed, split_seed])
    q, _ = np.linalg.qr(g.standard_normal((n, dim)))
    x = q * math.sqrt(n) if n >= dim else g.standard_normal((n, dim))
    a = np.random.default_rng(seed).standard_normal((dim, dim))
    y = x @ a.T
    t = lambda v: torch.as_tensor(v, dtype=dtype).to(device)  # noqa: E731
    return Dataset("linear", t(x), None, t(y), dim, f"linear: y = A x, {n} points in R^{dim} (seed {seed})")


def _vector_shape(options: dict) -> tuple[tuple[int, ...], int]:
    dim = _integer("dim", options["dim"], 1, MAX_VALUES)
    n_out = _integer("classes", options["classes"], 2, 100_000) if "classes" in options else dim
    return (dim,), n_out


# ---------------------------------------------------------------- text

def _pydoc_text() -> str:
    """English prose that ships with CPython: the help topics of ``pydoc`` (about 0.5 MB)."""
    from pydoc_data.topics import topics

    return "\n".join(topics[k] for k in sorted(topics))


def _shakespeare_text(root: Path, download: bool) -> str:
    """Karpathy's tiny Shakespeare from ``root``, downloaded (opt-in), checked against its SHA-256, and
    written atomically; a damaged local copy is refused with a one-line error."""
    from .cache import atomic_write

    path = root / "tinyshakespeare.txt"
    if not path.exists():
        if not download:
            raise ValueError(f"{path} is missing (pass download=True, or use source='pydoc', which is offline)")
        try:
            with urllib.request.urlopen(SHAKESPEARE_URL, timeout=30) as r:
                raw = r.read()
        except OSError as err:
            raise ValueError(f"could not download tiny Shakespeare ({err}); use source='pydoc', which is offline") \
                from None
        if hashlib.sha256(raw).hexdigest() != SHAKESPEARE_SHA256:
            raise ValueError("the downloaded tiny Shakespeare does not match its SHA-256; nothing was saved")
        atomic_write(path, raw)
    raw = path.read_bytes()
    if hashlib.sha256(raw).hexdigest() != SHAKESPEARE_SHA256:
        raise ValueError(f"{path} does not match tiny Shakespeare's SHA-256; delete it to download it again")
    return raw.decode("utf-8")


def tokenize(text: str, level: str = "char", vocab: int = 64) -> tuple[list[int], list[str]]:
    """Map text to integer tokens with a vocabulary of at most ``vocab`` symbols.

    ``level="char"`` keeps the ``vocab − 1`` most frequent characters, ``"word"``
    the most frequent whitespace-separated words; everything else becomes the
    unknown symbol, index 0. Ties are broken alphabetically, so the result is
    deterministic.

    >>> tokens, symbols = tokenize("abcab", vocab=3)
    >>> symbols, tokens
    (['<unk>', 'a', 'b'], [1, 2, 0, 1, 2])
    """
    if level not in ("char", "word"):
        raise ValueError(f"unknown level {level!r}; valid: char, word")
    _integer("vocab", vocab, 2)
    units = list(text) if level == "char" else text.split()
    counts: dict[str, int] = {}
    for u in units:
        counts[u] = counts.get(u, 0) + 1
    kept = sorted(counts, key=lambda u: (-counts[u], u))[: vocab - 1]
    symbols = ["<unk>"] + sorted(kept)
    index = {s: i for i, s in enumerate(symbols)}
    return [index.get(u, 0) for u in units], symbols


def _text_shape(options: dict) -> tuple[tuple[int, ...], int]:
    if options["source"] not in TEXT_SOURCES:
        raise ValueError(f"unknown text source {options['source']!r}; valid: {', '.join(TEXT_SOURCES)}")
    if options["level"] not in ("char", "word"):
        raise ValueError(f"unknown level {options['level']!r}; valid: char, word")
    context = _integer("context", options["context"], 1, 100_000)
    return (context,), _integer("vocab", options["vocab"], 2, 1_000_000)  # n_out ≤ vocab (fewer distinct units)


def load_text(n: int | None = None, *, context: int = 32, level: str = "char", vocab: int = 64,
              source: str = "pydoc", seed: int = 0, root: str | Path | None = None, download: bool = False,
              loss: str = "ce", dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu") -> Dataset:
    """Next-token prediction windows from a real English corpus.

    The corpus is tokenised (:func:`tokenize`) and cut into consecutive,
    non-overlapping windows of ``context + 1`` tokens; the first ``n`` windows
    are kept. ``inputs`` are tokens ``(n, context)``, ``labels`` the same
    windows shifted by one. For ``loss="mse"`` the targets are one-hot
    ``(n, context, vocab)``.

    ``source="pydoc"`` is offline (the prose of Python's own help topics);
    ``"shakespeare"`` downloads Karpathy's tiny Shakespeare (opt-in), verified by
    its SHA-256. ``seed`` is unused (the windows are the first n) and kept for a
    uniform API.
    """
    return load_dataset("text", n, loss=loss, seed=seed, root=root, download=download, dtype=dtype, device=device,
                        context=context, level=level, vocab=vocab, source=source)


def _load_text(n, split, *, loss, seed, root, download, dtype, device, context, level, vocab, source) -> Dataset:
    text = _pydoc_text() if source == "pydoc" else _shakespeare_text(root, download)
    tokens, symbols = tokenize(text, level, vocab)
    windows = len(tokens) // (context + 1)
    n = windows if n is None else n
    if not 1 <= n <= windows:
        raise ValueError(f"n={n} is outside 1..{windows}, the number of {context + 1}-token windows in {source}")
    w = torch.tensor(tokens[: n * (context + 1)], dtype=torch.long).reshape(n, context + 1).to(device)
    inputs, labels = w[:, :-1].contiguous(), w[:, 1:].contiguous()
    k = len(symbols)
    targets = F.one_hot(labels, k).to(dtype) if loss == "mse" else labels
    desc = f"text: {source} ({level}-level, vocabulary {k}), {n} windows of {context} tokens"
    return Dataset("text", inputs, labels, targets, k, desc)


#: Every dataset, by name (an unknown name raises ValueError listing these).
DATASETS: dict[str, DatasetSpec] = {
    "digits": DatasetSpec(_load_digits, "image", "classification", {}, {"train": 1500, "test": 297},
                          lambda o: ((1, 8, 8), 10)),
    "cifar10": DatasetSpec(_load_cifar10, "image", "classification", {}, {"train": 50_000, "test": 10_000},
                           lambda o: ((3, 32, 32), 10), download=True),
    "synthetic": DatasetSpec(_load_synthetic, "vector", "classification", {"dim": 20, "classes": 10}, None,
                             _vector_shape),
    "linear": DatasetSpec(_load_linear, "vector", "regression", {"dim": 20}, None, _vector_shape),
    "text": DatasetSpec(_load_text, "tokens", "classification",
                        {"context": 32, "level": "char", "vocab": 64, "source": "pydoc"}, None, _text_shape),
}

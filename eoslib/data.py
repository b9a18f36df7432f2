"""Datasets, resolved by name through :func:`load_dataset`.

==============  ========================================================  ==========
name            what                                                      offline?
==============  ========================================================  ==========
``digits``      scikit-learn's 8×8 handwritten digits (1,797 images,      yes
                10 classes); train = first 1,500, test = last 297
``cifar10``     torchvision's CIFAR-10 (50,000 train / 10,000 test)       download
``synthetic``   Gaussian inputs x ~ N(0, I_d) labelled by a random        yes
                linear teacher (argmax of W x)
``linear``      regression y = A x with orthogonal design, the paper's    yes
                deep-linear-network data
``chebyshev``   the paper's 1-D regression: n points evenly spaced on     yes
                [−1, 1] labelled by the Chebyshev polynomial T_k
``text``        next-token prediction on English prose (see               yes
                :func:`load_text`)
==============  ========================================================  ==========

Image preprocessing follows Cohen et al. (2021): each feature (pixel ×
channel) is centred and standardised with the statistics of the whole training
split, then the *first* n examples are kept (``cifar10`` with n = 5000 is the
paper's ``cifar10-5k``). Targets are one-hot for MSE and integer labels for
cross-entropy.

Reference: J. Cohen et al., ICLR 2021, Appendix B.
"""

from __future__ import annotations

import math
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

IMAGE_DATASETS = ("digits", "cifar10")
DATASETS = ("digits", "cifar10", "synthetic", "linear", "chebyshev", "text")
TEXT_SOURCES = ("pydoc", "shakespeare")
SHAKESPEARE_URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"


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


def _standardise(train: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Centre and scale each feature by the training split's mean and std (constant features: std 1)."""
    mean, std = train.mean(axis=0), train.std(axis=0)
    return (x - mean) / np.where(std > 0, std, 1.0)


def _classification(name, x, labels, n_classes, loss, dtype, device, description) -> Dataset:
    inputs = torch.as_tensor(x, dtype=dtype, device=device)
    labels = torch.as_tensor(labels, dtype=torch.long, device=device)
    targets = F.one_hot(labels, n_classes).to(dtype) if loss == "mse" else labels
    return Dataset(name, inputs, labels, targets, n_classes, description)


def _take(x: np.ndarray, y: np.ndarray, n: int | None, name: str, split: str):
    if n is None:
        return x, y
    if not 1 <= n <= len(x):
        raise ValueError(f"n={n} is outside 1..{len(x)}, the size of the {name} {split} split")
    return x[:n], y[:n]


def _digits(split: str):
    from sklearn.datasets import load_digits  # ships its data; no download

    d = load_digits()
    x = d.images.reshape(-1, 1, 8, 8).astype(np.float64)
    cut = 1500
    train = x[:cut].reshape(cut, -1)
    xs, ys = (x[:cut], d.target[:cut]) if split == "train" else (x[cut:], d.target[cut:])
    xs = _standardise(train, xs.reshape(len(xs), -1)).reshape(xs.shape)
    return xs, ys


def _cifar10(split: str, root: Path, download: bool):
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
    to_nchw = lambda a: a.astype(np.float64).transpose(0, 3, 1, 2) / 255.0  # noqa: E731
    xtr = to_nchw(train.data).reshape(len(train.data), -1)
    x = to_nchw(data.data)
    x = _standardise(xtr, x.reshape(len(x), -1)).reshape(x.shape)
    return x, np.asarray(data.targets)


def load_dataset(name: str, n: int | None = None, *, loss: str = "mse", split: str = "train", seed: int = 0,
                 root: str | Path | None = None, download: bool = False, dim: int = 20, classes: int = 10,
                 degree: int = 4, dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu",
                 **text_options) -> Dataset:
    """Load the first ``n`` examples of dataset ``name`` (all of them if ``n`` is None).

    Args:
        name: one of :data:`DATASETS`.
        n: number of examples; must not exceed the split's size.
        loss: ``"mse"`` (one-hot targets) or ``"ce"`` (integer labels).
        split: ``"train"`` or ``"test"`` (image datasets).
        seed: seed of the synthetic sets (the teacher and the inputs).
        root: download/cache folder of ``cifar10`` and online text.
        download: allow a network download (``cifar10``, ``text`` with source ``shakespeare``).
        dim, classes: input dimension and classes of ``synthetic`` (``linear``: ``dim`` in and out).
        degree: Chebyshev degree k of ``chebyshev``.
        text_options: passed to :func:`load_text` (``context``, ``level``, ``source``, ``vocab``).

    Returns:
        A :class:`Dataset`; failures raise ``ValueError`` with a one-line message.

    >>> d = load_dataset("digits", 100)
    >>> d.inputs.shape, d.targets.shape, d.n_out
    (torch.Size([100, 1, 8, 8]), torch.Size([100, 10]), 10)
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid: {', '.join(DATASETS)}")
    if loss not in ("mse", "ce"):
        raise ValueError(f"unknown loss {loss!r}; valid: mse, ce")
    if split not in ("train", "test"):
        raise ValueError(f"unknown split {split!r}; valid: train, test")
    if n is not None and n < 1:
        raise ValueError(f"n={n} must be a positive number of examples")
    if name == "text":
        return load_text(n, seed=seed, root=root, download=download, loss=loss, dtype=dtype, device=device,
                         **text_options)
    if text_options:
        raise ValueError(f"options {sorted(text_options)} apply only to the text dataset")
    if name == "digits":
        x, y = _take(*_digits(split), n, name, split)
        desc = f"digits (scikit-learn 8×8 handwritten digits), {len(x)} {split} examples"
        return _classification(name, x, y, 10, loss, dtype, device, desc)
    if name == "cifar10":
        folder = Path(root) if root is not None else Path.home() / ".cache" / "eoslib" / "data"
        x, y = _take(*_cifar10(split, folder, download), n, name, split)
        desc = f"cifar10 (torchvision CIFAR-10), first {len(x)} {split} examples"
        return _classification(name, x, y, 10, loss, dtype, device, desc)
    n = 1000 if n is None else n
    split_seed = seed if split == "train" else seed + 10_000  # fresh inputs, same teacher below
    if name == "synthetic":
        teacher_g = np.random.default_rng(seed)
        teacher = teacher_g.standard_normal((classes, dim))
        x = np.random.default_rng([seed, split_seed]).standard_normal((n, dim))
        y = (x @ teacher.T).argmax(axis=1)
        desc = f"synthetic: {n} Gaussian points in R^{dim}, {classes} classes from a linear teacher (seed {seed})"
        return _classification(name, x, y, classes, loss, dtype, device, desc)
    if loss != "mse":
        raise ValueError(f"dataset {name!r} is a regression task; use loss='mse'")
    if name == "linear":
        g = np.random.default_rng([seed, split_seed])
        q, _ = np.linalg.qr(g.standard_normal((n, dim)))
        x = q * math.sqrt(n) if n >= dim else g.standard_normal((n, dim))
        a = np.random.default_rng(seed).standard_normal((dim, dim))
        y = x @ a.T
        desc = f"linear: y = A x, {n} points in R^{dim} (seed {seed})"
    else:  # chebyshev
        x = np.linspace(-1.0, 1.0, n)[:, None]
        y = np.polynomial.chebyshev.chebval(x, np.eye(degree + 1)[degree])
        desc = f"chebyshev: T_{degree} at {n} points evenly spaced on [-1, 1]"
    t = lambda a: torch.as_tensor(a, dtype=dtype, device=device)  # noqa: E731
    return Dataset(name, t(x), None, t(y), y.shape[1], desc)


# ---------------------------------------------------------------- text

def _pydoc_text() -> str:
    """English prose that ships with CPython: the help topics of ``pydoc`` (about 0.5 MB)."""
    from pydoc_data.topics import topics

    return "\n".join(topics[k] for k in sorted(topics))


def _shakespeare_text(root: Path, download: bool) -> str:
    path = root / "tinyshakespeare.txt"
    if not path.exists():
        if not download:
            raise ValueError(f"{path} is missing (pass download=True, or use source='pydoc', which is offline)")
        root.mkdir(parents=True, exist_ok=True)
        try:
            with urllib.request.urlopen(SHAKESPEARE_URL, timeout=30) as r:
                text = r.read().decode("utf-8")
        except OSError as err:
            raise ValueError(f"could not download tiny Shakespeare ({err}); use source='pydoc', which is offline") \
                from None
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    return path.read_text(encoding="utf-8")


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
    if vocab < 2:
        raise ValueError(f"vocab={vocab} must be at least 2")
    units = list(text) if level == "char" else text.split()
    counts: dict[str, int] = {}
    for u in units:
        counts[u] = counts.get(u, 0) + 1
    kept = sorted(counts, key=lambda u: (-counts[u], u))[: vocab - 1]
    symbols = ["<unk>"] + sorted(kept)
    index = {s: i for i, s in enumerate(symbols)}
    return [index.get(u, 0) for u in units], symbols


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
    ``"shakespeare"`` downloads Karpathy's tiny Shakespeare (opt-in).
    ``seed`` is unused (the windows are the first n) and kept for a uniform API.
    """
    if source not in TEXT_SOURCES:
        raise ValueError(f"unknown text source {source!r}; valid: {', '.join(TEXT_SOURCES)}")
    if context < 1:
        raise ValueError(f"context={context} must be positive")
    folder = Path(root) if root is not None else Path.home() / ".cache" / "eoslib" / "data"
    text = _pydoc_text() if source == "pydoc" else _shakespeare_text(folder, download)
    tokens, symbols = tokenize(text, level, vocab)
    windows = len(tokens) // (context + 1)
    n = windows if n is None else n
    if not 1 <= n <= windows:
        raise ValueError(f"n={n} is outside 1..{windows}, the number of {context + 1}-token windows in {source}")
    w = torch.tensor(tokens[: n * (context + 1)], dtype=torch.long, device=device).reshape(n, context + 1)
    inputs, labels = w[:, :-1].contiguous(), w[:, 1:].contiguous()
    k = len(symbols)
    targets = F.one_hot(labels, k).to(dtype) if loss == "mse" else labels
    desc = f"text: {source} ({level}-level, vocabulary {k}), {n} windows of {context} tokens"
    return Dataset("text", inputs, labels, targets, k, desc)

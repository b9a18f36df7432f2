"""The networks of the book, built deterministically from a seed.

Every builder returns a ``torch.nn.Module`` mapping a batch of inputs to a
batch of outputs ``(n, k)`` (sequence models: ``(n, T, k)``). Parameters use
PyTorch's default initialisation, as in the paper's code, drawn from a private
random stream: ``make_model(..., seed=s)`` gives the same weights every time and
never touches the caller's global RNG.

===================  ==========================================================
name                 architecture
===================  ==========================================================
``fc-tanh``          flatten → [linear(width) → tanh] × depth → linear(k)
``fc-relu``          the same with ReLU          (paper: width 200, depth 2)
``fc-elu``           the same with ELU
``cnn-relu``         [conv3×3(width) → ReLU → maxpool2] × depth → linear(k)
``cnn-bn-relu``      [conv3×3(width) → ReLU → BN → maxpool2] × depth → linear(k)
                     (paper: width 32, depth 2)
``deep-linear``      [linear(width)] × depth → linear(k); no nonlinearity, no bias,
                     Xavier-normal init as in the paper's code (option ``init``)
``transformer``      decoder-only, pre-norm; see :class:`Transformer` (text data)
===================  ==========================================================

Chapter 8's two-layer scalar network is not here: it is solved in closed form in
NumPy (:mod:`eoslib.scalar_net`).

To add an architecture, write a builder ``build(input_shape, n_out, **options)``
below and register it in :data:`MODELS` (and, if it needs a kind of input other
than vectors or images, in :data:`INPUTS`).

Reference: J. Cohen et al., ICLR 2021, Appendix B (architectures).
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
from torch import nn

# ---------------------------------------------------------------- building blocks

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {"tanh": nn.Tanh, "relu": nn.ReLU, "elu": nn.ELU}


def _activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; valid: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


def fully_connected(input_dim: int, n_out: int, *, width: int = 200, depth: int = 2,
                    activation: str | None = "tanh", bias: bool = True) -> nn.Sequential:
    """``depth`` hidden layers of ``width`` units; ``activation=None`` gives a deep linear net."""
    layers: list[nn.Module] = [nn.Flatten()]
    fan_in = input_dim
    for _ in range(depth):
        layers.append(nn.Linear(fan_in, width, bias=bias))
        if activation is not None:
            layers.append(_activation(activation))
        fan_in = width
    layers.append(nn.Linear(fan_in, n_out, bias=bias))
    return nn.Sequential(*layers)


def convolutional(input_shape: Sequence[int], n_out: int, *, width: int = 32, depth: int = 2,
                  activation: str = "relu", batch_norm: bool = False) -> nn.Sequential:
    """The paper's CNN: [3×3 conv (padding 1) → act → (BN) → 2×2 max-pool] × depth → linear.

    ``input_shape`` is ``(channels, height, width)``; each pool halves the side.
    """
    channels, height, side = input_shape
    layers: list[nn.Module] = []
    for _ in range(depth):
        layers += [nn.Conv2d(channels, width, 3, padding=1), _activation(activation)]
        if batch_norm:
            layers.append(nn.BatchNorm2d(width))
        layers.append(nn.MaxPool2d(2))
        channels, height, side = width, height // 2, side // 2
    if height < 1 or side < 1:
        raise ValueError(f"input {tuple(input_shape)} is too small for {depth} pooling layers")
    layers += [nn.Flatten(), nn.Linear(channels * height * side, n_out)]
    return nn.Sequential(*layers)


class LayerNorm(nn.Module):
    """Layer norm written with elementary ops, so every derivative order is exact.

    y = γ ⊙ (x − μ) / √(σ² + ε) + β over the last axis.
    """

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mu = x.mean(dim=-1, keepdim=True)
        var = (x - mu).pow(2).mean(dim=-1, keepdim=True)
        return self.weight * (x - mu) / torch.sqrt(var + self.eps) + self.bias


class CausalSelfAttention(nn.Module):
    """Multi-head attention where position t attends to positions ≤ t."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"model width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, d = x.shape  # batch, time, width; nh heads of size hs = d // nh
        hs = d // self.heads
        q, k, v = self.qkv(x).split(d, dim=-1)  # each (n, t, d)
        q, k, v = (z.reshape(n, t, self.heads, hs).transpose(1, 2) for z in (q, k, v))  # each (n, nh, t, hs)
        scores = q @ k.transpose(-1, -2) / math.sqrt(hs)  # (n, nh, t, t)
        mask = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1)  # (t, t), True above the diagonal
        att = scores.masked_fill(mask, float("-inf")).softmax(dim=-1)  # (n, nh, t, t), rows sum to 1
        y = (att @ v).transpose(1, 2).reshape(n, t, d)  # (n, nh, t, hs) -> (n, t, nh, hs) -> (n, t, d)
        return self.proj(y)  # (n, t, d)


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.ln1, self.ln2 = LayerNorm(dim), LayerNorm(dim)
        self.attn = CausalSelfAttention(dim, heads)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (n, t, d) -> (n, t, d)
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))  # the MLP maps (n, t, d) -> (n, t, 4d) -> (n, t, d)


class Transformer(nn.Module):
    """A small decoder-only language model: token + position embeddings, pre-norm blocks, LN, linear head.

    Input: integer tokens ``(n, T)`` with T ≤ ``context``; output: logits ``(n, T, vocab)``.
    """

    def __init__(self, vocab: int, context: int, *, width: int = 32, depth: int = 2, heads: int = 2):
        super().__init__()
        self.token = nn.Embedding(vocab, width)
        self.position = nn.Embedding(context, width)
        self.blocks = nn.Sequential(*[Block(width, heads) for _ in range(depth)])
        self.ln = LayerNorm(width)
        self.head = nn.Linear(width, vocab)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        t = tokens.shape[1]  # tokens: (n, t) integers
        x = self.token(tokens) + self.position(torch.arange(t, device=tokens.device))  # (n, t, d) + (t, d)
        return self.head(self.ln(self.blocks(x)))  # (n, t, d) -> (n, t, vocab)


# ---------------------------------------------------------------- registry

def _fc(activation: str):
    def build(input_shape, n_out, width=200, depth=2, **kw):
        return fully_connected(math.prod(input_shape), n_out, width=width, depth=depth, activation=activation, **kw)
    return build


def _cnn(batch_norm: bool):
    def build(input_shape, n_out, width=32, depth=2, activation="relu"):
        if len(input_shape) != 3:
            raise ValueError(f"a CNN needs image inputs (channels, height, width), got shape {tuple(input_shape)}")
        return convolutional(input_shape, n_out, width=width, depth=depth, activation=activation,
                             batch_norm=batch_norm)
    return build


def _deep_linear(input_shape, n_out, width=50, depth=20, bias=False, init="xavier"):
    """Deep linear net; ``init="xavier"`` draws each W_l ~ N(0, 2/(fan_in + fan_out)) as the paper's code
    does (``xavier_normal_``), which keeps the signal's scale through depth; ``"default"`` is PyTorch's
    uniform init, which shrinks it by about √3 per layer (at depth 20 the net starts on a plateau)."""
    if init not in ("xavier", "default"):
        raise ValueError(f"unknown init {init!r}; valid: xavier, default")
    net = fully_connected(math.prod(input_shape), n_out, width=width, depth=depth, activation=None, bias=bias)
    if init == "xavier":
        for layer in net:
            if isinstance(layer, nn.Linear):
                nn.init.xavier_normal_(layer.weight)
    return net


def _transformer(input_shape, n_out, width=32, depth=2, heads=2):
    (context,) = input_shape
    return Transformer(n_out, context, width=width, depth=depth, heads=heads)


MODELS: dict[str, Callable[..., nn.Module]] = {
    "fc-tanh": _fc("tanh"), "fc-relu": _fc("relu"), "fc-elu": _fc("elu"),
    "cnn-relu": _cnn(False), "cnn-bn-relu": _cnn(True),
    "deep-linear": _deep_linear, "transformer": _transformer,
}

#: The kind of input each model takes (datasets declare the kind they provide, eoslib.data.DATASETS):
#: "vector" models flatten any real-valued input, "image" models need (channels, height, width),
#: "tokens" models need integer token sequences.
INPUTS: dict[str, str] = {"fc-tanh": "vector", "fc-relu": "vector", "fc-elu": "vector", "cnn-relu": "image",
                          "cnn-bn-relu": "image", "deep-linear": "vector", "transformer": "tokens"}


def make_model(name: str, input_shape: Sequence[int], n_out: int, *, seed: int = 0,
               dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu", **options) -> nn.Module:
    """Build model ``name`` for inputs of shape ``input_shape`` (one example) and ``n_out`` outputs.

    ``options`` go to the builder (``width``, ``depth``, ``activation``, ``heads``, ...);
    ``None`` values are dropped so callers can pass optional settings through.
    The same ``seed`` gives the same parameters; the global RNG is left untouched.

    >>> m1 = make_model("fc-tanh", (64,), 10, seed=3, width=8); m2 = make_model("fc-tanh", (64,), 10, seed=3, width=8)
    >>> all(torch.equal(p, q) for p, q in zip(m1.parameters(), m2.parameters()))
    True
    """
    model = _build(name, input_shape, n_out, seed, options)
    return model.to(device=device, dtype=dtype)


def _build(name: str, input_shape: Sequence[int], n_out: int, seed: int, options: dict) -> nn.Module:
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; valid: {', '.join(MODELS)}")
    options = {k: v for k, v in options.items() if v is not None}
    for key in ("width", "depth", "heads"):
        value = options.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value < (0 if key == "depth" else 1)):
            raise ValueError(f"model {name!r}: {key}={value!r} must be an integer >= {0 if key == 'depth' else 1}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        try:
            return MODELS[name](tuple(input_shape), n_out, **options)
        except TypeError as err:  # an option this architecture does not take
            raise ValueError(f"model {name!r}: {err}") from None


def count_parameters(name: str, input_shape: Sequence[int], n_out: int, **options) -> int:
    """Trainable scalars P of model ``name``, computed without allocating it (PyTorch's ``meta`` device).

    Lets a configuration refuse an impossible size before any memory is used.

    >>> count_parameters("fc-tanh", (64,), 10, width=8, depth=1)   # 64·8 + 8 + 8·10 + 10
    610
    >>> count_parameters("fc-tanh", (64,), 10, width=10_000_000) > 10**14
    True
    """
    with torch.device("meta"):
        model = _build(name, input_shape, n_out, 0, options)
    return num_parameters(model)


def num_parameters(model: nn.Module) -> int:
    """Number of trainable scalars P (the Hessian is P × P)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)

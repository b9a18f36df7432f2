"""Hessian-vector products of the full-batch training loss.

The loss is the mean over all ``n`` examples, evaluated in chunks of at most
``chunk_size`` examples so that memory stays bounded:

    L(θ) = Σ_i (n_i / n) · loss_fn(model(x_i), y_i),      n = Σ_i n_i,

and ``H = ∇²L(θ)`` is its Hessian with respect to the trainable parameters,
flattened into one vector of length ``P`` in ``model.parameters()`` order.

**Pearlmutter's trick** (Pearlmutter, 1994): ``H v = ∇_θ (∇_θ L(θ) · v)``, the
gradient of a scalar, so it costs a small constant times one gradient and never
forms the ``P × P`` matrix.  Two ways to evaluate it:

* ``"double_backward"`` (reverse-over-reverse): build ``g = ∇L`` once with
  ``create_graph=True`` and differentiate ``g · v`` with
  ``torch.autograd.grad``.  With ``reuse_graph=True`` the first-order graph is
  built *once per operator* and every product only runs the second backward
  pass; one graph per chunk is kept, so memory is that of one
  ``create_graph`` gradient of the whole data set.  ``reuse_graph=False``
  rebuilds the chunk graph for every product (memory of one chunk, ~3× the time).
* ``"forward_over_reverse"``: ``torch.func.jvp`` of ``torch.func.grad``, chunk by
  chunk, nothing kept between products.

``"auto"`` means ``"double_backward"`` with graph reuse, the faster one on every
network benchmarked (a reused-graph product costs about one gradient, the other two
two to three; measured numbers, dated, are in ``benchmarks/README.md``).  Memory: the
reused graph holds one ``create_graph`` gradient of the whole data set (a few
GB for a CNN on 5,000 CIFAR images); to bound it, pass ``reuse_graph=False``
and a ``chunk_size``.  :meth:`HVP.from_graph` wraps a first-order graph that a
training step already built, so tracking the sharpness costs no extra gradient.

**Batch norm.**  The model is used in whatever mode it is in.  In train mode
batch norm normalises each *chunk* with that chunk's statistics, exactly as a
training step with physical batch ``chunk_size`` does, so ``chunk_size`` is part
of the definition of ``L`` (pass the training batch size).  In eval mode the
running statistics are constants and ``chunk_size`` does not matter.  Buffers
(running statistics) are restored after every forward pass, so measuring never
changes the model.  Dropout in train mode makes ``L`` random: use eval mode.

Nothing here writes ``.grad`` or changes parameters.  Bad input (non-finite data,
inputs or targets the model or loss cannot take, a loss that does not depend on the
parameters) raises a one-line ``ValueError`` before any product is taken.

References:
    B. A. Pearlmutter. Fast exact multiplication by the Hessian. Neural
    Computation, 1994.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator

import torch
from torch import nn

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
METHODS = ("auto", "double_backward", "forward_over_reverse")


def trainable(model: nn.Module) -> list[nn.Parameter]:
    """Parameters with ``requires_grad``, in ``model.parameters()`` order."""
    return [p for p in model.parameters() if p.requires_grad]


def flat_params(model: nn.Module) -> torch.Tensor:
    """Trainable parameters concatenated into one detached vector of length ``P``."""
    return torch.cat([p.detach().reshape(-1) for p in trainable(model)])


def unflatten(vector: torch.Tensor, model: nn.Module) -> list[torch.Tensor]:
    """Split a flat ``(P,)`` vector into views shaped like the trainable parameters."""
    params = trainable(model)
    sizes = [p.numel() for p in params]
    if vector.shape != (sum(sizes),):
        raise ValueError(f"expected a flat vector of shape ({sum(sizes)},), got {tuple(vector.shape)}")
    return [piece.view_as(p) for piece, p in zip(vector.split(sizes), params)]


def check_model(model: nn.Module) -> list[nn.Parameter]:
    """Trainable parameters, or ValueError if there are none or any is NaN/inf."""
    params = trainable(model)
    if not params:
        raise ValueError("the model has no trainable parameters")
    suspects = [p for p in params if not torch.isfinite(p.detach().sum())]  # a cheap first pass
    if any(not torch.isfinite(p).all() for p in suspects):
        raise ValueError("the model's parameters contain NaN or inf")
    return params


def chunks(inputs: torch.Tensor, targets: torch.Tensor, chunk_size: int | None, like: torch.Tensor):
    """``[(x_i, y_i, n_i/n)]``: the data cut into chunks, moved to ``like``'s device/dtype."""
    if not (isinstance(inputs, torch.Tensor) and isinstance(targets, torch.Tensor)):
        raise ValueError("inputs and targets must be tensors with examples along dim 0")
    n = inputs.shape[0] if inputs.dim() else 0
    if n == 0:
        raise ValueError("the data set is empty: need at least one example")
    if targets.dim() == 0 or targets.shape[0] != n:
        raise ValueError(f"inputs have {n} examples but targets have shape {tuple(targets.shape)}")
    if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, float))
                                   or int(chunk_size) != chunk_size or chunk_size < 1):
        raise ValueError(f"chunk_size must be a positive integer or None, got {chunk_size!r}")
    for name, t in (("inputs", inputs), ("targets", targets)):
        if t.is_floating_point() and not torch.isfinite(t).all():
            raise ValueError(f"the {name} contain NaN or inf")
    size = n if chunk_size is None else int(chunk_size)

    def move(t: torch.Tensor) -> torch.Tensor:
        return t.to(like.device, like.dtype if t.is_floating_point() else t.dtype)

    return [(move(inputs[i:i + size]), move(targets[i:i + size]), len(inputs[i:i + size]) / n)
            for i in range(0, n, size)]


def scalar_loss(loss: torch.Tensor) -> torch.Tensor:
    """``loss`` if it is a 0-dim tensor, else ValueError (loss_fn must return the mean)."""
    if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
        shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
        raise ValueError(f"loss_fn must return a scalar (mean) loss, got {shape}")
    return loss


def _first_line(err: Exception) -> str:
    return (str(err).splitlines() or [type(err).__name__])[0]


def model_loss(model: nn.Module, loss_fn: LossFn, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``loss_fn(model(x), y)``, checked: a model that cannot take ``x``, targets whose shape does not
    fit the outputs (floating targets: the outputs' shape; labels: the outputs' shape without the last
    axis), a non-scalar or non-finite loss raise a one-line ValueError."""
    try:
        out = model(x)
    except (RuntimeError, IndexError, TypeError) as err:
        raise ValueError(f"the model cannot take inputs of shape {tuple(x.shape)}: {_first_line(err)}") from None
    if isinstance(out, torch.Tensor) and out.dim() >= 1:
        expected = tuple(out.shape) if y.is_floating_point() else tuple(out.shape[:-1])
        if tuple(y.shape) != expected:
            raise ValueError(f"targets of shape {tuple(y.shape)} do not fit model outputs of shape "
                             f"{tuple(out.shape)} (expected targets of shape {expected})")
    try:
        loss = scalar_loss(loss_fn(out, y))
    except (RuntimeError, IndexError) as err:
        raise ValueError(f"loss_fn failed on outputs {tuple(out.shape)} and targets {tuple(y.shape)}: "
                         f"{_first_line(err)}") from None
    return loss


def check_depends(loss: torch.Tensor) -> None:
    """ValueError unless ``loss`` has a graph back to the parameters (``requires_grad``)."""
    if not loss.requires_grad:
        raise ValueError("loss_fn's value does not depend on the model's trainable parameters")


@contextlib.contextmanager
def frozen_buffers(model: nn.Module) -> Iterator[None]:
    """Restore every buffer (batch-norm running statistics, counters) on exit."""
    saved = [(b, b.detach().clone()) for b in model.buffers()]
    try:
        yield
    finally:
        for b, copy in saved:  # through .data: no version bump, so graphs that saved b stay valid
            if not torch.equal(b, copy):
                b.data.copy_(copy)


@contextlib.contextmanager
def batch_statistics_only(model: nn.Module) -> Iterator[None]:
    """In train mode, let norm layers use batch statistics without updating running ones.

    The loss is unchanged (train mode normalises with batch statistics either
    way); torch.func transforms refuse the in-place running-statistics update.
    """
    layers = [m for m in model.modules() if m.training and getattr(m, "track_running_stats", False)]
    for m in layers:
        m.track_running_stats = False
    try:
        yield
    finally:
        for m in layers:
            m.track_running_stats = True


class HVP:
    """The map ``v ↦ H v`` for the full-batch loss (module docstring).

    Call it on a flat ``(P,)`` tensor.  Attributes: ``dim`` (P), ``dtype``,
    ``device`` (those of the parameters), ``n_calls`` (products so far),
    ``method`` (resolved), ``loss`` (full-batch loss value when the graph was
    built, else None).
    """

    def __init__(self, model: nn.Module, loss_fn: LossFn, inputs: torch.Tensor, targets: torch.Tensor, *,
                 chunk_size: int | None = None, method: str = "auto", reuse_graph: bool = True):
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; valid: {', '.join(METHODS)}")
        self.params = check_model(model)
        self.model, self.loss_fn = model, loss_fn
        self.method = "double_backward" if method == "auto" else method
        self.chunks = chunks(inputs, targets, chunk_size, self.params[0])
        self.dim = sum(p.numel() for p in self.params)
        self.dtype, self.device = self.params[0].dtype, self.params[0].device
        self.n_calls = 0
        self.loss = None
        self._grads = None
        if self.method == "double_backward" and reuse_graph:
            self._grads, self.loss = self._gradient_graph()
        else:  # check the data, the model and the loss once, on the first chunk
            x, y, _ = self.chunks[0]
            with torch.enable_grad():
                check_depends(self._chunk_loss(x, y))

    @classmethod
    def from_graph(cls, model: nn.Module, grads, loss: float) -> "HVP":
        """The operator on a first-order graph built elsewhere: ``grads`` are ``∇L`` per trainable
        parameter, computed with ``create_graph=True`` (``None`` for a parameter the loss does not
        use), ``loss`` the value of ``L``.  Training uses it to measure the sharpness on its own
        step's graph (:func:`eoslib.train.full_batch_gradient` with ``create_graph=True``).
        """
        op = cls.__new__(cls)
        op.params = check_model(model)
        if len(grads) != len(op.params):
            raise ValueError(f"{len(grads)} gradients for {len(op.params)} trainable parameters")
        op.model, op.loss_fn, op.method, op.chunks = model, None, "double_backward", None
        op.dim = sum(p.numel() for p in op.params)
        op.dtype, op.device = op.params[0].dtype, op.params[0].device
        op.n_calls, op.loss, op._grads = 0, loss, list(grads)
        return op

    def gradient(self) -> torch.Tensor:
        """Flat full-batch gradient ``∇L`` (free once the graph is built; double backward only)."""
        if self._grads is None:
            raise ValueError("gradient() needs method='double_backward' with reuse_graph=True")
        return torch.cat([torch.zeros_like(p).reshape(-1) if g is None else g.detach().reshape(-1)
                          for g, p in zip(self._grads, self.params)])

    def _chunk_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with frozen_buffers(self.model):
            return model_loss(self.model, self.loss_fn, x, y)

    def _gradient_graph(self):
        """``∇L`` with its graph (``create_graph=True``), summed over chunks, and ``L``."""
        total, loss = None, 0.0
        for x, y, w in self.chunks:
            chunk_loss = w * self._chunk_loss(x, y)
            check_depends(chunk_loss)
            g = torch.autograd.grad(chunk_loss, self.params, create_graph=True, allow_unused=True)
            total = g if total is None else [b if a is None else a if b is None else a + b
                                             for a, b in zip(total, g)]
            loss += float(chunk_loss.detach())
        if all(g is None for g in total):
            raise ValueError("loss_fn's value does not depend on the model's trainable parameters")
        return total, loss

    def _vector(self, v: torch.Tensor) -> list[torch.Tensor]:
        if v.shape != (self.dim,):
            raise ValueError(f"expected a flat vector of shape ({self.dim},), got {tuple(v.shape)}")
        v = v.detach().to(self.device, self.dtype)
        return [piece.view_as(p) for piece, p in zip(v.split([p.numel() for p in self.params]), self.params)]

    def __call__(self, v: torch.Tensor) -> torch.Tensor:
        vs = self._vector(v)
        self.n_calls += 1
        if self.method == "forward_over_reverse":
            parts = self._forward_over_reverse(vs)
        elif self._grads is not None:
            parts = self._second_backward(self._grads, vs, retain=True)
        else:
            parts = None
            for x, y, w in self.chunks:
                g = torch.autograd.grad(w * self._chunk_loss(x, y), self.params, create_graph=True,
                                        allow_unused=True)
                hv = self._second_backward(g, vs, retain=False)
                parts = hv if parts is None else [a + b for a, b in zip(parts, hv)]
        return torch.cat([h.reshape(-1) for h in parts])

    def _second_backward(self, grads, vs, retain: bool) -> list[torch.Tensor]:
        """``∇_θ (g · v)``: one backward pass through the graph of ``g``."""
        live = [(g, v) for g, v in zip(grads, vs) if g is not None and g.requires_grad]
        if not live:  # the loss is (at most) linear in θ: H = 0
            return [torch.zeros_like(p) for p in self.params]
        hv = torch.autograd.grad([g for g, _ in live], self.params, grad_outputs=[v for _, v in live],
                                 retain_graph=retain, allow_unused=True)
        return [torch.zeros_like(p) if h is None else h for h, p in zip(hv, self.params)]

    def _forward_over_reverse(self, vs) -> list[torch.Tensor]:
        from torch.func import functional_call, grad, jvp

        names = [n for n, p in self.model.named_parameters() if p.requires_grad]
        primal = {n: p.detach() for n, p in zip(names, self.params)}
        tangent = dict(zip(names, vs))
        total = None
        for x, y, w in self.chunks:
            def chunk_loss(params, x=x, y=y, w=w):
                return w * scalar_loss(self.loss_fn(functional_call(self.model, params, (x,)), y))

            with frozen_buffers(self.model), batch_statistics_only(self.model):
                _, hv = jvp(grad(chunk_loss), (primal,), (tangent,))
            total = hv if total is None else {n: total[n] + hv[n] for n in names}
        return [total[n] for n in names]


def hvp_operator(model: nn.Module, loss_fn: LossFn, inputs: torch.Tensor, targets: torch.Tensor, *,
                 chunk_size: int | None = None, method: str = "auto", reuse_graph: bool = True) -> HVP:
    """The Hessian-vector product ``v ↦ ∇²L(θ) v`` of the full-batch mean loss at the current θ.

    Args:
        model: any ``nn.Module``; its trainable parameters define θ (P entries).
        loss_fn: ``loss_fn(outputs, targets)`` → 0-dim mean loss.
        inputs, targets: the data, examples along dim 0 (moved to the
            parameters' device; floating tensors cast to their dtype).
        chunk_size: examples per forward pass (None: all at once).  Part of the
            loss definition for batch norm in train mode (module docstring).
        method: ``"auto"``, ``"double_backward"`` or ``"forward_over_reverse"``.
        reuse_graph: keep the first-order graph between products (double backward).

    Returns:
        :class:`HVP`, a callable ``(P,) → (P,)``.
    """
    return HVP(model, loss_fn, inputs, targets, chunk_size=chunk_size, method=method, reuse_graph=reuse_graph)


def dense_hessian(model: nn.Module, loss_fn: LossFn, inputs: torch.Tensor, targets: torch.Tensor, *,
                  chunk_size: int | None = None, max_params: int = 5000) -> torch.Tensor:
    """The full ``(P, P)`` Hessian of the full-batch loss, for tiny models and tests.

    Computed with ``torch.autograd.functional.hessian`` of ``θ ↦ L(θ)`` (through
    ``torch.func.functional_call``), a code path independent of :class:`HVP`.
    Refuses models with more than ``max_params`` parameters (memory ``P²``).
    """
    from torch.func import functional_call

    params = check_model(model)
    dim = sum(p.numel() for p in params)
    if dim > max_params:
        raise ValueError(f"dense_hessian needs P <= max_params={max_params}, the model has P={dim}")
    data = chunks(inputs, targets, chunk_size, params[0])
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    with frozen_buffers(model):  # check the data, the model and the loss once, on the first chunk
        check_depends(model_loss(model, loss_fn, data[0][0], data[0][1]))

    def full_loss(theta: torch.Tensor) -> torch.Tensor:
        pieces = dict(zip(names, (t.view_as(p) for t, p in zip(theta.split([p.numel() for p in params]), params))))
        return sum(w * scalar_loss(loss_fn(functional_call(model, pieces, (x,)), y)) for x, y, w in data)

    with frozen_buffers(model):
        return torch.autograd.functional.hessian(full_loss, flat_params(model))

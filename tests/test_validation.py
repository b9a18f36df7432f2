"""Bad input to the library API gets one clear line (a ValueError), before any work or allocation.

Three lists of bad requests, each case named: TrainConfigs (rejected when built),
Hessian-function calls and dataset requests. ``handled(cases)`` counts the cases
that raise a one-line ValueError; the tests require all of them, and the summary
line reports the count (run this file against an older eoslib to compare).
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from eoslib import hessian
from eoslib.data import load_dataset
from eoslib.train import TrainConfig

F64 = torch.float64

# ---------------------------------------------------------------- TrainConfig

BAD_CONFIGS = {
    "unknown model": dict(model="resnet"),
    "model not a string": dict(model=3),
    "unknown dataset": dict(dataset="mnist"),
    "text with an MLP": dict(dataset="text"),
    "transformer on digits": dict(model="transformer"),
    "CNN on vectors": dict(model="cnn-relu", dataset="synthetic"),
    "CNN on regression vectors": dict(model="cnn-relu", dataset="linear"),
    "deep linear on text": dict(model="deep-linear", dataset="text"),
    "unknown loss": dict(loss="hinge"),
    "cross-entropy on regression": dict(dataset="linear", loss="ce"),
    "unknown optimizer": dict(opt="lbfgs"),
    "Adam beta1 = 1": dict(opt="adam", beta1=1.0),
    "Adam beta2 = 1": dict(opt="adam", beta2=1.0),
    "Adam beta1 < 0": dict(opt="adam", beta1=-0.1),
    "heavy ball without momentum": dict(opt="heavy_ball", momentum=0.0),
    "Nesterov without momentum": dict(opt="nesterov", momentum=0.0),
    "momentum = 1": dict(opt="heavy_ball", momentum=1.0),
    "momentum < 0": dict(momentum=-0.5),
    "lr = 0": dict(lr=0.0),
    "lr < 0": dict(lr=-1.0),
    "lr NaN": dict(lr=math.nan),
    "lr inf": dict(lr=math.inf),
    "lr a string": dict(lr="0.1"),
    "n = 0": dict(n=0),
    "n above the split": dict(n=1501),
    "n fractional": dict(n=1.5),
    "n = 10**12 generated": dict(dataset="synthetic", n=10**12),
    "steps = 0": dict(steps=0),
    "steps fractional": dict(steps=2.5),
    "sharpness_every < 0": dict(sharpness_every=-1),
    "sharpness_every fractional": dict(sharpness_every=1.5),
    "sharpness_n = 0": dict(sharpness_n=0),
    "sharpness_n > n": dict(n=100, sharpness_n=500),
    "sharpness_tol = 0": dict(sharpness_tol=0.0),
    "sharpness_tol NaN": dict(sharpness_tol=math.nan),
    "sharpness_tol < 0": dict(sharpness_tol=-1e-3),
    "unknown metric": dict(metrics=("foo",)),
    "metrics as one string": dict(metrics="step_sharpness"),
    "preconditioned sharpness without Adam": dict(metrics=("preconditioned_sharpness",)),
    "metrics without measurements": dict(metrics=("step_sharpness",), sharpness_every=0),
    "batch_size = 0": dict(opt="sgd", batch_size=0),
    "batch_size > n": dict(opt="sgd", batch_size=5000),
    "width = 0": dict(width=0),
    "width 10,000,000": dict(width=10_000_000),
    "width fractional": dict(width=1.5),
    "depth = -1": dict(depth=-1),
    "depth a bool": dict(depth=True),
    "seed < 0": dict(seed=-1),
    "seed 2**70": dict(seed=2**70),
    "dtype float16": dict(dtype="float16"),
    "device tpu": dict(device="tpu"),
    "chunk_size = 0": dict(chunk_size=0),
    "chunk_size < 0": dict(chunk_size=-3),
    "max_loss < 0": dict(max_loss=-1.0),
    "max_loss NaN": dict(max_loss=math.nan),
    "loss_goal < 0": dict(loss_goal=-1.0),
    "acc_goal = 2": dict(acc_goal=2.0),
    "acc_goal on regression": dict(dataset="linear", acc_goal=0.5),
    "heads not dividing the width": dict(model="transformer", dataset="text", model_options={"heads": 3}),
    "unknown model option": dict(model_options={"foo": 1}),
    "model options not a dict": dict(model_options="heads=2"),
    "width in model_options": dict(model_options={"width": 8}),
    "synthetic dim = 0": dict(dataset="synthetic", data_options={"dim": 0}),
    "option of another dataset": dict(data_options={"dim": 3}),
    "text source unknown": dict(model="transformer", dataset="text", data_options={"source": "wiki"}),
}
if not torch.cuda.is_available():
    BAD_CONFIGS["cuda without a GPU"] = dict(device="cuda")


# ---------------------------------------------------------------- Hessian functions

def _mlp(width=6):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(5, width), nn.Tanh(), nn.Linear(width, 3)).to(F64)


def mse(f, y):
    return 0.5 * ((f - y) ** 2).sum(dim=1).mean()


def _bad_hessian_calls():
    model = _mlp()
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(10, 5, generator=g, dtype=F64), torch.randn(10, 3, generator=g, dtype=F64)
    P = hessian.flat_params(model).numel()
    nan_x, inf_x, nan_y = x.clone(), x.clone(), y.clone()
    nan_x[0, 0], inf_x[1, 1], nan_y[2, 2] = math.nan, math.inf, math.nan
    nan_model, inf_model, frozen = _mlp(), _mlp(), _mlp()
    with torch.no_grad():
        nan_model[0].weight[0, 0] = math.nan
        inf_model[2].bias[0] = math.inf
    for p in frozen.parameters():
        p.requires_grad_(False)
    ones = torch.ones(P, dtype=F64)
    return {
        "non-scalar loss": lambda: hessian.sharpness(model, lambda f, t: ((f - t) ** 2).mean(dim=1), x, y),
        "loss returns a float": lambda: hessian.sharpness(model, lambda f, t: 1.0, x, y),
        "loss independent of the parameters": lambda: hessian.sharpness(model, lambda f, t: (t ** 2).mean(), x, y),
        "empty data": lambda: hessian.sharpness(model, mse, x[:0], y[:0]),
        "k > P": lambda: hessian.top_eigenpairs(model, mse, x, y, k=P + 1),
        "k = 0": lambda: hessian.top_eigenpairs(model, mse, x, y, k=0),
        "unknown method": lambda: hessian.hvp_operator(model, mse, x, y, method="magic"),
        "batch larger than data": lambda: hessian.batch_sharpness(model, mse, x, y, 11),
        "batch size 0": lambda: hessian.batch_sharpness(model, mse, x, y, 0),
        "batch size fractional": lambda: hessian.batch_sharpness(model, mse, x, y, 2.5),
        "n_batches = 0": lambda: hessian.batch_sharpness(model, mse, x, y, 3, n_batches=0),
        "unknown average": lambda: hessian.batch_sharpness(model, mse, x, y, 3, average="median"),
        "batch sharpness with too few targets": lambda: hessian.batch_sharpness(model, mse, x, y[:5], 3),
        "negative preconditioner": lambda: hessian.preconditioned_sharpness(model, mse, x, y, -ones),
        "preconditioner of wrong shape": lambda: hessian.preconditioned_sharpness(model, mse, x, y, ones[:-1]),
        "NaN preconditioner": lambda: hessian.preconditioned_sharpness(model, mse, x, y, ones * math.nan),
        "fewer targets than inputs": lambda: hessian.sharpness(model, mse, x, y[:5]),
        "NaN parameter": lambda: hessian.sharpness(nan_model, mse, x, y),
        "inf parameter": lambda: hessian.sharpness(inf_model, mse, x, y),
        "no trainable parameters": lambda: hessian.sharpness(frozen, mse, x, y),
        "NaN inputs": lambda: hessian.sharpness(model, mse, nan_x, y),
        "inf inputs": lambda: hessian.sharpness(model, mse, inf_x, y),
        "NaN targets": lambda: hessian.sharpness(model, mse, x, nan_y),
        "wrong feature width": lambda: hessian.sharpness(model, mse, torch.randn(10, 6, dtype=F64), y),
        "wrong target width (4)": lambda: hessian.sharpness(model, mse, x, torch.randn(10, 4, dtype=F64)),
        "wrong target width (1, broadcasts)": lambda: hessian.sharpness(model, mse, x, y[:, :1]),
        "dense Hessian, wrong target width": lambda: hessian.dense_hessian(model, mse, x, y[:, :1]),
        "forward-over-reverse, wrong feature width":
            lambda: hessian.hvp_operator(model, mse, torch.randn(10, 6, dtype=F64), y, method="forward_over_reverse"),
        "tol = 1": lambda: hessian.sharpness(model, mse, x, y, tol=1.0),
        "tol inf": lambda: hessian.sharpness(model, mse, x, y, tol=math.inf),
        "tol < 0": lambda: hessian.sharpness(model, mse, x, y, tol=-1e-3),
        "tol NaN": lambda: hessian.sharpness(model, mse, x, y, tol=math.nan),
        "max_iter = 0": lambda: hessian.sharpness(model, mse, x, y, max_iter=0),
        "max_iter fractional": lambda: hessian.sharpness(model, mse, x, y, max_iter=2.5),
        "seed < 0": lambda: hessian.sharpness(model, mse, x, y, seed=-1),
        "v0 of wrong shape": lambda: hessian.sharpness(model, mse, x, y, v0=torch.ones(3, dtype=F64)),
        "v0 zero": lambda: hessian.sharpness(model, mse, x, y, v0=torch.zeros(P, dtype=F64)),
        "v0 NaN": lambda: hessian.sharpness(model, mse, x, y, v0=ones * math.nan),
        "chunk_size = 0": lambda: hessian.sharpness(model, mse, x, y, chunk_size=0),
        "chunk_size fractional": lambda: hessian.sharpness(model, mse, x, y, chunk_size=2.5),
        "inputs not a tensor": lambda: hessian.sharpness(model, mse, x.tolist(), y),
        "targets not a tensor": lambda: hessian.sharpness(model, mse, x, y.tolist()),
        "direction of wrong shape": lambda: hessian.directional_sharpness(model, mse, x, y, ones[:3]),
        "zero direction": lambda: hessian.directional_sharpness(model, mse, x, y, ones * 0),
        "third derivative along a wrong shape": lambda: hessian.sharpness_gradient(model, mse, x, y, ones[:3]),
        "dense Hessian above max_params": lambda: hessian.dense_hessian(model, mse, x, y, max_params=10),
        "power iteration tol < 0": lambda: hessian.power_iteration(lambda v: v, 3, tol=-1.0),
        "Lanczos on dimension 0": lambda: hessian.lanczos(lambda v: v, 0),
    }


# ---------------------------------------------------------------- datasets

BAD_DATA = {
    "unknown name": dict(name="mnist"),
    "n = 0": dict(name="digits", n=0),
    "n above the split": dict(name="digits", n=1501),
    "n fractional": dict(name="digits", n=2.5),
    "unknown loss": dict(name="digits", loss="hinge"),
    "cross-entropy on regression": dict(name="linear", loss="ce"),
    "unknown split": dict(name="digits", split="validation"),
    "synthetic dim = 0": dict(name="synthetic", dim=0),
    "synthetic one class": dict(name="synthetic", classes=1),
    "linear dim fractional": dict(name="linear", dim=2.5),
    "option of another dataset": dict(name="digits", dim=3),
    "device tpu": dict(name="digits", device="tpu"),
    "integer dtype": dict(name="digits", dtype=torch.int64),
    "seed < 0": dict(name="synthetic", seed=-1),
    "text source unknown": dict(name="text", source="wiki"),
    "text vocab = 1": dict(name="text", vocab=1),
    "text context = 0": dict(name="text", context=0),
    "text level unknown": dict(name="text", level="byte"),
    "text n above the corpus": dict(name="text", n=10**8),
    "too many generated values": dict(name="synthetic", n=10**12),
}
if not torch.cuda.is_available():
    BAD_DATA["cuda without a GPU"] = dict(name="digits", device="cuda")


def handled(cases: dict) -> tuple[int, list[str]]:
    """(number of cases that raised a one-line ValueError, names of the others)."""
    missed = []
    for name, call in cases.items():
        try:
            call()
            missed.append(f"{name}: accepted")
        except ValueError as err:
            if "\n" in str(err):
                missed.append(f"{name}: multi-line message")
        except Exception as err:  # noqa: BLE001 - the point is to catch everything else
            missed.append(f"{name}: {type(err).__name__}")
    return len(cases) - len(missed), missed


def test_every_bad_config_is_rejected_when_built(record_property):
    cases = {name: (lambda kw=kw: TrainConfig(**kw)) for name, kw in BAD_CONFIGS.items()}
    count, missed = handled(cases)
    record_property("summary", f"bad TrainConfigs rejected when built: {count}/{len(cases)}")
    assert not missed, missed


def test_every_bad_hessian_call_raises_one_line(record_property):
    cases = _bad_hessian_calls()
    count, missed = handled(cases)
    record_property("summary", f"bad Hessian-function inputs with a one-line ValueError: {count}/{len(cases)}")
    assert not missed, missed


def test_every_bad_dataset_request_raises_one_line(record_property):
    cases = {name: (lambda kw=kw: load_dataset(**kw)) for name, kw in BAD_DATA.items()}
    count, missed = handled(cases)
    record_property("summary", f"bad dataset requests with a one-line ValueError: {count}/{len(cases)}")
    assert not missed, missed


def test_messages_name_the_valid_choices():
    with pytest.raises(ValueError, match="models for text: transformer"):
        TrainConfig(dataset="text")
    with pytest.raises(ValueError, match="not one of digits, cifar10, synthetic, linear, text"):
        TrainConfig(dataset="mnist")
    with pytest.raises(ValueError, match="parameters, above"):
        TrainConfig(width=10_000_000)


def test_good_configs_are_accepted_and_normalised():
    import numpy as np

    c = TrainConfig(n=np.int64(50), lr=1, steps=np.int32(3), seed=np.int64(4), data_options=(("dim", 50),),
                    dataset="linear", model="deep-linear", depth=0)
    assert (type(c.n), type(c.lr), type(c.steps), type(c.seed)) == (int, float, int, int)
    assert dict(c.data_options) == {"dim": 50}
    for kw in [dict(model="transformer", dataset="text", loss="ce"), dict(model="cnn-bn-relu", width=8),
               dict(opt="adam", metrics=("preconditioned_sharpness",)), dict(opt="sgd", batch_size=10, n=50),
               dict(dataset="synthetic", data_options={"dim": 3, "classes": 2}, acc_goal=1.0),
               dict(max_loss=math.inf), dict(sharpness_every=0), dict(depth=0)]:
        TrainConfig(**kw)

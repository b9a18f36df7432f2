"""eoslib.train and eoslib.cache: determinism, exact full-batch gradients, divergence, cache, resume, and EoS."""

import json
import warnings

import numpy as np
import pytest
import torch

from eoslib import cache, hessian
from eoslib.losses import mse
from eoslib.train import Run, TrainConfig, full_batch_gradient, train

from device_params import DEVICES

SMALL = TrainConfig(model="fc-tanh", dataset="digits", n=200, width=32, lr=0.1, steps=40, sharpness_every=10)


@pytest.mark.parametrize("device", DEVICES)
def test_same_config_same_trace(device):
    config = TrainConfig(**{**SMALL.__dict__, "device": device})
    a, b = train(config, progress=False), train(config, progress=False)
    assert a.train_loss == b.train_loss and a.sharpness == b.sharpness
    c = train(TrainConfig(**{**config.__dict__, "seed": 1}), progress=False)
    assert c.train_loss != a.train_loss


@pytest.mark.parametrize("device", DEVICES)
def test_tracking_does_not_change_the_trajectory(device):
    """Measuring on the step's own graph leaves the optimizer's steps exactly as without measuring."""
    tracked = train(TrainConfig(**{**SMALL.__dict__, "device": device, "steps": 30, "sharpness_every": 3}),
                    progress=False)
    plain = train(TrainConfig(**{**SMALL.__dict__, "device": device, "steps": 30, "sharpness_every": 0}),
                  progress=False)
    assert tracked.train_loss == plain.train_loss and len(tracked.sharpness) == 10


def test_full_batch_gradient_ignores_the_chunk_size():
    config = TrainConfig(**{**SMALL.__dict__, "dtype": "float64"})
    from eoslib.train import build

    model, data = build(config)
    grads = []
    for chunk in (None, 64, 7):
        loss, acc = full_batch_gradient(model, mse, data.inputs, data.targets, chunk)
        grads.append(torch.cat([p.grad.reshape(-1) for p in model.parameters()]))
    assert torch.allclose(grads[0], grads[1], rtol=1e-12, atol=1e-14)
    assert torch.allclose(grads[0], grads[2], rtol=1e-12, atol=1e-14)
    # and a whole chunked run matches the unchunked one step for step (float64: summation order only)
    a = train(TrainConfig(**{**config.__dict__, "steps": 15}), progress=False)
    b = train(TrainConfig(**{**config.__dict__, "steps": 15, "chunk_size": 64}), progress=False)
    assert np.allclose(a.train_loss, b.train_loss, rtol=1e-10)


def test_divergence_is_detected_not_raised():
    run = train(TrainConfig(**{**SMALL.__dict__, "lr": 50.0, "steps": 200}), progress=False)
    assert run.status == "diverged"
    assert len(run.train_loss) < 200
    assert not np.isfinite(run.train_loss[-1]) or run.train_loss[-1] > 1e4


def test_goals_stop_the_run():
    run = train(TrainConfig(**{**SMALL.__dict__, "steps": 500, "loss_goal": 0.3}), progress=False)
    assert run.status == "converged" and run.train_loss[-1] < 0.3 <= run.train_loss[-2]
    run = train(TrainConfig(**{**SMALL.__dict__, "steps": 500, "acc_goal": 0.5}), progress=False)
    assert run.status == "converged" and run.train_acc[-1] >= 0.5


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("extra", [{}, {"sharpness_n": 150}, {"chunk_size": 64}])
def test_sharpness_record_matches_a_fresh_measurement(device, extra):
    """Fused (the step's own graph), on a subset and chunked: each agrees with a fresh dense-accuracy run."""
    base = {**SMALL.__dict__, "dtype": "float64", "device": device, **extra}
    run = train(TrainConfig(**{**base, "steps": 11, "sharpness_every": 10, "metrics": ("step_sharpness",)}),
                progress=False)
    assert run.sharpness_steps == [0, 10]
    config = TrainConfig(**{**base, "steps": 10})
    at10 = train(config, progress=False).model  # θ_10
    from eoslib.train import build

    _, data = build(config)
    m = extra.get("sharpness_n", 200)
    fresh = hessian.sharpness(at10, mse, data.inputs[:m], data.targets[:m], tol=1e-10)
    assert run.sharpness[1] == pytest.approx(fresh, rel=1e-3)  # the engine's 1e-3 tolerance
    full_batch_gradient(at10, mse, data.inputs, data.targets)
    from eoslib.train import _flat_grad

    g = _flat_grad(at10)
    step = hessian.directional_sharpness(at10, mse, data.inputs[:m], data.targets[:m], g)
    assert run.extras["step_sharpness"][1] == pytest.approx(step, rel=1e-9)


def test_sgd_records_full_batch_loss_and_batch_sharpness():
    config = TrainConfig(**{**SMALL.__dict__, "opt": "sgd", "batch_size": 20, "metrics": ("batch_sharpness",)})
    run = train(config, progress=False)
    assert len(run.extras["batch_sharpness"]) == len(run.sharpness) == 4
    assert run.train_loss == train(config, progress=False).train_loss  # minibatches are seeded


def test_cache_round_trip_is_exact_and_instant(tmp_path):
    first = train(SMALL, cache_dir=tmp_path, progress=False)
    second = train(SMALL, cache_dir=tmp_path, progress=False)
    assert second.to_dict() == first.to_dict()
    for p, q in zip(first.model.parameters(), second.model.parameters()):
        assert torch.equal(p, q)
    assert len(list(tmp_path.glob("*.json"))) == 1


def test_corrupted_cache_is_recomputed_not_used(tmp_path):
    first = train(SMALL, cache_dir=tmp_path, progress=False)
    (path,) = tmp_path.glob("*.json")
    doc = json.loads(path.read_text())
    doc["data"]["run"]["train_loss"][0] = 123.0  # a silent edit: valid JSON, wrong checksum
    path.write_text(json.dumps(doc))
    with pytest.warns(UserWarning, match="damaged"):
        again = train(SMALL, cache_dir=tmp_path, progress=False)
    assert again.train_loss == first.train_loss
    path.write_text(path.read_text()[:50])  # truncated file
    with pytest.warns(UserWarning, match="damaged"):
        assert train(SMALL, cache_dir=tmp_path, progress=False).train_loss == first.train_loss


def _interrupt_measurement(monkeypatch, call: int):
    """Make the ``call``-th sharpness measurement raise KeyboardInterrupt (Ctrl-C mid-run); return the real Lanczos."""
    real, calls = hessian.lanczos, {"n": 0}

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == call:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(hessian, "lanczos", interrupted)
    return real


def test_interrupted_run_resumes_from_its_checkpoint(tmp_path, monkeypatch):
    config = TrainConfig(**{**SMALL.__dict__, "steps": 60})
    reference = train(config, progress=False)
    real = _interrupt_measurement(monkeypatch, 5)  # at step 40
    with pytest.raises(KeyboardInterrupt):
        train(config, cache_dir=tmp_path, progress=False, checkpoint_every=20)
    (ckpt,) = tmp_path.glob("*.ckpt.pt")
    state = cache.load_tensors(ckpt)
    assert state["step"] == 40 and len(state["run"]["train_loss"]) == 40
    monkeypatch.setattr(hessian, "lanczos", real)
    resumed = train(config, cache_dir=tmp_path, progress=False, checkpoint_every=20)
    assert resumed.train_loss == reference.train_loss and resumed.sharpness == reference.sharpness
    assert not list(tmp_path.glob("*.ckpt.pt"))


def test_damaged_checkpoint_is_ignored(tmp_path):
    path = tmp_path / "x.pt"
    cache.save_tensors(path, {"a": torch.ones(3)})
    assert torch.equal(cache.load_tensors(path)["a"], torch.ones(3))
    raw = bytearray(path.read_bytes())
    raw[-5] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.warns(UserWarning, match="damaged checkpoint"):
        assert cache.load_tensors(path) is None
    assert (tmp_path / "x.pt.corrupt").exists()


def test_atomic_write_leaves_no_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "r.json"
    cache.save_json(target, {"ok": 1})

    def failing_replace(*args):
        raise OSError("disk full")

    monkeypatch.setattr(cache.os, "replace", failing_replace)
    with pytest.raises(OSError):
        cache.save_json(target, {"ok": 2})
    assert cache.load_json(target) == {"ok": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_run_json_round_trip():
    run = train(SMALL, progress=False)
    back = Run.from_dict(json.loads(json.dumps(run.to_dict())))
    assert back.config == run.config and back.train_loss == run.train_loss


def test_bad_configs_raise_value_errors():
    for bad in [dict(lr=0.0), dict(lr=float("nan")), dict(n=0), dict(opt="lbfgs"), dict(metrics=("foo",)),
                dict(batch_size=5000), dict(dtype="float16"), dict(opt="gd", metrics=("preconditioned_sharpness",))]:
        with pytest.raises(ValueError):
            TrainConfig(**bad)


def test_gd_reaches_the_edge_of_stability():
    """The book's central claim on the default offline data, as a unit test.

    fc-tanh (2×200), MSE, digits n = 500, GD with η = 0.4 (2/η = 5; the initial
    sharpness is ≈ 3.9). Measured when written: crossing at step 50, median
    sharpness·η/2 after crossing 1.06, loss falls 14× from crossing, hundreds of
    loss increases (the period-2 oscillation).
    """
    lr = 0.4
    run = train(TrainConfig(model="fc-tanh", dataset="digits", n=500, lr=lr, steps=1500, sharpness_every=10),
                progress=False)
    s, steps, loss = np.array(run.sharpness), np.array(run.sharpness_steps), np.array(run.train_loss)
    assert run.status == "max_steps"
    assert s[0] < 2 / lr and s.max() >= 2 / lr
    cross = steps[np.argmax(s >= 2 / lr)]
    ratio = np.median(s[steps >= cross]) * lr / 2
    assert 0.95 <= ratio <= 1.10, ratio
    assert loss[cross] / loss[-1] >= 10
    assert (np.diff(loss[cross:]) > 0).sum() >= 10


def test_step_sharpness_uses_the_trainable_parameters_only():
    """The gradient handed to the Hessian must live in the Hessian's space (trainable parameters)."""
    from eoslib.train import _flat_grad, build

    model, data = build(TrainConfig(**{**SMALL.__dict__, "dtype": "float64"}))
    model[1].weight.requires_grad_(False)  # freeze the first layer's weights
    full_batch_gradient(model, mse, data.inputs, data.targets)
    g = _flat_grad(model)
    assert g.shape == hessian.flat_params(model).shape
    curvature = hessian.directional_sharpness(model, mse, data.inputs, data.targets, g)
    assert 0 < curvature <= hessian.sharpness(model, mse, data.inputs, data.targets, tol=1e-8) * (1 + 1e-6)


def test_adam_preconditioned_sharpness_with_a_frozen_parameter(monkeypatch):
    """Adam's preconditioner is taken over the trainable parameters, the Hessian's space."""
    import eoslib.train as train_module

    real = train_module.build

    def frozen_first_layer(config, **kw):
        model, data = real(config, **kw)
        model[1].weight.requires_grad_(False)
        return model, data

    monkeypatch.setattr(train_module, "build", frozen_first_layer)
    run = train(TrainConfig(**{**SMALL.__dict__, "opt": "adam", "lr": 0.003, "steps": 21,
                               "metrics": ("preconditioned_sharpness",)}), progress=False)
    values = run.extras["preconditioned_sharpness"]
    assert np.isnan(values[0]) and all(np.isfinite(values[1:])) and min(values[1:]) > 0  # no step yet at t = 0


def test_accuracy_is_recorded_for_labelled_data_only():
    regression = train(TrainConfig(model="deep-linear", dataset="linear", n=30, depth=2, width=8, lr=0.01, steps=5,
                                   sharpness_every=0, data_options={"dim": 4}), progress=False)
    assert regression.train_acc == []  # a regression has no accuracy
    labelled = train(TrainConfig(**{**SMALL.__dict__, "steps": 5}), progress=False)
    assert len(labelled.train_acc) == 5 and all(0 <= a <= 1 for a in labelled.train_acc)
    text = train(TrainConfig(model="transformer", dataset="text", loss="ce", n=20, width=16, depth=1, lr=0.1, steps=3,
                             sharpness_every=0, data_options={"context": 8}), progress=False)
    assert len(text.train_acc) == 3  # next-token accuracy over every position


def test_sgd_and_momentum_resume_bit_identically(tmp_path, monkeypatch):
    for extra in [dict(opt="sgd", batch_size=20), dict(opt="heavy_ball", momentum=0.9)]:
        config = TrainConfig(**{**SMALL.__dict__, "steps": 50, **extra})
        reference = train(config, progress=False)
        real = _interrupt_measurement(monkeypatch, 4)  # at step 30
        with pytest.raises(KeyboardInterrupt):
            train(config, cache_dir=tmp_path, progress=False, checkpoint_every=20)
        monkeypatch.setattr(hessian, "lanczos", real)
        resumed = train(config, cache_dir=tmp_path, progress=False, checkpoint_every=20)
        assert resumed.train_loss == reference.train_loss and resumed.sharpness == reference.sharpness

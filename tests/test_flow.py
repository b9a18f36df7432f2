"""eoslib.flow: recorded GD paths, time alignment, and GD → gradient flow as η → 0."""

import math

import numpy as np
import pytest
import torch

from eoslib import flow, losses
from eoslib.data import load_dataset
from eoslib.models import make_model
from eoslib.train import TrainConfig

from device_params import DEVICES

CFG = dict(model="fc-tanh", dataset="digits", n=20, width=4, depth=1, steps=6, sharpness_every=2,
           dtype="float64")


@pytest.mark.parametrize("device", DEVICES)
def test_records_are_the_gd_iterates(device):
    """θ_t recorded at t = 0, 2, 4 equal a hand-written GD loop θ' = θ − η∇L (on the CPU, whatever the device)."""
    path = flow.record_path(TrainConfig(lr=0.3, device=device, **CFG))
    assert path.params.device.type == "cpu"
    data = load_dataset("digits", 20, dtype=torch.float64)
    model = make_model("fc-tanh", (64,), 10, width=4, depth=1, dtype=torch.float64)
    expected = []
    for t in range(6):
        if t % 2 == 0:
            expected.append(torch.cat([p.detach().reshape(-1) for p in model.parameters()]))
        loss = losses.mse(model(data.inputs), data.targets)
        grads = torch.autograd.grad(loss, list(model.parameters()))
        with torch.no_grad():
            for p, g in zip(model.parameters(), grads):
                p -= 0.3 * g
    assert path.steps.tolist() == [0, 2, 4]
    assert np.allclose(path.times, [0.0, 0.6, 1.2])
    assert torch.allclose(path.params, torch.stack(expected), atol=1e-12)
    assert len(path.sharpness) == 3 and np.all(path.sharpness > 0)


def test_cache_round_trip(tmp_path):
    cfg = TrainConfig(lr=0.3, **CFG)
    first = flow.record_path(cfg, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.path.pt"))) == 1
    again = flow.record_path(cfg, cache_dir=tmp_path)
    assert torch.equal(first.params, again.params)
    assert again.run.sharpness == first.run.sharpness


def test_distances_align_by_time_and_euler_is_first_order():
    """Paths are compared at equal τ = t·η; halving η halves the distance to the flow."""
    def path(lr, every):
        return flow.record_path(TrainConfig(lr=lr, **{**CFG, "steps": round(1.2 / lr) + 1,
                                                      "sharpness_every": every}))
    p1, p2, p4 = path(0.1, 4), path(0.05, 8), path(0.025, 16)  # records every τ = 0.4
    times, d12 = flow.distances(p1, p2)
    assert np.allclose(times, [0.0, 0.4, 0.8, 1.2])
    assert d12[0] == 0.0 and np.all(d12[1:] > 0)
    _, d24 = flow.distances(p2, p4)
    ratio = d12[-1] / d24[-1]  # Euler's global error is O(η)
    assert 1.6 < ratio < 2.4, ratio
    _, rel = flow.distances(p1, p2, relative=True)
    assert rel[0] == 0.0 and np.all(rel[1:] < 0.1)
    with pytest.raises(ValueError, match="share no recorded time"):
        flow.distances(p1, flow.Trajectory(p2.run, p2.steps + 1, p2.params))


def test_crossing_time():
    p = flow.record_path(TrainConfig(lr=0.3, **CFG))
    s = p.sharpness
    assert p.crossing_time(float(s[0])) == 0.0
    assert p.crossing_time(float(s.max()) + 1.0) is None


def test_record_path_needs_measurements():
    with pytest.raises(ValueError, match="sharpness_every"):
        flow.record_path(TrainConfig(lr=0.3, **{**CFG, "sharpness_every": 0}))

"""eoslib.sweep: any executor, the same results as sequential runs, failures recorded, killed workers survived."""

import concurrent.futures as cf
import os
import signal
import threading
import time

import pytest

from eoslib.sweep import Outcome, config_id, sweep
from eoslib.train import TrainConfig, cache_key


def _grid(steps=40, **kw):
    base = dict(model="fc-tanh", dataset="digits", n=60, width=16, steps=steps, sharpness_every=10, seed=0)
    return [TrainConfig(**{**base, "lr": lr, "seed": seed, **kw}) for lr in (0.05, 0.2) for seed in (0, 1)]


def _same(a: Outcome, b: Outcome):
    """Bit-identical runs: same status, losses, sharpness, accuracies (wall time aside)."""
    assert a.error is None and b.error is None, (a.error, b.error)
    assert a.run.status == b.run.status
    assert a.run.train_loss == b.run.train_loss
    assert a.run.sharpness_steps == b.run.sharpness_steps and a.run.sharpness == b.run.sharpness
    assert a.run.train_acc == b.run.train_acc


def test_process_pool_gives_the_sequential_results_and_records_failures(tmp_path):
    configs = _grid()
    # a config that fails when it runs (no CIFAR-10 in an empty data folder), between good ones
    broken = TrainConfig(model="fc-tanh", dataset="cifar10", n=10, steps=5)
    jobs = [configs[0], broken, *configs[1:], configs[0]]  # configs[0] twice: trained once
    seen = []
    sequential = sweep(jobs, workers=1, data_root=tmp_path / "no-data", on_result=seen.append)
    with cf.ProcessPoolExecutor(2) as pool:
        parallel = sweep(jobs, pool, data_root=tmp_path / "no-data")
    assert len(seen) == len(configs) + 1  # distinct configs only
    for s, p, c in zip(sequential, parallel, jobs):
        assert s.config == c == p.config
        if c is broken:
            assert s.status == p.status == "failed"
            assert "CIFAR-10 is not available" in s.error and "\n" not in s.error
        else:
            _same(s, p)
    assert sequential[0] is sequential[-1]


def test_default_executor_is_a_local_process_pool(tmp_path, monkeypatch):
    made = []
    real = cf.ProcessPoolExecutor

    class Recording(real):
        def __init__(self, *a, **kw):
            made.append(kw.get("max_workers"))
            super().__init__(*a, **kw)

    monkeypatch.setattr(cf, "ProcessPoolExecutor", Recording)
    configs = _grid(steps=5)[:2]
    outcomes = sweep(configs, workers=2, cache_dir=tmp_path)
    assert made == [2] and [o.status for o in outcomes] == ["max_steps"] * 2
    # results land in the cache under the config's key
    assert all((tmp_path / f"{cache_key(c, threads=1)}.json").exists() for c in configs)


def test_bad_arguments_are_value_errors():
    with pytest.raises(ValueError, match="TrainConfig"):
        sweep([{"lr": 0.1}])
    with pytest.raises(ValueError, match="workers"):
        sweep(_grid()[:1], workers=0)
    with pytest.raises(ValueError, match="submit"):
        sweep(_grid()[:1], executor=object())


def test_config_ids_differ_for_rates_equal_to_six_digits():
    a, b = TrainConfig(lr=0.1), TrainConfig(lr=0.1000001)
    assert f"{a.lr:g}" == f"{b.lr:g}" and config_id(a) != config_id(b)


# ---------------------------------------------------------------- Dask: a local cluster on loopback

@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed", reason="dask[distributed] is not installed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None, silence_logs=40) as c:
        yield c


def test_dask_sweep_survives_a_killed_worker(cluster, tmp_path):
    """Kill a worker process while its run is under way and checkpointed: Dask reruns the task,
    the rerun resumes from the checkpoint, and every result equals the sequential one."""
    import distributed

    configs = _grid(steps=150, width=32, n=100)
    sequential = sweep(configs, workers=1)
    cache = tmp_path / "cache"
    with distributed.Client(cluster) as client:
        pids = client.run(os.getpid)
        done: dict = {}
        thread = threading.Thread(target=lambda: done.update(out=sweep(
            configs, client, cache_dir=cache, checkpoint_every=10)))
        thread.start()
        killed = None
        while killed is None and thread.is_alive():
            busy = [addr for addr, keys in client.processing().items() if keys]
            if busy and len(list(cache.glob("*.ckpt.pt"))) >= len(busy):  # every running task has checkpointed
                killed = pids[busy[0]]
                os.kill(killed, signal.SIGKILL)
            time.sleep(0.02)
        thread.join(timeout=600)
        assert killed is not None, "no run was caught between a checkpoint and its end"
        assert not thread.is_alive()
        assert killed not in client.run(os.getpid).values()  # that process is gone (the nanny restarted one)
    parallel = done["out"]
    for s, p in zip(sequential, parallel):
        _same(s, p)
    assert all((cache / f"{cache_key(c, threads=1)}.json").exists() for c in configs)
    assert not list(cache.glob("*.ckpt.pt"))  # every run finished


def test_cli_sweep_on_a_dask_cluster(cluster, tmp_path, capsys):
    from eoslib.cli import main

    code = main(["sweep", "--lrs", "0.05,0.2", "--seeds", "0,1", "--n", "40", "--width", "8", "--steps", "10",
                 "--quiet", "--dask", cluster.scheduler_address, "--out-dir", str(tmp_path)])
    assert code == 0, capsys.readouterr().err
    assert len(list(tmp_path.glob("lr*-seed*-*.json"))) == 4

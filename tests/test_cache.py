"""The cache serves only what was asked, survives damaged files, races and read-only folders.

Every test damages real files on disk (or races real processes / threads on them) and
checks that the run still comes back right: recomputed with a warning, never a
traceback, never another run's result. ``FAULTS`` counts them for the summary line.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import pytest
import torch

from eoslib import cache
from eoslib.train import TrainConfig, train

SMALL = TrainConfig(model="fc-tanh", dataset="digits", n=100, width=16, lr=0.1, steps=20, sharpness_every=10)
ROOT = Path(__file__).resolve().parents[1]


def _files(folder: Path) -> dict[str, Path]:
    return {p.name.split(".", 1)[1]: p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")}


def _run(folder, config=SMALL, **kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = train(config, cache_dir=folder, progress=False, **kw)
    return run, [str(w.message) for w in caught]


def test_an_entry_copied_under_another_key_is_not_served(tmp_path):
    """Ask for lr 0.3 / 30 steps with lr 0.1 / 20 steps' files under its key: recomputed, not served."""
    first, _ = _run(tmp_path)
    other = TrainConfig(**{**SMALL.__dict__, "lr": 0.3, "steps": 30})
    want = train(other, progress=False)
    probe = tmp_path / "probe"
    _run(probe, other)  # learn the other config's file names, then replace them by the first run's
    for suffix, path in _files(probe).items():
        (probe / path.name).write_bytes(_files(tmp_path)[suffix].read_bytes())
    got, messages = _run(probe, other)
    assert got.train_loss == want.train_loss and got.config == other
    assert any("another configuration" in m for m in messages)


def test_valid_digest_wrong_structure_checkpoint_and_weights(tmp_path):
    reference = train(TrainConfig(**{**SMALL.__dict__, "steps": 30}), progress=False)
    config = TrainConfig(**{**SMALL.__dict__, "steps": 30})
    _run(tmp_path, config)
    files = _files(tmp_path)
    meta = {k: v for k, v in json.loads(files["json"].read_text())["data"].items() if k != "run"}
    # weights with a valid digest but a tensor of the wrong shape
    cache.save_tensors(files["model.pt"], {**meta, "model": {"0.weight": torch.zeros(3)}})
    run, messages = _run(tmp_path, config)
    assert run.train_loss == reference.train_loss and any("unusable cache entry" in m for m in messages)
    # a checkpoint with a valid digest: missing keys, then a model of another width
    ckpt = files["json"].with_name(files["json"].name.replace(".json", ".ckpt.pt"))
    files["json"].unlink()
    for bad in [{**meta, "step": 10}, {**meta, "step": 10, "run": {"config": meta["config"]}, "v0": None,
                                       "elapsed": 0.0, "model": {"0.weight": torch.zeros(2, 2)}}]:
        cache.save_tensors(ckpt, bad)
        run, messages = _run(tmp_path, config)
        assert run.train_loss == reference.train_loss, bad.keys()
        assert any("unusable checkpoint" in m for m in messages)
        files["json"].unlink()


def test_malicious_pickle_with_a_valid_digest_is_refused(tmp_path):
    import io
    import pickle

    class Exploit:
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    payload = io.BytesIO()
    pickle.dump({"model": Exploit()}, payload)
    raw = payload.getvalue()
    path = tmp_path / "evil.pt"
    path.write_bytes(__import__("hashlib").sha256(raw).hexdigest().encode() + b"\n" + raw)
    with pytest.warns(UserWarning, match="unreadable checkpoint"):
        assert cache.load_tensors(path) is None
    assert not (tmp_path / "pwned").exists()


_RACE_SCRIPT = """
import sys, time, warnings
from pathlib import Path
from eoslib import cache
go = Path(sys.argv[2])
while not go.exists():
    time.sleep(0.001)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    print(repr(cache.load_json(sys.argv[1])))
"""


def test_processes_racing_on_one_damaged_file_all_treat_it_as_missing(tmp_path):
    """6 processes read one damaged record at the same moment: one moves it aside, every one returns None."""
    path, go = tmp_path / "r.json", tmp_path / "go"
    path.write_text('{"sha256": "0", "data": {"a": 1}}')
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", _RACE_SCRIPT, str(path), str(go)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) for _ in range(6)]
    __import__("time").sleep(1.0)
    go.touch()  # release them together
    results = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0] * 6, [err[-500:] for _, err in results]
    assert [out.strip() for out, _ in results] == ["None"] * 6
    assert not path.exists() and (tmp_path / "r.json.corrupt").exists()


def test_threads_racing_on_damaged_files(tmp_path):
    """The thread stress test of the issue: 40 threads × 30 reads of files damaged again and again."""
    paths = [tmp_path / f"{i}.json" for i in range(3)]
    errors: list[str] = []

    def worker(k):
        for j in range(30):
            p = paths[(k + j) % 3]
            try:
                p.write_text("{broken")
            except OSError:
                pass
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    if cache.load_json(p) is not None:
                        errors.append("served a damaged file")
            except Exception as err:  # noqa: BLE001
                errors.append(f"{type(err).__name__}: {err}")

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]


def test_read_only_cache_serves_and_recomputes_without_writing(tmp_path, monkeypatch):
    first, _ = _run(tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Read-only file system")

    monkeypatch.setattr(cache, "atomic_write", refuse)  # root ignores chmod: make every write fail instead
    monkeypatch.setattr(Path, "replace", lambda self, target: refuse())
    served, messages = _run(tmp_path)
    assert served.train_loss == first.train_loss and not messages
    other = TrainConfig(**{**SMALL.__dict__, "seed": 5})
    computed, messages = _run(tmp_path, other, checkpoint_every=5)
    assert computed.train_loss == train(other, progress=False).train_loss
    assert sum("not writable" in m for m in messages) == 1  # said once, not at every checkpoint
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    (tmp_path / next(iter(before))).write_text("{broken")  # damaged and cannot be moved aside: still recomputed
    again, messages = _run(tmp_path)
    assert again.train_loss == first.train_loss


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads and writes whatever the permissions")
def test_read_only_folder_for_real(tmp_path):
    first, _ = _run(tmp_path)
    tmp_path.chmod(0o555)
    try:
        served, _ = _run(tmp_path)
        other, messages = _run(tmp_path, TrainConfig(**{**SMALL.__dict__, "seed": 5}))
    finally:
        tmp_path.chmod(0o755)
    assert served.train_loss == first.train_loss and any("not writable" in m for m in messages)


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_files_follow_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        cache.save_json(tmp_path / "a.json", {"x": 1})
        cache.save_tensors(tmp_path / "b.pt", {"x": torch.ones(1)})
    finally:
        os.umask(old)
    for name in ("a.json", "b.pt"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode


def test_a_long_file_name_is_written(tmp_path):
    name = "r" * (255 - 5) + ".json"  # the longest legal name: the temporary name beside it would be too long
    cache.save_json(tmp_path / name, {"ok": 1})
    assert cache.load_json(tmp_path / name) == {"ok": 1} and len(list(tmp_path.iterdir())) == 1


_THREADS_SCRIPT = """
import sys, torch
torch.set_num_threads(int(sys.argv[2]))
from eoslib.train import TrainConfig, train
c = TrainConfig(model="fc-tanh", dataset="digits", n=200, width=64, lr=0.4, steps=25, sharpness_every=0)
r = train(c, cache_dir=sys.argv[1], progress=False)
print(repr(r.train_loss))
"""


def test_thread_count_is_part_of_the_key(tmp_path):
    """Runs with 1 and 2 CPU threads are stored apart: neither is served for the other."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_WAIT_POLICY": "PASSIVE"}
    out = {}
    for threads in ("1", "2", "1"):
        proc = subprocess.run([sys.executable, "-c", _THREADS_SCRIPT, str(tmp_path), threads], capture_output=True,
                              text=True, env=env, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        out.setdefault(threads, []).append(proc.stdout)
    assert len(list(tmp_path.glob("*.json"))) == 2
    assert out["1"][0] == out["1"][1]  # served from the cache


_KILL_SCRIPT = """
import sys, torch
torch.set_num_threads(1)
from eoslib.train import TrainConfig, train
c = TrainConfig(model="fc-tanh", dataset="digits", n=100, width=16, lr=0.2, steps=300, sharpness_every=10,
                opt=sys.argv[2], momentum=float(sys.argv[3]))
r = train(c, cache_dir=sys.argv[1], progress=False, checkpoint_every=20)
print(repr((r.train_loss, r.sharpness)))
"""


@pytest.mark.parametrize("opt,momentum", [("heavy_ball", 0.9)])
def test_kill_9_then_resume_is_bit_identical(tmp_path, opt, momentum):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_WAIT_POLICY": "PASSIVE"}
    args = [sys.executable, "-c", _KILL_SCRIPT, str(tmp_path / "a"), opt, str(momentum)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    deadline = __import__("time").time() + 240
    while not list((tmp_path / "a").glob("*.ckpt.pt")) and proc.poll() is None \
            and __import__("time").time() < deadline:
        __import__("time").sleep(0.05)
    proc.kill()  # SIGKILL: no cleanup runs
    proc.wait()
    assert proc.returncode == -9 and list((tmp_path / "a").glob("*.ckpt.pt"))  # killed mid-run, after a checkpoint
    resumed = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)
    fresh = subprocess.run([*args[:3], str(tmp_path / "b"), *args[4:]], capture_output=True, text=True, env=env,
                           timeout=300)
    assert resumed.returncode == 0 == fresh.returncode, resumed.stderr[-2000:]
    assert resumed.stdout == fresh.stdout


FAULTS = [test_an_entry_copied_under_another_key_is_not_served, test_valid_digest_wrong_structure_checkpoint_and_weights,
          test_malicious_pickle_with_a_valid_digest_is_refused,
          test_processes_racing_on_one_damaged_file_all_treat_it_as_missing, test_threads_racing_on_damaged_files,
          test_read_only_cache_serves_and_recomputes_without_writing, test_files_follow_the_umask,
          test_a_long_file_name_is_written, test_thread_count_is_part_of_the_key, test_kill_9_then_resume_is_bit_identical]

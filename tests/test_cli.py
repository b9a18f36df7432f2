"""python -m eoslib: the JSON record, one-line errors, documented options."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from eoslib.cli import main, parser

ROOT = Path(__file__).resolve().parents[1]


def _cli(*args, cwd):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "EOSLIB_CACHE": str(cwd / "cache")}
    return subprocess.run([sys.executable, "-m", "eoslib", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def test_run_writes_the_documented_json(tmp_path):
    out = tmp_path / "run.json"
    r = _cli("run", "--model", "fc-tanh", "--dataset", "synthetic", "--n", "100", "--loss", "mse", "--opt", "gd",
             "--lr", "0.05", "--steps", "30", "--sharpness-every", "10", "--seed", "0", "--width", "16", "--quiet",
             "--out", str(out), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    doc = json.loads(out.read_text())
    assert doc["status"] in ("converged", "diverged", "max_steps")
    assert len(doc["train_loss"]) == 30 and all(isinstance(v, float) for v in doc["train_loss"])
    assert doc["sharpness_steps"] == [0, 10, 20] and len(doc["sharpness"]) == 3
    assert doc["threshold"] == pytest.approx(2 / 0.05)
    assert doc["config"]["lr"] == 0.05 and doc["config"]["dataset"] == "synthetic" and doc["config"]["width"] == 16
    assert doc["wall_seconds"] > 0


def test_sweep_writes_one_record_per_rate_and_a_table(tmp_path, capsys):
    code = main(["sweep", "--lrs", "0.05,0.1", "--dataset", "synthetic", "--n", "50", "--width", "8", "--steps", "5",
                 "--sharpness-every", "0", "--quiet", "--out-dir", str(tmp_path)])
    assert code == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len(names) == 3 and names[0].startswith("lr0.05-seed0-") and names[1].startswith("lr0.1-seed0-")
    assert names[2] == "summary.json"
    assert "max_steps" in capsys.readouterr().out


@pytest.mark.parametrize("args,fragment", [
    (["run", "--lr", "0", "--out", "x.json"], "must be a positive finite number"),
    (["run", "--lr", "-0.1", "--out", "x.json"], "must be a positive finite number"),
    (["run", "--lr", "abc", "--out", "x.json"], "is not a plain decimal number"),
    (["run", "--lr", "0.1", "--model", "resnet", "--out", "x.json"], "invalid choice"),
    (["run", "--lr", "0.1", "--dataset", "mnist", "--out", "x.json"], "invalid choice"),
    (["run", "--lr", "0.1", "--n", "99999", "--out", "x.json"], "outside 1..1500"),
    (["run", "--lr", "0.1", "--n", "1.5", "--out", "x.json"], "not a plain integer"),
    (["run", "--lr", "0.1", "--momentum", "1.2", "--out", "x.json"], "[0, 1)"),
    (["run", "--lr", "0.1", "--metrics", "foo", "--out", "x.json"], "unknown metrics"),
    (["sweep", "--lrs", "0.1,x", "--out-dir", "d"], "is not a plain decimal number"),
])
def test_bad_input_is_one_line_without_traceback(tmp_path, monkeypatch, capsys, args, fragment):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EOSLIB_CACHE", str(tmp_path / "cache"))
    try:
        code = main(args)
    except SystemExit as stop:  # argparse's own errors
        code = stop.code
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("eoslib: error:"), err
    assert fragment in err
    assert not (tmp_path / "x.json").exists()


def test_errors_end_to_end_have_no_traceback(tmp_path):
    for args in (["run", "--lr", "0", "--out", "x.json"], ["run", "--lr", "0.1", "--n", "99999", "--out", "x.json"]):
        r = _cli(*args, cwd=tmp_path)
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr


def test_every_option_is_documented():
    for command, sub in parser()._subparsers._group_actions[0].choices.items():
        for action in sub._actions:
            if action.option_strings and action.dest != "help":
                assert action.help and len(action.help) > 5, (command, action.dest)


def test_a_sweep_records_a_failed_run_and_finishes_the_others(tmp_path, monkeypatch, capsys):
    import eoslib.sweep

    real = eoslib.sweep.run_task

    def flaky(config, *args):
        if config["lr"] == 0.2:
            raise MemoryError("simulated: out of memory")
        return real(config, *args)

    monkeypatch.setattr(eoslib.sweep, "run_task", flaky)
    code = main(["sweep", "--lrs", "0.1,0.2,0.4", "--dataset", "synthetic", "--n", "30", "--width", "8", "--steps", "5",
                 "--sharpness-every", "0", "--quiet", "--workers", "1", "--out-dir", str(tmp_path)])
    captured = capsys.readouterr()
    assert code == 1 and "1 of 3 runs failed" in captured.err
    rows = json.loads((tmp_path / "summary.json").read_text())
    assert [r["status"] for r in rows] == ["max_steps", "failed", "max_steps"]
    assert rows[1]["error"] == "MemoryError: simulated: out of memory" and rows[1]["file"] is None
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([rows[0]["file"], rows[2]["file"], "summary.json"])
    assert "simulated" in captured.out  # the table lists the failure

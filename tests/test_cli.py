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
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lr0.05.json", "lr0.1.json", "summary.json"]
    assert "max_steps" in capsys.readouterr().out


@pytest.mark.parametrize("args,fragment", [
    (["run", "--lr", "0", "--out", "x.json"], "must be a positive number"),
    (["run", "--lr", "-0.1", "--out", "x.json"], "must be a positive number"),
    (["run", "--lr", "abc", "--out", "x.json"], "is not a number"),
    (["run", "--lr", "0.1", "--model", "resnet", "--out", "x.json"], "invalid choice"),
    (["run", "--lr", "0.1", "--dataset", "mnist", "--out", "x.json"], "invalid choice"),
    (["run", "--lr", "0.1", "--n", "99999", "--out", "x.json"], "outside 1..1500"),
    (["run", "--lr", "0.1", "--n", "1.5", "--out", "x.json"], "not an integer"),
    (["run", "--lr", "0.1", "--momentum", "1.2", "--out", "x.json"], "[0, 1)"),
    (["run", "--lr", "0.1", "--metrics", "foo", "--out", "x.json"], "unknown metrics"),
    (["sweep", "--lrs", "0.1,x", "--out-dir", "d"], "is not a number"),
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

"""python -m eoslib as a hostile user drives it: every bad input gets one line, exit 2, and leaves nothing.

Each case runs in a process of its own, as a reader's shell would start it:
``python -m eoslib ARGS`` in a fresh folder holding a file ``afile``, a folder
``adir`` and nothing else. To keep the module fast, one driver process imports
eoslib once and forks a child per case (the child runs ``eoslib/__main__.py``
exactly as ``python -m eoslib`` does, and an uncaught exception prints a
traceback and exits 1, as the interpreter would); a few cases also run through
a real ``python -m eoslib`` (:func:`test_entry_point_end_to_end`). A case is
*handled* when the exit status is 2, stderr is exactly one line starting
``eoslib: error:`` (no traceback), stdout is empty, the message names what is
wrong, and no file was created, changed or removed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ROOT_USER = hasattr(os, "geteuid") and os.geteuid() == 0  # root writes into read-only folders
HUGE = str(2 ** 70)
LONG = "a" * 256  # one byte over the usual NAME_MAX

# (id, argv, extra environment, fragment the message must contain)
R = ["run", "--n", "20", "--steps", "2", "--width", "8", "--quiet"]  # a tiny valid run, before the bad part
S = ["sweep", "--n", "20", "--steps", "2", "--width", "8", "--quiet", "--workers", "1"]
OUT = ["--out", "o.json"]
CASES: list[tuple[str, list[str], dict, str]] = []


def case(name, argv, fragment, **env):
    assert name not in [c[0] for c in CASES], name
    CASES.append((name, argv, env, fragment))


# --- numbers parse strictly
for text, frag in [("0", "positive finite"), ("-0.1", "positive finite"), ("abc", "not a plain decimal"),
                   ("0_05", "not a plain decimal"), ("٠.٠٥", "not a plain decimal"), ("０.０５", "not a plain decimal"),
                   ("nan", "not a plain decimal"), ("inf", "not a plain decimal"), ("-inf", "not a plain decimal"),
                   ("1e400", "positive finite"), ("", "not a plain decimal"), (" ", "not a plain decimal"),
                   ("0x10", "not a plain decimal"), ("1/2", "not a plain decimal"), ("5%", "not a plain decimal"),
                   ("1,5", "not a plain decimal"), ("1e", "not a plain decimal"), (".", "not a plain decimal"),
                   ("e5", "not a plain decimal"), ("0.05 0.1", "not a plain decimal"), ("²", "not a plain decimal"),
                   ("𝟎.𝟓", "not a plain decimal"), ("0.05\n", "not a plain decimal"),
                   ("-1e-3", "positive finite"), ("-.5", "positive finite")]:
    case(f"lr={text!r}", [*R, "--lr", text, *OUT], frag)
for option, text, frag in [
        ("--n", "1.5", "not a plain integer"), ("--n", "0", "1..9223372036854775807"), ("--n", "-3", "must lie in"),
        ("--n", "1e3", "not a plain integer"), ("--n", "10_000", "not a plain integer"),
        ("--n", "１０", "not a plain integer"),
        ("--n", HUGE, "must lie in 1..9223372036854775807"), ("--n", "", "not a plain integer"),
        ("--steps", "0", "must lie in"), ("--steps", "2.5", "not a plain integer"),
        ("--steps", "٣", "not a plain integer"),
        ("--sharpness-every", "-1", "must lie in 0.."), ("--sharpness-every", "1.5", "not a plain integer"),
        ("--seed", "-1", "must lie in 0..9223372036854775807"), ("--seed", str(2 ** 63), "must lie in 0.."),
        ("--seed", HUGE, "must lie in 0.."), ("--seed", "2**70", "not a plain integer"),
        ("--seed", "1e3", "not a plain"), ("--width", "0", "must lie in 1.."), ("--depth", "-1", "must lie in 0.."),
        ("--batch-size", "0", "must lie in 1.."),
        ("--chunk-size", "0", "must lie in 1.."), ("--momentum", "1", "[0, 1)"), ("--momentum", "1.2", "[0, 1)"),
        ("--momentum", "-0.1", "[0, 1)"), ("--momentum", "nan", "not a plain decimal"), ("--beta1", "1", "[0, 1)"),
        ("--beta2", "1.5", "[0, 1)"), ("--loss-goal", "0", "positive finite"), ("--loss-goal", "-1", "positive finite"),
        ("--acc-goal", "0", "(0, 1]"), ("--acc-goal", "2", "(0, 1]"), ("--acc-goal", "1.0000001", "(0, 1]"),
        ("--acc-goal", "-0.5", "(0, 1]"), ("--acc-goal", "nan", "not a plain decimal")]:
    case(f"{option}={text!r}", [*R, option, text, "--lr", "0.1", *OUT], frag)
for text, frag in [("0.1,x", "not a plain decimal"), ("", "lists no values"), (",", "lists no values"),
                   ("0.1,0.1", "twice"), ("0.1,1e-1", "twice"), ("0.1,-1", "positive finite"), ("0.1,0_2", "not a plain"),
                   ("0.1;0.2", "not a plain decimal")]:
    case(f"lrs={text!r}", [*S, "--lrs", text, "--out-dir", "d"], frag)
for option, text, frag in [("--seeds", "0,-1", "must lie in 0.."), ("--seeds", "0,0", "twice"),
                           ("--seeds", "a", "not a plain integer"), ("--seeds", "0,1.5", "not a plain integer"),
                           ("--workers", "0", "1..1024"), ("--workers", "1.5", "not a plain integer"),
                           ("--workers", "5000", "1..1024")]:
    case(f"{option}={text!r}", [*S, "--lrs", "0.1", option, text, "--out-dir", "d"], frag)
case("seed and seeds", [*S, "--lrs", "0.1", "--seed", "1", "--seeds", "0,1", "--out-dir", "d"], "--seed or --seeds")

# --- names and the command line's shape
for option, value in [("--model", "resnet"), ("--model", "ＦＣ-tanh"), ("--dataset", "mnist"), ("--loss", "hinge"),
                      ("--opt", "rmsprop"), ("--dtype", "float16"), ("--device", "tpu")]:
    case(f"{option}={value}", [*R, option, value, "--lr", "0.1", *OUT], "invalid choice")
case("no command", [], "required")
case("unknown command", ["train"], "invalid choice")
case("unknown option", [*R, "--lr", "0.1", "--epochs", "3", *OUT], "unrecognized arguments")
case("abbreviated option", [*R, "--l", "0.1", *OUT], "required: --lr")
case("missing --lr", [*R, *OUT], "--lr")
case("missing --out", [*R, "--lr", "0.1"], "--out")
case("extra positional", [*R, "--lr", "0.1", *OUT, "extra"], "unrecognized arguments")
case("missing --out-dir", [*S, "--lrs", "0.1"], "--out-dir")

# --- configurations that cannot run: refused before training (or failing at once), in one line
case("n over the digits split", [*R, "--n", "99999", "--lr", "0.1", *OUT], "outside 1..1500")
case("n = 10^12 digits", [*R, "--n", "1000000000000", "--lr", "0.1", *OUT], "outside 1..1500")
case("n = 10^12 synthetic", [*R, "--dataset", "synthetic", "--n", "1000000000000", "--lr", "0.1", *OUT], "")
case("width 10^7", [*R, "--width", "10000000", "--lr", "0.1", *OUT], "")
case("batch larger than n", [*R, "--batch-size", "50", "--lr", "0.1", *OUT], "batch_size")
case("heavy ball without momentum", [*R, "--opt", "heavy_ball", "--lr", "0.1", *OUT], "momentum")
case("unknown metric", [*R, "--metrics", "foo", "--lr", "0.1", *OUT], "unknown metrics")
case("adam metric with gd", [*R, "--metrics", "preconditioned_sharpness", "--lr", "0.1", *OUT], "adam")
case("regression with ce", [*R, "--dataset", "linear", "--loss", "ce", "--lr", "0.1", *OUT], "regression")
case("cnn on vectors", [*R, "--model", "cnn-relu", "--dataset", "synthetic", "--lr", "0.1", *OUT], "")
case("transformer on digits", [*R, "--model", "transformer", "--lr", "0.1", *OUT], "")
case("fc on text", [*R, "--dataset", "text", "--lr", "0.1", *OUT], "")
case("scalar on digits", [*R, "--model", "scalar", "--lr", "0.1", *OUT], "")
case("cifar10 not downloaded", [*R, "--dataset", "cifar10", "--lr", "0.1", *OUT], "CIFAR-10")
case("sweep: transformer on digits", [*S, "--model", "transformer", "--lrs", "0.1", "--out-dir", "d"], "")
case("sweep: scalar on digits", [*S, "--model", "scalar", "--lrs", "0.1,0.2", "--out-dir", "d"], "")
case("sweep: cifar10 not downloaded", [*S, "--dataset", "cifar10", "--lrs", "0.1", "--out-dir", "d"], "CIFAR-10")
try:
    import torch

    NO_GPU = not torch.cuda.is_available()
except ImportError:  # pragma: no cover
    NO_GPU = True
if NO_GPU:
    case("--device cuda without a GPU", [*R, "--device", "cuda", "--lr", "0.1", *OUT], "")
    case("sweep --device cuda without a GPU", [*S, "--device", "cuda", "--lrs", "0.1", "--out-dir", "d"], "")
    case("EOSLIB_DEVICE=cuda without a GPU", [*R, "--lr", "0.1", *OUT], "EOSLIB_DEVICE", EOSLIB_DEVICE="cuda")

# --- where results go: checked before any work
for text, frag in [("", "--out is empty"), (" ", "--out is empty"), (".", "is a folder"), ("..", "is a folder"),
                   ("adir", "is a folder"), ("adir/", "is a folder"), ("new/", "is a folder"),
                   ("afile/o.json", "is a file, not a folder"), ("afile/x/o.json", "is a file, not a folder"),
                   ("/sys/eoslib-o.json", "cannot create files"), ("/sys/eoslib-new/o.json", "cannot create files"),
                   (LONG, "allows 255"), (f"{LONG}/o.json", "too long")]:
    label = text if len(text) < 40 else f"<{len(text)} characters>"
    case(f"--out {label!r}", [*R, "--lr", "0.1", "--out", text], frag)
for text, frag in [("", "--out-dir is empty"), ("afile", "is a file, not a folder"),
                   ("afile/d", "is a file, not a folder"), ("/sys/eoslib-d", "cannot create files"),
                   (LONG, "too long")]:
    label = text if len(text) < 40 else f"<{len(text)} characters>"
    case(f"--out-dir {label!r}", [*S, "--lrs", "0.1", "--out-dir", text], frag)
for text, frag in [("afile", "is a file"), ("afile/cache", "is a file, not a folder"),
                   ("/sys/eoslib-cache", "cannot create files")]:
    case(f"EOSLIB_CACHE={text!r} --cache", [*R, "--cache", "--lr", "0.1", *OUT], frag, EOSLIB_CACHE=text)
    case(f"EOSLIB_CACHE={text!r} sweep --cache", [*S, "--cache", "--lrs", "0.1", "--out-dir", "d"], frag,
         EOSLIB_CACHE=text)
if not ROOT_USER:
    case("--out in a read-only folder", [*R, "--lr", "0.1", "--out", "ro/o.json"], "cannot create files")
    case("--out-dir in a read-only folder", [*S, "--lrs", "0.1", "--out-dir", "ro/d"], "cannot create files")

# --- the environment
for var, value in [("EOSLIB_THREADS", "abc"), ("EOSLIB_THREADS", "0"), ("EOSLIB_THREADS", "٣"),
                   ("EOSLIB_SEED", "-1"), ("EOSLIB_DATASET", "mnist"), ("EOSLIB_DEVICE", "tpu"), ("EOSLIB_SCALE", "huge"),
                   ("EOSLIB_DATA", "afile")]:
    case(f"{var}={value!r}", [*R, "--lr", "0.1", *OUT], var, **{var: value})

# --- a cluster that is not there
case("--dask empty", [*S, "--lrs", "0.1", "--dask", "", "--out-dir", "d"], "--dask is empty")
case("--dask not an address", [*S, "--lrs", "0.1", "--dask", "not an address", "--out-dir", "d"], "Dask scheduler")
case("--dask unreachable", [*S, "--lrs", "0.1", "--dask", "tcp://127.0.0.1:9", "--out-dir", "d"], "Dask scheduler")


DRIVER = r"""
import json, os, runpy, sys, time, traceback
cases = json.load(sys.stdin)
import eoslib.cli  # imported once; each case runs in a child forked from this clean process
results = []
for c in cases:
    sys.stdout.flush(); sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.chdir(c["cwd"])
            os.environ.clear(); os.environ.update(c["env"])
            for fd, name in ((1, "stdout"), (2, "stderr")):
                os.dup2(os.open(c[name], os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
            sys.argv = ["python -m eoslib", *c["argv"]]
            try:
                runpy.run_module("eoslib", run_name="__main__", alter_sys=True)
                code = 0
            except SystemExit as stop:  # as the interpreter treats it
                code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
                if not isinstance(stop.code, (int, type(None))):
                    print(stop.code, file=sys.stderr)
            except BaseException:
                traceback.print_exc()
                code = 1
        finally:
            sys.stdout.flush(); sys.stderr.flush()
            os._exit(code)
    start = time.monotonic()
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() - start > c["timeout"]:
            os.kill(pid, 9); os.waitpid(pid, 0); status = 124 << 8
            break
        time.sleep(0.01)
    results.append(os.waitstatus_to_exitcode(status))
print(json.dumps(results))
"""


def _tree(folder: Path) -> dict[str, float]:
    """Every path under ``folder`` with its modification time (a created, changed or removed file shows)."""
    return {str(p.relative_to(folder)): p.lstat().st_mtime_ns for p in sorted(folder.rglob("*"))}


def _prepare(folder: Path) -> None:
    folder.mkdir(parents=True)
    (folder / "afile").write_text("not a folder\n")
    (folder / "adir").mkdir()
    (folder / "ro").mkdir()
    (folder / "ro").chmod(0o500)


def _env(folder: Path, extra: dict) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EOSLIB_")}
    env.update(PYTHONPATH=str(ROOT), HOME=str(folder / "home"), EOSLIB_CACHE=str(folder / "cache"),
               EOSLIB_DATA=str(folder / "data"), EOSLIB_THREADS="1", EOSLIB_DEVICE="cpu")
    env.update(extra)
    return env


def _outside() -> dict[str, bool]:
    """The paths outside the case folders that a case might create."""
    return {p: os.path.lexists(p) for p in ("/sys/eoslib-o.json", "/sys/eoslib-new", "/sys/eoslib-d",
                                            "/sys/eoslib-cache")}


def _run_cases(base: Path) -> dict:
    """Run every case; {case id: (exit status, stdout, stderr, files before, files after)}."""
    jobs, before = [], {}
    for i, (name, argv, env, _) in enumerate(CASES):
        folder = base / f"case{i:03d}"
        _prepare(folder)
        before[name] = _tree(folder)
        jobs.append({"cwd": str(folder), "argv": argv, "env": _env(folder, env), "timeout": 120,
                     "stdout": str(base / f"case{i:03d}.out"), "stderr": str(base / f"case{i:03d}.err")})
    outside = _outside()
    if hasattr(os, "fork"):
        done = subprocess.run([sys.executable, "-c", DRIVER], input=json.dumps(jobs), capture_output=True,
                              text=True, env=_env(base, {}), timeout=3600)
        assert done.returncode == 0, done.stderr
        codes = json.loads(done.stdout.splitlines()[-1])
    else:  # pragma: no cover - no fork (Windows): one interpreter per case
        codes = []
        for job in jobs:
            with open(job["stdout"], "w") as out, open(job["stderr"], "w") as err:
                codes.append(subprocess.run([sys.executable, "-m", "eoslib", *job["argv"]], cwd=job["cwd"],
                                            env=job["env"], stdout=out, stderr=err, timeout=300).returncode)
    assert _outside() == outside, "a case created files outside its folder"
    result = {}
    for (name, *_), job, code in zip(CASES, jobs, codes):
        folder = Path(job["cwd"])
        (folder / "ro").chmod(0o700)
        result[name] = (code, Path(job["stdout"]).read_text(errors="replace"),
                        Path(job["stderr"]).read_text(errors="replace"), before[name], _tree(folder))
    return result


def _problems(outcome, fragment) -> list[str]:
    code, out, err, before, after = outcome
    problems = []
    if code != 2:
        problems.append(f"exit status {code}")
    if "Traceback" in err:
        problems.append("traceback")
    if err.count("\n") != 1 or not err.endswith("\n") or not err.startswith("eoslib: error: "):
        problems.append(f"stderr is not one 'eoslib: error:' line: {err[-300:]!r}")
    elif fragment not in err:
        problems.append(f"message lacks {fragment!r}: {err.strip()!r}")
    if out:
        problems.append(f"stdout not empty: {out[:100]!r}")
    if after != before:
        problems.append(f"files changed: {sorted(set(after) ^ set(before))}")
    return problems


def test_every_bad_input_is_one_line_exit_2_and_leaves_nothing(tmp_path, record_property):
    """All cases in one test, so that pytest-xdist runs them once."""
    outcomes = _run_cases(tmp_path)
    failures = {name: problems for name, _, _, fragment in CASES
                if (problems := _problems(outcomes[name], fragment))}
    record_property("summary", f"bad CLI inputs handled: {len(CASES) - len(failures)}/{len(CASES)}")
    assert len(CASES) >= 91  # at least as many as the probe that set the baseline (81 of 91 handled)
    assert not failures, "\n".join(f"{name}: {'; '.join(p)}" for name, p in failures.items())


# ---------------------------------------------------------------- the entry point itself, and legal edge cases

def _cli(*args, cwd, **env):
    return subprocess.run([sys.executable, "-m", "eoslib", *args], cwd=cwd, env=_env(cwd, env),
                          capture_output=True, text=True, timeout=300)


def _main(args, cwd, monkeypatch, capsys, **env):
    """``main(args)`` in this process, in folder ``cwd``, with the test environment: (status, stdout, stderr)."""
    from eoslib.cli import main

    monkeypatch.chdir(cwd)
    for key in [k for k in os.environ if k.startswith("EOSLIB_")]:
        monkeypatch.delenv(key)
    for key, value in _env(cwd, env).items():
        if key.startswith("EOSLIB_") or key == "HOME":
            monkeypatch.setenv(key, value)
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def _strict(text: str):
    """Parse JSON, refusing NaN and ±Infinity tokens."""
    def refuse(token):
        raise AssertionError(f"non-standard JSON token {token}")

    return json.loads(text, parse_constant=refuse)


def test_entry_point_end_to_end(tmp_path):
    _prepare(tmp_path / "c")
    cwd = tmp_path / "c"
    for args, fragment in ([[*R, "--lr", "0_05", *OUT], "not a plain decimal"],
                           [[*R, "--model", "scalar", "--lr", "0.1", *OUT], ""]):
        before = _tree(cwd)
        r = _cli(*args, cwd=cwd)
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and r.stderr.startswith("eoslib: error:"), r.stderr
        assert fragment in r.stderr and "Traceback" not in r.stderr and r.stdout == ""
        assert _tree(cwd) == before


def test_a_249_character_name_works(tmp_path, monkeypatch, capsys):
    name = "r" * 244 + ".json"
    code, _, err = _main([*R, "--lr", "0.1", "--out", name], tmp_path, monkeypatch, capsys)
    assert code == 0, err
    assert _strict((tmp_path / name).read_text())["status"] == "max_steps"
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no temporary file left


def test_out_folders_are_created(tmp_path, monkeypatch, capsys):
    code, _, err = _main([*R, "--lr", "0.1", "--out", "a/b/run.json"], tmp_path, monkeypatch, capsys)
    assert code == 0, err
    assert _strict((tmp_path / "a/b/run.json").read_text())["config"]["lr"] == 0.1


def test_empty_cache_variable_is_unset_not_the_current_folder(tmp_path, monkeypatch, capsys):
    code, _, err = _main([*R, "--cache", "--lr", "0.1", *OUT], tmp_path, monkeypatch, capsys, EOSLIB_CACHE="")
    assert code == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "o.json"]  # the default, ~/.cache/eoslib
    assert any((tmp_path / "home/.cache/eoslib").glob("*.json"))


@pytest.mark.parametrize("args,key", [
    (["--lr", "1e-320"], "threshold"),  # 2/η overflows: null
    (["--lr", "0.1", "--sharpness-every", "0"], "late_sharpness_over_threshold"),  # no measurement: null
    (["--lr", "1e30"], "final_loss"),  # diverges: the last loss is not finite
])
def test_records_and_summaries_are_strict_json(tmp_path, monkeypatch, capsys, args, key):
    code, out, err = _main([*R, *args, *OUT], tmp_path, monkeypatch, capsys)
    assert code == 0, err
    record, summary = _strict((tmp_path / "o.json").read_text()), _strict(out)
    assert summary[key] is None
    if key == "final_loss":
        assert record["status"] == "diverged" and record["train_loss"][-1] is None


@pytest.mark.parametrize("lr,dtype", [("1e39", "float32"), ("1e308", "float32"), ("1e308", "float64")])
def test_a_step_size_beyond_the_float_range_diverges(tmp_path, monkeypatch, capsys, lr, dtype):
    """Needs train.py to end the run as diverged when the step overflows the dtype (the engine's fix)."""
    code, out, err = _main([*R, "--lr", lr, "--dtype", dtype, *OUT], tmp_path, monkeypatch, capsys)
    assert code == 0, err
    assert _strict(out)["status"] == "diverged"


def test_sweep_finishes_every_run_and_names_records_apart(tmp_path, monkeypatch, capsys):
    code, out, err = _main([*S, "--lrs", "0.1,0.1000001,1e30", "--seeds", "0,1", "--out-dir", "d"],
                           tmp_path, monkeypatch, capsys)
    assert code == 0, err
    files = sorted(p.name for p in (tmp_path / "d").iterdir())
    assert len(files) == 7 and "summary.json" in files  # 6 records: 0.1 and 0.1000001 do not collide
    rows = _strict((tmp_path / "d/summary.json").read_text())
    assert [(row["lr"], row["seed"]) for row in rows] == [(lr, s) for lr in (0.1, 0.1000001, 1e30) for s in (0, 1)]
    assert {row["status"] for row in rows[4:]} == {"diverged"}
    for row in rows:
        assert _strict((tmp_path / "d" / row["file"]).read_text())["config"]["lr"] == row["lr"]

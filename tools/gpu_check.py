"""One-command device check (``make gpu-check``): unit tests and every chapter on one device.

Runs the unit tests with ``EOSLIB_DEVICE=<device>``, then executes every chapter of _toc.yml
as a plain script at ``EOSLIB_SCALE=<scale>`` and prints a table of per-chapter wall times and
claim-check results (the lines ``eoslib.claims.check`` prints, starting with ✓ or ✗).

It needs only Python, torch, numpy, scipy, scikit-learn, matplotlib and pytest: no Jupyter.
Notebooks are read with the json module; each chapter runs in a fresh process that executes
its code cells in order in one namespace, with

- the install cell (id ``eos-install``, or any ``remove-cell`` cell that runs pip) skipped;
- IPython-only syntax replaced: ``%magic`` / ``!shell`` lines become comments, and
  ``display(...)`` is a shim (figures are closed, other objects printed);
- matplotlib on its Agg backend; cells that build ipywidgets explorers skipped when
  ipywidgets is not installed (they are interactive only);
- a per-chapter time limit (``--timeout``, seconds): a chapter past it is reported as such.

Usage:
    python tools/gpu_check.py                                  # cuda, paper scale, every chapter
    python tools/gpu_check.py --device cpu --timeout 600       # CPU: chapters that fit 10 minutes
    python tools/gpu_check.py --chapters 04 09 --skip-tests --scale cpu
    python tools/gpu_check.py --write-scripts /tmp/scripts      # also write the converted .py files
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from eoslib.claims import read_lines  # noqa: E402  (light: no torch)

# Unit tests that need Jupyter, a browser or a wheel build: not what this check is about.
NOT_ON_DEVICE = ["tests/test_notebooks.py", "tests/test_widgets_headless.py", "tests/test_browser.py",
                 "tests/test_package.py", "tests/test_make_notebooks.py"]

PRELUDE = '''\
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as _plt

def display(*objects, **kwargs):
    """IPython's display(), for scripts: figures are closed, anything else is printed."""
    for obj in objects:
        if hasattr(obj, "savefig"):
            _plt.close(obj)
        else:
            print(obj)
'''


def chapters(root: Path = ROOT) -> list[Path]:
    """Chapter notebooks in toc order (those listed in _toc.yml that exist)."""
    files = re.findall(r"^\s*-?\s*(?:file|root):\s*(\S+)", (root / "_toc.yml").read_text(), re.M)
    return [root / f"{f}.ipynb" for f in files if (root / f"{f}.ipynb").exists()]


def _source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def script_cells(notebook: Path, have_widgets: bool) -> list[tuple[int, str]]:
    """(cell index, Python source) of the cells to run, IPython syntax replaced."""
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    cells = []
    for i, cell in enumerate(nb["cells"]):
        if cell.get("cell_type") != "code":
            continue
        source = _source(cell)
        tags = cell.get("metadata", {}).get("tags", [])
        if cell.get("id") == "eos-install" or ("remove-cell" in tags and "pip" in source):
            continue
        if not have_widgets and re.search(r"\bwidgets\.\w+_explorer\(|import ipywidgets", source):
            continue
        lines = [("# " + line) if re.match(r"\s*[%!]", line) else line for line in source.splitlines()]
        cells.append((i, "\n".join(lines)))
    return cells


def to_script(notebook: Path, have_widgets: bool = True) -> str:
    """The chapter as one plain Python script (for --write-scripts and reading)."""
    body = [f"# --- cell {i}\n{src}" for i, src in script_cells(notebook, have_widgets)]
    return PRELUDE + "\n\n" + "\n\n".join(body) + "\n"


def run_one(notebook: Path) -> int:
    """Child process: execute the chapter's cells in one namespace (stdout: the outputs)."""
    try:
        import ipywidgets  # noqa: F401
        have_widgets = True
    except ImportError:
        have_widgets = False
    os.chdir(notebook.parent)  # as Jupyter runs a notebook: in its folder
    namespace = {"__name__": "__main__"}
    exec(compile(PRELUDE, "<prelude>", "exec"), namespace)
    for i, source in script_cells(notebook, have_widgets):
        try:
            exec(compile(source, f"{notebook.name}:cell{i}", "exec"), namespace)
        except BaseException as error:  # noqa: BLE001 - reported as the chapter's failure
            message = str(error).strip().splitlines()[-1] if str(error).strip() else ""
            print(f"FAILED in cell {i}: {type(error).__name__}: {message}"[:300], file=sys.stderr)
            return 1
        finally:
            import matplotlib.pyplot as plt

            plt.close("all")
    return 0


def run_chapter(notebook: Path, env: dict, timeout: float) -> dict:
    start = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, __file__, "--run-one", str(notebook)], env=env,
                              capture_output=True, text=True, timeout=timeout, cwd=ROOT)
        status = "ok" if proc.returncode == 0 else "FAILED"
        out, err = proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as expired:
        status = f"over {timeout:.0f} s"
        out = expired.stdout.decode() if isinstance(expired.stdout, bytes) else (expired.stdout or "")
        err = ""
    seconds = time.perf_counter() - start
    claims = read_lines(out)
    failure = next((line for line in reversed(err.splitlines()) if line.startswith("FAILED in cell")), "")
    if status == "FAILED" and not failure:
        failure = (err.strip().splitlines() or ["(no message)"])[-1][:200]
    margins = [float(m) for c in claims for m in re.findall(r"margin\s+(-?[\d.]+)%", c)]
    return {"chapter": notebook.stem, "status": status, "seconds": seconds, "claims": claims,
            "passed": sum(c.startswith("✓") for c in claims), "failed": sum(c.startswith("✗") for c in claims),
            "min_margin": min(margins) if margins else None, "failure": failure}


def machine(device: str) -> str:
    try:
        import torch

        name = torch.cuda.get_device_name(0) if device == "cuda" and torch.cuda.is_available() else platform.processor()
        return f"torch {torch.__version__}, {device}: {name or platform.machine()}, {os.cpu_count()} CPU cores"
    except ImportError:
        return "torch not importable"


def table(results: list[dict]) -> str:
    lines = [f"{'chapter':32s} {'status':>12s} {'time':>8s} {'✓':>4s} {'✗':>4s} {'min margin':>11s}"]
    for r in results:
        margin = f"{r['min_margin']:.1f}%" if r["min_margin"] is not None else "–"
        lines.append(f"{r['chapter']:32s} {r['status']:>12s} {r['seconds']:7.1f}s {r['passed']:4d} "
                     f"{r['failed']:4d} {margin:>11s}")
        if r["failure"]:
            lines.append(f"    {r['failure']}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"], help="EOSLIB_DEVICE (default cuda)")
    parser.add_argument("--scale", default="paper", choices=["paper", "cpu"], help="EOSLIB_SCALE (default paper)")
    parser.add_argument("--seed", default=None, help="EOSLIB_SEED (default: the book's, 0)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per chapter (default 3600)")
    parser.add_argument("--chapters", nargs="*", default=None, help="chapter name prefixes, e.g. 04 09")
    parser.add_argument("--skip-tests", action="store_true", help="do not run the unit tests")
    parser.add_argument("--write-scripts", metavar="DIR", help="also write each chapter as a .py script")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--run-one", metavar="NOTEBOOK", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.run_one:
        return run_one(Path(args.run_one).resolve())

    env = {**os.environ, "EOSLIB_DEVICE": args.device, "EOSLIB_SCALE": args.scale,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           "MPLBACKEND": "Agg", "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
    env.setdefault("EOSLIB_CACHE", str(ROOT / ".cache" / f"gpu-check-{args.device}-{args.scale}"))
    if args.seed is not None:
        env["EOSLIB_SEED"] = str(args.seed)
    print(f"# device check, {datetime.date.today()}: {machine(args.device)}; EOSLIB_DEVICE={args.device} "
          f"EOSLIB_SCALE={args.scale} EOSLIB_SEED={env.get('EOSLIB_SEED', '0')}", flush=True)

    status = 0
    if not args.skip_tests:
        ignore = [f"--ignore={p}" for p in NOT_ON_DEVICE if (ROOT / p).exists()]
        start = time.perf_counter()
        unit = subprocess.run([sys.executable, "-m", "pytest", "tests", "-q", "-p", "no:cacheprovider",
                               "-m", "not browser", *ignore], env=env, cwd=ROOT, capture_output=True, text=True)
        summary = (unit.stdout.strip().splitlines() or ["(no output)"])[-1]
        print(f"unit tests on {args.device}: {summary} ({time.perf_counter() - start:.0f} s)", flush=True)
        if unit.returncode != 0:
            print("\n".join(line for line in unit.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))))
            status = 1

    notebooks = chapters()
    if args.chapters:
        notebooks = [n for n in notebooks if any(n.stem.startswith(p) for p in args.chapters)]
    if args.write_scripts:
        out = Path(args.write_scripts)
        out.mkdir(parents=True, exist_ok=True)
        for n in notebooks:
            (out / f"{n.stem}.py").write_text(to_script(n))
    results = []
    for n in notebooks:
        r = run_chapter(n, env, args.timeout)
        results.append(r)
        print(f"{r['chapter']}: {r['status']} in {r['seconds']:.1f} s, {r['passed']} ✓ {r['failed']} ✗", flush=True)
        for claim in r["claims"]:
            print(f"    {claim}")
        if r["status"] != "ok" or r["failed"]:
            status = 1
    print()
    print(table(results))
    if args.json:
        Path(args.json).write_text(json.dumps({"device": args.device, "scale": args.scale,
                                               "machine": machine(args.device), "results": results}, indent=1))
    return status


if __name__ == "__main__":
    sys.exit(main())

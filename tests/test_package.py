"""The package installs whole: build the wheel, install it (not editable) into a fresh venv,
and import every module from outside the repository.

``make test`` installs eoslib editable and runs from the repository root, so it cannot see a
module missing from the wheel (eoslib.hessian once was). This test copies the sources a wheel
is built from to a temporary folder, builds the wheel there with the current interpreter's
setuptools (no network), installs it with ``--no-deps`` into a new venv whose dependencies
come from the running environment (a ``.pth`` file: seconds, not a 6 GB install), and imports
each module of the source tree from a folder outside the repository.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def source_modules() -> list[str]:
    """Every importable module of the source tree, e.g. ``eoslib.hessian.eig`` (``__main__`` runs the CLI)."""
    names = []
    for path in sorted((ROOT / "eoslib").rglob("*.py")):
        if path.name == "__main__.py":
            continue
        parts = path.relative_to(ROOT).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "eoslib", src / "eoslib", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(out), str(src)], check=True, capture_output=True, text=True)
    (found,) = out.glob("*.whl")
    return found


def test_distribution_name_is_ours_and_import_name_is_eoslib():
    project = PYPROJECT["project"]
    assert project["name"] == "eos-book", "the PyPI name `eoslib` belongs to an unrelated package"
    assert project["license"] and project["version"] and project["description"] and project["urls"]


def test_extras():
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert extras["widgets"] == ["ipywidgets>=7.6"], "Colab ships ipywidgets 7.7: the extra must keep it"
    assert extras["cifar"] == ["torchvision"]
    assert any(req.startswith("dask[distributed]") for req in extras["sweeps"])


def test_repository_url_is_the_one_in_config():
    """The repository address lives in _config.yml; pyproject's URLs must agree with it."""
    url = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"].rstrip("/")
    urls = PYPROJECT["project"]["urls"]
    assert urls["Homepage"] == url and urls["Source"] == url and urls["Issues"] == url + "/issues"


def test_wheel_ships_every_module(wheel):
    shipped = {n for n in zipfile.ZipFile(wheel).namelist() if n.endswith(".py")}
    expected = {str(p.relative_to(ROOT)) for p in (ROOT / "eoslib").rglob("*.py")}
    assert expected - shipped == set(), f"missing from the wheel: {sorted(expected - shipped)}"
    assert any(n.endswith("licenses/LICENSE") for n in zipfile.ZipFile(wheel).namelist())


def test_wheel_installs_and_imports_outside_the_repository(wheel, tmp_path):
    venv = tmp_path / "venv"
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(venv)], check=True, capture_output=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               check=True, capture_output=True, text=True).stdout.strip())
    # Dependencies (torch, numpy, ...) come from the running environment, after the venv's own
    # site-packages; path lines in a .pth do not run that environment's editable-install hooks.
    (site / "_deps_from_test_env.pth").write_text(sysconfig.get_path("purelib") + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    subprocess.run([python, "-m", "pip", "install", "--no-deps", "-q", str(wheel)],
                   check=True, capture_output=True, env=env, cwd=tmp_path)
    modules = source_modules()
    script = (
        "import importlib, importlib.metadata, pathlib, sys\n"
        f"for name in {modules!r}:\n"
        "    module = importlib.import_module(name)\n"
        f"    assert pathlib.Path(module.__file__).is_relative_to({str(site)!r}), (name, module.__file__)\n"
        "print(importlib.metadata.version('eos-book'), len(sys.modules))\n"
    )
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    run = subprocess.run([python, "-c", script], capture_output=True, text=True, env=env, cwd=outside)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split()[0] == PYPROJECT["project"]["version"]
    cli = subprocess.run([python, "-m", "eoslib", "run", "--help"], capture_output=True, text=True, env=env,
                         cwd=outside)
    assert cli.returncode == 0 and "--lr" in cli.stdout, cli.stderr[-1000:]

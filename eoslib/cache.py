"""A result cache that never serves a stale or damaged result.

* **Keys.** A run is keyed by :func:`run_key`: a hash of its configuration,
  the eoslib version and a fingerprint of eoslib's own source code, so any
  change to the library invalidates old results.
* **Atomic writes.** Every file is written to a temporary file in the same
  folder, flushed to disk, then renamed over the target (:func:`atomic_write`):
  a reader sees the old file or the new one, never half of one.
* **Integrity.** JSON results and checkpoints carry a SHA-256 checksum of their
  content; a file that fails it is reported (a ``UserWarning``), moved aside to
  ``*.corrupt`` and treated as missing, so the run is recomputed.
* **Concurrency and permissions.** Files are created with the permissions the
  umask allows (as ``open`` would), not ``mkstemp``'s private ``0600``. When two
  readers find the same damaged file, one moves it aside and the other simply
  treats it as missing; a file that vanishes or cannot be read is missing too.
  A cache the process cannot write to still serves what it holds (moving a damaged
  file aside is then skipped).
* **No pickle.** Checkpoints are loaded with ``torch.load(weights_only=True)``.
* **Strict JSON.** :func:`to_json` writes what any JSON parser reads: non-finite
  floats (NaN, ±inf) become ``null``, never the ``NaN``/``Infinity`` tokens that
  Python's ``json`` emits by default.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import math
import os
import tempfile
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from . import __version__


@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """SHA-256 (first 12 hex digits) of eoslib's ``*.py`` sources, in sorted order."""
    h = hashlib.sha256()
    for path in sorted(Path(__file__).parent.rglob("*.py")):
        h.update(path.relative_to(Path(__file__).parent).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:12]


def finite_or_none(obj: Any) -> Any:
    """``obj`` with every non-finite float (NaN, ±inf), at any depth, replaced by ``None``.

    >>> finite_or_none({"loss": [1.0, float("inf")], "ratio": float("nan"), "n": 3})
    {'loss': [1.0, None], 'ratio': None, 'n': 3}
    """
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_or_none(v) for v in obj]
    return obj


def to_json(obj: Any, **kwargs) -> str:
    """Strict JSON text of ``obj``: non-finite floats become ``null`` (:func:`finite_or_none`).

    ``kwargs`` go to :func:`json.dumps` (e.g. ``indent``, ``sort_keys``).

    >>> to_json({"threshold": float("inf")})
    '{"threshold": null}'
    """
    return json.dumps(finite_or_none(obj), allow_nan=False, **kwargs)


def run_key(config: dict[str, Any]) -> str:
    """Cache key of a run: hash of its config, the eoslib version and the code fingerprint.

    >>> run_key({"lr": 0.1}) == run_key({"lr": 0.1}) != run_key({"lr": 0.2})
    True
    """
    blob = json.dumps({"config": config, "version": __version__, "code": code_fingerprint()}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _umask() -> int:
    """The process umask, read without changing it where Linux allows (``/proc/self/status``)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere: read it by setting it, and put it back at once
    os.umask(mask)
    return mask


def atomic_write(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file + fsync + rename), with umask permissions.

    A ``path`` whose name is too long for a temporary name beside it is written through a
    shorter temporary name in the same folder.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as err:
        if err.errno != errno.ENAMETOOLONG:
            raise
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".eoslib.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _discard(path: Path, why: str) -> None:
    """Warn, and move ``path`` aside to ``*.corrupt``; if another reader moved it first, or the folder
    is read-only, leave it: either way the caller treats the file as missing."""
    warnings.warn(f"{path}: {why}; ignoring it and recomputing", UserWarning, stacklevel=3)
    try:
        path.replace(path.with_name(path.name + ".corrupt"))
    except OSError:
        pass


def _read(path: Path) -> bytes | None:
    """The bytes of ``path``, or None if it is missing, vanished meanwhile, or unreadable."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as err:
        warnings.warn(f"{path}: unreadable ({err.strerror or err}); ignoring it and recomputing", UserWarning,
                      stacklevel=3)
        return None


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def save_json(path: str | Path, obj: Any) -> None:
    """Save ``obj`` as checksummed JSON: ``{"sha256": ..., "data": obj}``."""
    text = json.dumps(obj, sort_keys=True)
    atomic_write(path, json.dumps({"sha256": _digest(text), "data": obj}, sort_keys=True).encode())


def load_json(path: str | Path) -> Any | None:
    """Load what :func:`save_json` wrote; ``None`` if missing or damaged (then warned and moved aside)."""
    path = Path(path)
    raw = _read(path)
    if raw is None:
        return None
    try:
        wrapper = json.loads(raw.decode("utf-8"))
        data = wrapper["data"]
        ok = wrapper["sha256"] == _digest(json.dumps(data, sort_keys=True))
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        ok = False
    if not ok:
        _discard(path, "damaged cache file (checksum or JSON error)")
        return None
    return data


def save_tensors(path: str | Path, state: dict[str, Any]) -> None:
    """Save a dict of tensors and plain values (``torch.save``), prefixed by its SHA-256."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    payload = buffer.getvalue()
    atomic_write(path, hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload)


def load_tensors(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any] | None:
    """Load what :func:`save_tensors` wrote, with ``weights_only=True``; ``None`` if missing or damaged."""
    path = Path(path)
    raw = _read(path)
    if raw is None:
        return None
    digest, _, payload = raw.partition(b"\n")
    if digest != hashlib.sha256(payload).hexdigest().encode():
        _discard(path, "damaged checkpoint (checksum mismatch)")
        return None
    try:
        return torch.load(io.BytesIO(payload), map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means: do not use it
        _discard(path, f"unreadable checkpoint ({type(err).__name__})")
        return None

"""What Ollama's ``digest`` (the SHA-256 of the model file) costs, and how long a listing waits for it.

Ways, interleaved (A B C A B C ...) on the same file, median wall time of each:

* ``ryot``: :class:`ryot._file_digest.FileDigests` (1 MiB chunks in its background thread; the time is
  from ``get`` to the digest being known), what the model pool runs;
* ``file_digest``: :func:`hashlib.file_digest` (the standard library's own loop), the baseline;
* ``sha256sum``: coreutils' ``sha256sum`` in a subprocess, the command-line baseline;
* ``status``: one ``ModelPool.status()`` of a pool whose file is not hashed yet (what a listing costs
  while the hash runs: it must not wait for it).

``--cold`` hashes a copy of the file whose pages are dropped from the page cache before each run
(``posix_fadvise(DONTNEED)`` on the copy only), so the disk is read; otherwise the page cache is warm.
Every way must give the same digest (checked). Usage::

    python benchmarks/file_digest.py --rounds 5
    python benchmarks/file_digest.py --rounds 5 --cold
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ryot import ModelEntry, ModelPool, default_model_path
from ryot._file_digest import FileDigests


def _ryot(path: Path) -> str:
    digests = FileDigests()
    try:
        digest = digests.wait(path)
    finally:
        digests.close()
    assert digest is not None
    return digest


def _file_digest(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _sha256sum(path: Path) -> str:
    done = subprocess.run(["sha256sum", str(path)], check=True, capture_output=True, text=True)
    return done.stdout.split()[0]


def _status_s(path: Path) -> float:
    """Seconds of the first ``status()`` of a new pool of ``path`` (it starts the hash, never waits)."""
    with ModelPool({"m": ModelEntry(path=path)}) as pool:
        started = time.perf_counter()
        pool.status()
        return time.perf_counter() - started


def _drop(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def main() -> None:
    """Run the comparison and print the medians and ratios."""
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cold", action="store_true")
    args = parser.parse_args()
    source = args.model or default_model_path()
    with tempfile.TemporaryDirectory() as tmp:
        path = source
        if args.cold:
            path = Path(tmp) / source.name
            shutil.copyfile(source, path)
        ways: dict[str, Callable[[Path], str]] = {
            "ryot": _ryot,
            "file_digest": _file_digest,
            "sha256sum": _sha256sum,
        }
        times: dict[str, list[float]] = {name: [] for name in [*ways, "status"]}
        digests: set[str] = set()
        for _ in range(args.rounds):
            for name, way in ways.items():
                if args.cold:
                    _drop(path)
                started = time.perf_counter()
                digests.add(way(path))
                times[name].append(time.perf_counter() - started)
            times["status"].append(_status_s(path))
        assert len(digests) == 1, digests
    size = source.stat().st_size
    cache = "cold" if args.cold else "warm"
    print(f"{source.name}: {size / 1e6:.1f} MB, {args.rounds} rounds, {cache} cache")
    base = statistics.median(times["file_digest"])
    for name, values in times.items():
        median = statistics.median(values)
        rate = f"{size / median / 1e9:6.2f} GB/s" if name != "status" else " " * 11
        print(f"  {name:12} median {median * 1000:9.2f} ms  {rate}  ({median / base:.2f}x file_digest)")


if __name__ == "__main__":
    main()

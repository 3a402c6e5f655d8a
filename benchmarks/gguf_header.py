"""What it costs to learn a GGUF model's facts (parameter count, file type, metadata) without serving it.

Three ways, interleaved (A B C A B C ...) on the same file, median wall time of each:

* ``ryot``: :func:`ryot._gguf.read_gguf_header`, ggml's GGUF parser through ctypes (``no_alloc``: the
  key/value pairs and tensor descriptions, no tensor data): what the model pool runs;
* ``vocab_only``: llama.cpp loading the model with ``vocab_only`` (metadata as strings, vocabulary built,
  ``llama_model_n_params``), the cheapest load llama-cpp-python offers;
* ``gguf_py``: the ``gguf`` package's ``GGUFReader`` (NumPy views of every field and tensor), what the
  tests use as the independent reference (``--skip-gguf-py`` leaves it out: ~10 s a run on Gemma).

Every way must report the same parameter count (checked). Usage::

    python benchmarks/gguf_header.py --rounds 5            # the packaged Gemma 3 270M
    python benchmarks/gguf_header.py --model path/to/x.gguf
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import llama_cpp

from ryot import default_model_path
from ryot._gguf import read_gguf_header
from ryot._llama import Model


def _ryot(path: Path) -> int:
    return read_gguf_header(path).parameter_count


def _vocab_only(path: Path) -> int:
    model = Model(path, vocab_only=True)
    try:
        return int(llama_cpp.llama_model_n_params(model.ptr))
    finally:
        model.close()


def _gguf_py(path: Path) -> int:
    import gguf

    return sum(int(t.n_elements) for t in gguf.GGUFReader(path).tensors)


def main() -> None:
    """Run the comparison and print the medians and ratios."""
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--skip-gguf-py", action="store_true")
    args = parser.parse_args()
    path = args.model or default_model_path()
    ways: dict[str, Callable[[Path], int]] = {"ryot": _ryot, "vocab_only": _vocab_only}
    if not args.skip_gguf_py:
        ways["gguf_py"] = _gguf_py
    counts = {name: fn(path) for name, fn in ways.items()}  # warm-up: page cache, library loads
    assert len(set(counts.values())) == 1, counts
    times: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(args.rounds):
        for name, fn in ways.items():
            start = time.perf_counter()
            fn(path)
            times[name].append(time.perf_counter() - start)
    print(f"{path.name}: {counts['ryot']:,} parameters; load {os.getloadavg()[0]:.2f}; {args.rounds} rounds")
    base = statistics.median(times["ryot"])
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"  {name:<11} median {med * 1000:9.1f} ms   ({med / base:6.1f}x ryot)")


if __name__ == "__main__":
    main()

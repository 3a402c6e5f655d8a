"""The one place ``faiss`` is imported (on first use), and its OpenMP thread setting per call site."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

__all__ = ("faiss_module", "faiss_version", "one_thread")


def faiss_module() -> ModuleType:
    """The ``faiss`` module, imported on first use.

    Every process that imports ``vault`` (the roster does) need not pay its ~14 MB resident and ~180 ms
    import when it never opens a vault; :class:`vault.Vault` imports it when it opens, so that no write
    or search pays the import.
    """
    import faiss  # noqa: PLC0415

    return faiss


@contextmanager
def one_thread() -> Iterator[None]:
    """Run FAISS on one OpenMP thread in this block (the setting is the calling thread's own).

    For one query, or a few dozen vectors added, an OpenMP team gains nothing (FAISS splits such work by
    query), and on a busy machine its barrier costs 10-25 ms (measured: HNSW top-10 at 5,000 vectors,
    0.39 ms on one thread against 25 ms on two, load average 5 on 2 cores).
    """
    faiss = faiss_module()
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(threads)


def faiss_version() -> str:
    """Version of the FAISS library in use."""
    return str(faiss_module().__version__)

"""A large JSON decode with the garbage collector paused: the collector's passes are most of its time.

A JSON document of many small containers (``[[],[],...]``, ``[{"a":1},...]``) becomes a Python object per
2-4 bytes. Each of them counts as an allocation for CPython's cyclic garbage collector, so a large decode
triggers collections of the young generations again and again, each scanning the containers made so far
that are still young, and full collections once they outnumber a quarter of the old heap (small after
``gc.freeze()``, as ``neurectomy serve`` runs): about two thirds of the decode's time on the worst shapes
(docs/collective.md, "Large inputs are decoded on the loop"). Nothing a decode makes can be a reference
cycle, so the passes find nothing; :func:`from_json` turns the collector off for a decode of at least
:data:`GC_PAUSE_MIN_BYTES` and back on after it (only if it was on: a caller that turned it off keeps it
off, and :func:`collector_paused` does the same around any decode). The containers are then scanned
once, by the next collection.

Used by the agents' accept path (``agents/_accept.py``) and by the API wherever it decodes a body
(``api/_bodies.py``).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pydantic_core

__all__ = ("GC_PAUSE_MIN_BYTES", "collector_paused", "from_json")

GC_PAUSE_MIN_BYTES = 64 * 1024
"""Smallest JSON document, in bytes, decoded with the garbage collector paused (64 KiB). Below it a decode
of the worst shape makes fewer containers than a few young-generation passes, and turning the collector
off and on would cost more than it saves."""


@contextmanager
def collector_paused(size: int) -> Iterator[None]:
    """The garbage collector off inside the block if ``size`` is large and it was on; back on after it.

    Args:
        size: Bytes of the JSON decoded inside the block (paused from :data:`GC_PAUSE_MIN_BYTES`).
    """
    if size < GC_PAUSE_MIN_BYTES or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def from_json(data: bytes | bytearray) -> Any:
    """``pydantic_core.from_json(data)``, with the garbage collector paused if ``data`` is large.

    Args:
        data: A JSON document (UTF-8 bytes).

    Returns:
        The decoded value (dicts, lists, strings, numbers, booleans, ``None``).

    Raises:
        ValueError: ``data`` is not JSON (``pydantic_core``'s message: what and where).
    """
    if len(data) < GC_PAUSE_MIN_BYTES:  # every call's input: no context manager on the accept path
        return pydantic_core.from_json(data)
    with collector_paused(len(data)):
        return pydantic_core.from_json(data)

"""CPU-heavy validation off the event loop, with a deadline.

Parsing a plan given as YAML text, checking a large JSON schema and the like can take milliseconds to
seconds on a large body; run on the event loop, that time is a stall for every other request (``/health``
included). :func:`off_loop` runs such a function in a worker thread (at most
:data:`VALIDATION_THREADS` at once) and answers 400 if it takes longer than its deadline; the thread
itself runs to its end (Python cannot stop it), which the input limits keep short.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import anyio

from agents.errors import BadInputError

__all__ = ("VALIDATION_DEADLINE_S", "VALIDATION_THREADS", "off_loop")

T = TypeVar("T")
VALIDATION_THREADS = 2
"""Validations running at once (more wait for a thread)."""
VALIDATION_DEADLINE_S = 2.0
"""Longest a validation may take, in seconds."""
_limiter: anyio.CapacityLimiter | None = None


def _threads() -> anyio.CapacityLimiter:
    global _limiter  # noqa: PLW0603 - one limiter per process, made inside the event loop
    if _limiter is None:
        _limiter = anyio.CapacityLimiter(VALIDATION_THREADS)
    return _limiter


async def off_loop(
    fn: Callable[..., T], *args: object, field: str, deadline_s: float = VALIDATION_DEADLINE_S
) -> T:
    """``fn(*args)`` in a worker thread; its exceptions propagate.

    Raises:
        BadInputError: It took longer than ``deadline_s`` seconds (naming ``field``).
    """
    try:
        with anyio.fail_after(deadline_s):
            return await anyio.to_thread.run_sync(
                lambda: fn(*args), limiter=_threads(), abandon_on_cancel=True
            )
    except TimeoutError:
        raise BadInputError(f"took longer than {deadline_s} s to validate; send less", field=field) from None

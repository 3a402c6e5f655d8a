"""Which asyncio event loop the service's processes run on: uvloop when it is installed.

``neurectomy serve`` and ``neurectomy agent`` pass :func:`backend_options` to ``anyio.run``. uvloop
(libuv; the ``server`` extra installs it) halves the event loop's own cost per NATS message
(``benchmarks/orchestrator.py --loop``, docs/collective.md). ``NEURECTOMY_EVENT_LOOP=asyncio`` selects
the standard loop (to compare, or to debug with asyncio's debug mode).
"""

from __future__ import annotations

import importlib.util
import os
from typing import Literal

__all__ = ("ENV_VAR", "LoopName", "backend_options", "loop_name")

ENV_VAR = "NEURECTOMY_EVENT_LOOP"
"""Environment variable naming the loop: ``uvloop`` (the default when installed) or ``asyncio``."""

LoopName = Literal["uvloop", "asyncio"]


def loop_name(requested: str | None = None) -> LoopName:
    """The loop to run: ``requested`` (else ``$NEURECTOMY_EVENT_LOOP``, else uvloop when installed).

    Args:
        requested: ``"uvloop"``, ``"asyncio"`` or ``None`` (then the environment variable decides).

    Raises:
        ValueError: The name (argument or environment variable) is neither ``uvloop`` nor ``asyncio``,
            or ``uvloop`` is asked for explicitly and is not installed.
    """
    explicit = requested is not None or bool(os.environ.get(ENV_VAR))
    name = (requested or os.environ.get(ENV_VAR) or "uvloop").strip().lower()
    if name not in ("uvloop", "asyncio"):
        raise ValueError(f"{ENV_VAR}: unknown event loop {name!r} (uvloop or asyncio)")
    if name == "uvloop" and importlib.util.find_spec("uvloop") is None:
        if explicit:
            raise ValueError(f"{ENV_VAR}: uvloop is not installed (pip install 'neurectomy[server]')")
        return "asyncio"
    return "uvloop" if name == "uvloop" else "asyncio"


def backend_options(requested: str | None = None) -> dict[str, bool]:
    """``anyio.run(..., backend_options=...)`` for the loop :func:`loop_name` picks.

    Raises:
        ValueError: See :func:`loop_name`.
    """
    return {"use_uvloop": loop_name(requested) == "uvloop"}

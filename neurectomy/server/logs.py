"""Logging: structlog, a readable console on a TTY and JSON lines otherwise."""

from __future__ import annotations

import logging
import sys
from typing import Literal

import structlog


def configure_logging(
    fmt: Literal["auto", "console", "json"] = "auto", level: str = "info", *, stream: object = None
) -> None:
    """Configure structlog (and route the standard library's logging through the same renderer).

    Args:
        fmt: ``console``, ``json``, or ``auto`` (console when the stream is a TTY). Both write an
            exception's traceback as Python prints it, without the frames' local variables.
        level: Lowest level logged (``debug``, ``info``, ``warning``, ``error``).
        stream: Where to write; by default whatever ``sys.stderr`` is at each write (so a stream
            swapped later, as a test runner's capture does, never leaves the logger on a closed file).
    """
    out = stream or _CurrentStderr()
    use_console = fmt == "console" or (fmt == "auto" and getattr(out, "isatty", lambda: False)())
    renderer: structlog.types.Processor = (
        console_renderer() if use_console else structlog.processors.JSONRenderer()
    )
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if not use_console:
        shared.append(structlog.processors.format_exc_info)
    numeric = logging.getLevelNamesMapping()[level.upper()]
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(out),  # type: ignore[arg-type]
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(out)  # type: ignore[call-overload]
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(numeric, logging.INFO))
    for noisy in ("uvicorn.access",):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def console_renderer() -> structlog.dev.ConsoleRenderer:
    """The readable console output of structlog, with exceptions as plain tracebacks.

    structlog's default console formatter is rich's, which prints every frame's local variables (request
    bodies, keys, decrypted payloads) and takes 30-80 ms of CPU per exception logged, on the event loop
    that serves every request; a plain traceback takes 0.2-0.8 ms.
    """
    return structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback)


class _CurrentStderr:
    """A text stream that writes to the current ``sys.stderr`` (looked up at each call)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return sys.stderr.isatty()

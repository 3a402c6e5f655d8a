"""How the CLI commands end on an error: one red line on stderr and exit code 1."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.markup import escape

from neurectomy.sdk.errors import NeurectomyError

__all__ = ("err_console", "fail", "service_errors", "startup_errors")

err_console = Console(stderr=True)


def fail(message: str) -> typer.Exit:
    """Print ``message`` in red on stderr, as one line; return the exit (code 1) to raise."""
    line = " ".join(message.split())
    err_console.print(f"[red]{escape(line)}[/red]", soft_wrap=True)
    return typer.Exit(1)


@contextmanager
def service_errors(url: str) -> Iterator[None]:
    """Turn the SDK's errors and a service that cannot be reached into :func:`fail`."""
    try:
        yield
    except NeurectomyError as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        raise fail(f"cannot reach {url}: {exc}") from None


@contextmanager
def startup_errors(command: str) -> Iterator[None]:
    """Turn a messaging or agent error that stops a server command into :func:`fail` (no traceback).

    The error may come bare or inside the exception group of the task group it escaped from (a JetStream
    stream that could not be created at start-up, for instance); any other exception propagates as is.
    """
    from agents.errors import AgentError  # the server's errors: loaded only by the server commands

    try:
        yield
    except AgentError as exc:
        raise fail(f"{command}: {exc}") from None
    except BaseExceptionGroup as group:
        errors, rest = group.split(AgentError)
        if errors is None or rest is not None:
            raise
        raise fail(f"{command}: {_first_leaf(errors)}") from None


def _first_leaf(group: BaseExceptionGroup[BaseException]) -> BaseException:
    first = group.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first

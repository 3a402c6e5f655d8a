"""How the CLI commands end on an error: one red line on stderr and exit code 1."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.markup import escape

from neurectomy.sdk.errors import NeurectomyError

__all__ = ("err_console", "fail", "service_errors")

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

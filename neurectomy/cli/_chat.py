"""Client commands about models and conversations: ``models``, ``ps`` and the interactive ``chat``.

``chat`` keeps the conversation in memory and sends all of it with each turn (streamed):
``/model`` lists the models, ``/model NAME`` switches, ``/clear`` forgets the history, ``/exit`` (or
Ctrl-D) quits; Ctrl-C stops the answer being streamed. The packaged model (Gemma 3 270M base) has no
chat tuning: expect continuations rather than answers.
"""

from __future__ import annotations

import datetime as dt
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from api.generate.schemas import TokenEvent
from neurectomy.cli._errors import fail, service_errors
from neurectomy.cli._options import ApiKeyOption, UrlOption
from neurectomy.sdk.client import DEFAULT_URL, Client
from neurectomy.sdk.errors import NeurectomyError

__all__ = ("register",)

console = Console()
err_console = Console(stderr=True)

_HELP = "/model [NAME]  list or switch models · /clear  forget the conversation · /exit  quit"


def _mib(n: int | None) -> str:
    return "" if n is None else f"{n / 2**20:.0f} MiB"


def _when(ts: float | None) -> str:
    return "" if ts is None else dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%H:%M:%S")


def models(url: UrlOption = DEFAULT_URL, api_key: ApiKeyOption = None) -> None:
    """List the served models: kind, status, default, context window."""
    with service_errors(url), Client(url, api_key=api_key) as client:
        rows = client.models()
    table = Table(title=f"Models at {url}")
    for column in ("model", "kind", "status", "default", "context", "parallel"):
        table.add_column(column, no_wrap=True)
    for m in rows:
        table.add_row(
            m.id,
            m.kind,
            m.status,
            "yes" if m.default else "",
            "" if m.n_ctx is None else str(m.n_ctx),
            "" if m.parallel is None else str(m.parallel),
        )
    console.print(table)


def ps(url: UrlOption = DEFAULT_URL, api_key: ApiKeyOption = None) -> None:
    """Show the loaded models: slots in use, queue, memory, since when (like ``ollama ps``)."""
    with service_errors(url), Client(url, api_key=api_key) as client:
        rows = [m for m in client.models() if m.loaded]
    table = Table(title=f"Loaded models at {url}")
    for column in ("model", "slots busy", "queued", "memory", "replicas", "loaded at", "last used"):
        table.add_column(column, no_wrap=True)
    for m in rows:
        slots = f"{m.active}/{m.parallel}" if m.parallel is not None else str(m.active)
        table.add_row(
            m.id,
            slots,
            str(m.queue_depth),
            _mib(m.memory_bytes),
            f"{m.loaded_replicas}/{m.replicas}",
            _when(m.loaded_at),
            _when(m.last_used_at),
        )
    console.print(table)


def _turn(
    client: Client, history: list[dict[str, str]], model: str | None, max_tokens: int, temp: float
) -> str:
    """Stream one answer to ``history``; the text so far (also when interrupted with Ctrl-C)."""
    parts: list[str] = []
    try:
        for event in client.stream(messages=history, model=model, max_tokens=max_tokens, temperature=temp):
            if isinstance(event, TokenEvent):
                parts.append(event.text)
                sys.stdout.write(event.text)
                sys.stdout.flush()
    except KeyboardInterrupt:
        err_console.print("[dim](stopped)[/dim]")
    sys.stdout.write("\n")
    return "".join(parts)


def _command(client: Client, line: str, model: str | None, history: list[dict[str, str]]) -> str | None:
    """Run a ``/`` command; the model to use next."""
    name, _, arg = line[1:].partition(" ")
    arg = arg.strip()
    if name == "clear":
        history.clear()
        err_console.print("[dim]conversation cleared[/dim]")
    elif name == "model" and not arg:
        for m in client.models():
            if m.kind == "generation":
                mark = "*" if m.id == model or (model is None and m.default) else " "
                err_console.print(f" {mark} {m.id} [dim]({m.status})[/dim]")
    elif name == "model":
        ids = [m.id for m in client.models() if m.kind == "generation"]
        if arg not in ids:
            err_console.print(f"[red]no model {arg!r}; served: {', '.join(ids)}[/red]")
        else:
            model = arg
            err_console.print(f"[dim]now chatting with {arg}[/dim]")
    else:
        err_console.print(f"[yellow]unknown command /{name}[/yellow]  {_HELP}")
    return model


def chat(
    model: Annotated[str | None, typer.Option(help="Model to chat with (default: the server's).")] = None,
    system: Annotated[str | None, typer.Option(help="A system message to start with.")] = None,
    max_tokens: Annotated[int, typer.Option(min=1, help="Upper bound on tokens per answer.")] = 256,
    temperature: Annotated[float, typer.Option(min=0.0, max=2.0, help="0 is greedy.")] = 0.8,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
) -> None:
    """Chat interactively (streamed, with history). Commands: /model [NAME], /clear, /exit."""
    history: list[dict[str, str]] = [{"role": "system", "content": system}] if system else []
    with service_errors(url), Client(url, api_key=api_key) as client:
        client.health()  # fail now, with one line, if the service cannot be reached
        err_console.print(f"[dim]{_HELP}[/dim]")
        while True:
            try:
                line = console.input("[bold]>>> [/bold]").strip()
            except (EOFError, KeyboardInterrupt):
                sys.stdout.write("\n")
                return
            if not line:
                continue
            if line in ("/exit", "/quit", "/bye"):
                return
            if line.startswith("/"):
                model = _command(client, line, model, history)
                continue
            history.append({"role": "user", "content": line})
            try:
                answer = _turn(client, history, model, max_tokens, temperature)
            except NeurectomyError as exc:
                history.pop()
                raise fail(str(exc)) from None
            history.append({"role": "assistant", "content": answer})


def register(app: typer.Typer) -> None:
    """Add ``models``, ``ps`` and ``chat`` to ``app``."""
    app.command()(models)
    app.command()(ps)
    app.command()(chat)

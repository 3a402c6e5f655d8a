"""``neurectomy task`` (submit and follow a durable task, live) and ``neurectomy call`` (one agent)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.syntax import Syntax
from rich.table import Table

from api.tasks.schemas import TaskRecord
from neurectomy.cli._errors import service_errors
from neurectomy.cli._options import ApiKeyOption, UrlOption
from neurectomy.sdk.client import DEFAULT_URL, Client

console = Console()
err_console = Console(stderr=True)
_STYLE = {
    "pending": "dim",
    "queued": "dim",
    "running": "yellow",
    "succeeded": "green",
    "failed": "red",
    "skipped": "dim",
    "cancelled": "magenta",
    "needs_clarification": "yellow",
}


def _view(record: TaskRecord) -> Group:
    """The task's status line and a table of its steps."""
    head = (
        f"task [bold]{record.id}[/bold] · [{_STYLE.get(record.status, '')}]{record.status}[/] · "
        f"attempt {record.attempts} · {time.time() - record.created_at:.1f} s"
    )
    table = Table(expand=True)
    for column in ("step", "agent", "status", "attempts", "seconds"):
        table.add_column(column, no_wrap=True)
    for step in record.steps:
        style = _STYLE.get(step.status, "")
        seconds = f"{step.seconds:.2f}" if step.seconds is not None else ""
        table.add_row(step.id, step.agent or "", f"[{style}]{step.status}[/]", str(step.attempts), seconds)
    return Group(head, table)


def _result(record: TaskRecord) -> None:
    if record.status == "succeeded":
        text = json.dumps(record.result, indent=2, ensure_ascii=False)
        console.print(Panel(Syntax(text, "json", word_wrap=True), title="result"))
    elif record.error:
        where = f" ({record.error.get('field')})" if record.error.get("field") else ""
        err_console.print(f"[red]{record.status}: {record.error.get('message')}{where}[/red]")


def _preview(goal: str, url: str) -> None:
    """Print the plan the planner makes for ``goal`` (exit 1 when it needs clarification)."""
    with service_errors(url), Client(url) as client:
        out = client.agents.call("planner", {"goal": goal}).output
    table = Table(expand=True)
    for column in ("step", "agent", "confidence", "sub-goal", "candidates"):
        table.add_column(column)
    for why in out.get("rationale", []):
        cands = ", ".join(f"{c['agent']} {c['score']:.2f}" for c in why.get("candidates", [])[:3])
        table.add_row(why["step"], why["agent"], f"{why.get('confidence', 0):.2f}", why["subgoal"], cands)
    console.print(table)
    if out.get("status") == "needs_clarification":
        err_console.print(f"[yellow]needs clarification: {out.get('reason')}[/yellow]")
        raise typer.Exit(1)
    console.print_json(json.dumps({"plan": out["plan"], "input": out.get("input", {})}, ensure_ascii=False))


def task(
    goal: Annotated[
        str | None, typer.Argument(help="What to do, in words (the planner makes the plan).")
    ] = None,
    plan: Annotated[Path | None, typer.Option(help="A plan file (YAML or JSON) instead of a goal.")] = None,
    input_json: Annotated[str, typer.Option("--input", help="The plan's input, as JSON.")] = "{}",
    priority: Annotated[str, typer.Option(help="high, normal or low.")] = "normal",
    idempotency_key: Annotated[
        str | None, typer.Option(help="Submitting again returns the same task.")
    ] = None,
    wait: Annotated[bool, typer.Option(help="Follow the task live until it ends.")] = True,
    timeout_s: Annotated[float, typer.Option(help="Stop following after this many seconds.")] = 600.0,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the planner's plan for the goal; run nothing.")
    ] = False,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
) -> None:
    """Submit a durable task and show its steps live as they run."""
    if (goal is None) == (plan is None):
        err_console.print("[red]give a goal or --plan FILE (not both)[/red]")
        raise typer.Exit(2)
    if dry_run:
        if goal is None:
            err_console.print("[red]--dry-run previews a goal's plan; a plan file is already a plan[/red]")
            raise typer.Exit(2)
        _preview(goal, url)
        return
    try:
        inputs = json.loads(input_json)
    except ValueError as exc:
        err_console.print(f"[red]--input is not JSON: {exc}[/red]")
        raise typer.Exit(2) from None
    with service_errors(url), Client(url, api_key=api_key, timeout_s=timeout_s + 5) as client:
        created = client.tasks.submit(
            goal,
            plan=plan.read_text() if plan else None,
            input=inputs if plan else None,
            priority=priority,
            idempotency_key=idempotency_key,
        )
        err_console.print(
            f"[dim]task {created.id} {'queued' if created.created else 'already submitted'}[/dim]"
        )
        if not wait:
            console.print(created.id)
            return
        record = client.tasks.get(created.id)
        try:
            with Live(_view(record), console=err_console, refresh_per_second=8) as live:
                for record in client.tasks.events(created.id, timeout_s=timeout_s):
                    live.update(_view(record))
        except TimeoutError as exc:  # not a failure of the task: say how to keep following it
            err_console.print(f"[yellow]{exc}; follow it with GET /v1/tasks/{created.id}[/yellow]")
            raise typer.Exit(1) from None
    _result(record)
    if record.status != "succeeded":
        raise typer.Exit(1)


def call(
    agent: Annotated[str, typer.Argument(help="Agent name (see `neurectomy agents`).")],
    value: Annotated[str, typer.Argument(help="Text, or a JSON object with the agent's input.")],
    timeout_s: Annotated[float | None, typer.Option(help="Deadline of the call, in seconds.")] = None,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
) -> None:
    """Call one agent and print its output as JSON."""
    payload: Any = value
    if value.lstrip().startswith("{"):
        try:
            payload = json.loads(value)
        except ValueError as exc:
            err_console.print(f"[red]the input looks like JSON but is not: {exc}[/red]")
            raise typer.Exit(2) from None
    with service_errors(url), Client(url, api_key=api_key) as client:
        answer = client.agents.call(agent, payload, timeout_s=timeout_s)
    if answer.agent != agent or answer.attempts > 1:
        err_console.print(f"[dim]answered by {answer.agent} after {answer.attempts} attempt(s)[/dim]")
    console.print_json(json.dumps(answer.output, ensure_ascii=False))


def register(app: typer.Typer) -> None:
    """Add ``task`` and ``call`` to the ``neurectomy`` command."""
    app.command()(task)
    app.command()(call)

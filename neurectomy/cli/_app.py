"""The ``neurectomy`` command line (typer + rich)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import anyio
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from api.generate.schemas import GenerateResponse
from neurectomy.cli._chat import register as register_chat_commands
from neurectomy.cli._errors import service_errors, startup_errors
from neurectomy.cli._keys import keys_app
from neurectomy.cli._options import ApiKeyOption, UrlOption
from neurectomy.cli._sigma import register as register_sigma_commands
from neurectomy.cli._tasks import register as register_task_commands
from neurectomy.cli._vault import vault_app
from neurectomy.sdk.client import DEFAULT_URL, Client

if TYPE_CHECKING:
    from neurectomy.settings import Settings

app = typer.Typer(
    help="Neurectomy: agent orchestration over NATS with a CPU-native LLM.", no_args_is_help=True
)
app.add_typer(vault_app, name="vault")
app.add_typer(keys_app, name="keys")
register_sigma_commands(app)
register_task_commands(app)
register_chat_commands(app)
console = Console()
err_console = Console(stderr=True)

ConfigOption = Annotated[Path | None, typer.Option("--config", help="YAML settings file.")]


NatsUser = Annotated[str | None, typer.Option("--nats-user", help="User name on an existing NATS server.")]
NatsPassword = Annotated[
    str | None,
    typer.Option("--nats-password", envvar="NEURECTOMY_NATS__PASSWORD", help="Password of --nats-user."),
]
NatsCreds = Annotated[Path | None, typer.Option("--nats-creds", help="NATS .creds file (user JWT + nkey).")]
NatsNkey = Annotated[Path | None, typer.Option("--nats-nkey", help="File holding an nkey seed.")]
NatsCa = Annotated[Path | None, typer.Option("--nats-ca", help="PEM CA verifying the NATS server (TLS).")]
NatsCert = Annotated[Path | None, typer.Option("--nats-cert", help="PEM client certificate (mutual TLS).")]
NatsKey = Annotated[Path | None, typer.Option("--nats-key", help="PEM key of --nats-cert.")]


def _nats_overrides(**options: object) -> dict[str, object]:
    """The NATS settings given on the command line (``--nats-*``), by setting name."""
    names = {
        "url": "url",
        "user": "user",
        "password": "password",
        "creds": "credentials_file",
        "nkey": "nkey_seed_file",
        "ca": "tls_ca_file",
        "cert": "tls_cert_file",
        "key": "tls_key_file",
    }
    return {names[k]: v for k, v in options.items() if v is not None}


def _settings(config: Path | None, **overrides: Any) -> Settings:
    from neurectomy.settings import load_settings  # server settings: only for serve and agent

    try:
        return load_settings(config, **overrides)
    except ValidationError as exc:
        err_console.print(f"[red]invalid settings[/red]\n{exc}")
        raise typer.Exit(2) from None


def _loop_options() -> dict[str, bool]:
    """``anyio.run`` options of the server processes: uvloop unless ``NEURECTOMY_EVENT_LOOP=asyncio``."""
    from agents.eventloop import backend_options

    try:
        return backend_options()
    except ValueError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="HTTP port (default 8420).")] = None,
    nats_url: Annotated[
        str | None,
        typer.Option(help="Join this NATS server (a cluster: comma-separated URLs) instead of starting one."),
    ] = None,
    teams: Annotated[
        str | None,
        typer.Option(help="Teams to run here: all (default), none (API and orchestrator only), or a,b."),
    ] = None,
    nats_user: NatsUser = None,
    nats_password: NatsPassword = None,
    nats_creds: NatsCreds = None,
    nats_nkey: NatsNkey = None,
    nats_ca: NatsCa = None,
    nats_cert: NatsCert = None,
    nats_key: NatsKey = None,
    config: ConfigOption = None,
) -> None:
    """Start NATS (unless --nats-url), the agents, the orchestrator and the HTTP API."""
    from neurectomy.server.logs import configure_logging
    from neurectomy.server.runtime import parse_teams
    from neurectomy.server.runtime import serve as run_serve

    base = _settings(config)
    api = base.api.model_copy(update={k: v for k, v in {"host": host, "port": port}.items() if v is not None})
    given = _nats_overrides(
        url=nats_url, user=nats_user, password=nats_password, creds=nats_creds, nkey=nats_nkey,
        ca=nats_ca, cert=nats_cert, key=nats_key,
    )  # fmt: skip
    nats = _settings(config, nats={**base.nats.model_dump(), **given}).nats if given else base.nats
    settings = base.model_copy(update={"api": api, "nats": nats})
    if teams is not None:
        try:
            settings = settings.model_copy(update={"teams": parse_teams(teams)})
        except ValueError as exc:
            err_console.print(f"[red]{exc}[/red]")
            raise typer.Exit(2) from None
    loop_options = _loop_options()  # an unknown loop is refused before logging is set up
    configure_logging(settings.log_format, settings.log_level)

    def ready(url: str) -> None:
        err_console.print(
            f"\n[bold green]Neurectomy is serving on {url}[/bold green]\n"
            f"  curl -s {url}/v1/generate -H 'content-type: application/json' "
            '-d \'{"prompt": "The capital of France is", "max_tokens": 16}\'\n'
            f'  neurectomy ask --url {url} "Write a haiku about NATS"\n'
            f"  python -c \"from neurectomy import Client; print(Client('{url}').generate('Hi').text)\"\n"
            f"  OpenAPI: {url}/schema   Stop: Ctrl-C\n"
        )

    with startup_errors("serve"):
        anyio.run(lambda: run_serve(settings, on_ready=ready), backend_options=loop_options)


@app.command()
def agent(
    team: Annotated[str, typer.Option(help="Team whose agents to run.")],
    nats_url: Annotated[str, typer.Option(help="NATS server (or cluster: comma-separated URLs) to join.")],
    name: Annotated[str | None, typer.Option("--agent", help="Only this agent of the team.")] = None,
    replicas: Annotated[int, typer.Option(min=1, help="Instances per agent (one queue group).")] = 1,
    nats_user: NatsUser = None,
    nats_password: NatsPassword = None,
    nats_creds: NatsCreds = None,
    nats_nkey: NatsNkey = None,
    nats_ca: NatsCa = None,
    nats_cert: NatsCert = None,
    nats_key: NatsKey = None,
    config: ConfigOption = None,
) -> None:
    """Run agents in this process, joining an existing NATS server (distributed mode).

    Without NATS credentials, an agent beside ``serve`` (same state directory) uses the agent
    credentials of serve's private server.
    """
    from neurectomy.server.logs import configure_logging
    from neurectomy.server.runtime import run_agents

    base = _settings(config)
    given = _nats_overrides(
        url=nats_url, user=nats_user, password=nats_password, creds=nats_creds, nkey=nats_nkey,
        ca=nats_ca, cert=nats_cert, key=nats_key,
    )  # fmt: skip
    settings = base.model_copy(
        update={"nats": _settings(config, nats={**base.nats.model_dump(), **given}).nats}
    )
    loop_options = _loop_options()  # an unknown loop is refused before logging is set up
    configure_logging(settings.log_format, settings.log_level)
    try:
        with startup_errors("agent"):
            anyio.run(
                lambda: run_agents(settings, team=team, agent=name, replicas=replicas),
                backend_options=loop_options,
            )
    except ValueError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


@app.command()
def ask(
    prompt: Annotated[str, typer.Argument(help="The prompt.")],
    max_tokens: Annotated[int, typer.Option(min=1, help="Upper bound on completion tokens.")] = 256,
    temperature: Annotated[float, typer.Option(min=0.0, max=2.0, help="0 is greedy.")] = 0.8,
    chat: Annotated[bool, typer.Option(help="Send the prompt as a user chat message.")] = False,
    model: Annotated[str | None, typer.Option(help="Model to use (default: the server's).")] = None,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
) -> None:
    """Stream a completion to the terminal, then print the token usage."""
    kwargs: dict[str, Any] = {"max_tokens": max_tokens, "temperature": temperature, "model": model}
    if chat:
        kwargs["messages"] = [{"role": "user", "content": prompt}]
    else:
        kwargs["prompt"] = prompt
    with service_errors(url), Client(url, api_key=api_key) as client:
        for event in client.stream(**kwargs):
            if isinstance(event, GenerateResponse):
                sys.stdout.write("\n")
                u = event.usage
                rate = event.timings.decode_tokens_per_s
                err_console.print(
                    f"[dim]{u.prompt_tokens} prompt tokens ({u.cached_tokens} cached) · "
                    f"{u.completion_tokens} completion tokens · finish: {event.finish_reason}"
                    + (f" · {rate:.1f} tok/s" if rate else "")
                    + "[/dim]"
                )
            else:
                sys.stdout.write(event.text)
                sys.stdout.flush()


@app.command()
def agents(url: UrlOption = DEFAULT_URL, api_key: ApiKeyOption = None) -> None:
    """List the agents of the collective: replicas, health, load and what each does."""
    with service_errors(url), Client(url, api_key=api_key) as client:
        rows = client.agents()
    table = Table(title=f"Agents at {url}")
    for column in ("team", "agent", "replicas", "health", "load", "in flight", "queued", "requests"):
        table.add_column(column, no_wrap=True)
    table.add_column("description", ratio=1)
    for a in rows:
        table.add_row(
            a.team,
            a.name,
            str(a.replicas),
            {"up": "[green]up[/green]", "down": "[dim]down[/dim]"}.get(a.health, f"[red]{a.health}[/red]"),
            f"{a.load:.2f}",
            str(a.in_flight),
            str(a.mailbox_depth),
            str(a.requests),
            a.description,
        )
    console.print(table)


def main() -> None:
    """Entry point of the console script."""
    app()

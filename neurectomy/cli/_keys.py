"""``neurectomy keys create|revoke|list``: API keys in the local key store (no server needed).

The commands edit ``<state_dir>/api-keys.json`` directly (see :mod:`neurectomy.server.keys`); a running
``neurectomy serve`` on the same state directory picks the change up on its next request.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from neurectomy.server.keys import KeyStore


__all__ = ("keys_app",)

keys_app = typer.Typer(help="API keys: create, revoke, list (hashed at rest).", no_args_is_help=True)
console = Console()
err_console = Console(stderr=True)

ConfigOption = Annotated[Path | None, typer.Option("--config", help="YAML settings file.")]


def _store(config: Path | None) -> KeyStore:
    from neurectomy.server.keys import KEYS_FILE_NAME, KeyStore  # server code: only for these commands
    from neurectomy.settings import load_settings

    try:
        settings = load_settings(config)
    except ValidationError as exc:
        err_console.print(f"[red]invalid settings[/red]\n{exc}")
        raise typer.Exit(2) from None
    return KeyStore(settings.state_dir / KEYS_FILE_NAME)


def _when(ts: float | None) -> str:
    return "" if ts is None else dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


@keys_app.command("create")
def create(
    tenant: Annotated[str, typer.Option(help="Tenant every call with this key runs in.")],
    scope: Annotated[str, typer.Option(help="Comma-separated scopes: read, write, admin.")] = "read,write",
    name: Annotated[str, typer.Option(help="A label for the key.")] = "",
    config: ConfigOption = None,
) -> None:
    """Create a key and print its token once (only a SHA-256 digest of it is stored)."""
    from neurectomy.server.keys import KeyStoreError

    try:
        created = _store(config).create(tenant, scope, name=name)
    except KeyStoreError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    err_console.print(
        f"created key [bold]{created.key.id}[/bold] for tenant {created.key.tenant!r} "
        f"(scopes: {','.join(created.key.scopes)}); the token is shown only now:"
    )
    typer.echo(created.token)


@keys_app.command("revoke")
def revoke(
    key_id: Annotated[str, typer.Argument(metavar="ID", help="Key id (from `keys list`).")],
    config: ConfigOption = None,
) -> None:
    """Revoke a key: requests with it get 401 from then on."""
    from neurectomy.server.keys import KeyStoreError

    try:
        key = _store(config).revoke(key_id)
    except KeyStoreError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    err_console.print(f"revoked key {key.id} (tenant {key.tenant!r})")


@keys_app.command("list")
def list_keys(config: ConfigOption = None) -> None:
    """List keys (ids, tenants, scopes, dates; never tokens)."""
    table = Table(title="API keys")
    for column in ("id", "tenant", "scopes", "name", "created", "revoked"):
        table.add_column(column, no_wrap=True)
    for key in _store(config).list_keys():
        table.add_row(
            key.id, key.tenant, ",".join(key.scopes), key.name, _when(key.created_at), _when(key.revoked_at)
        )
    console.print(table)


@keys_app.command("admin-token")
def admin_token(config: ConfigOption = None) -> None:
    """Print the local admin token (``<state_dir>/admin-token``, 0600) ``/v1/keys`` needs with auth off."""
    from neurectomy.server.keys import local_admin_token  # server code: only for this command
    from neurectomy.settings import load_settings

    try:
        settings = load_settings(config)
        token = local_admin_token(settings.state_dir)
    except (ValidationError, PermissionError) as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    typer.echo(token)

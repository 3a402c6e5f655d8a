"""``neurectomy vault add|search|rm|stats``: ΣVAULT from the command line, through the HTTP API.

``add`` takes a text, or a file: JSON Lines (``.jsonl``/``.ndjson``: one ``{"id"?, "text", "metadata"?}``
object or one JSON string per line) or plain text (one record per non-empty line). Files are sent in
batches (by count and by bytes, under the API's body limit) with a progress bar.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from neurectomy.cli._errors import fail
from neurectomy.cli._options import ApiKeyOption, UrlOption
from neurectomy.sdk.client import DEFAULT_URL, Client
from neurectomy.sdk.errors import NeurectomyError

__all__ = ("read_records", "vault_app")

vault_app = typer.Typer(
    help="ΣVAULT: encrypted semantic storage (add, search, rm, stats).", no_args_is_help=True
)
console = Console()
err_console = Console(stderr=True)

TenantOption = Annotated[
    str | None,
    typer.Option(
        "--tenant", envvar="NEURECTOMY_TENANT", help="Tenant (X-Neurectomy-Tenant; default 'default')."
    ),
]
MAX_BATCH_BYTES = 2 * 1024 * 1024
"""Upper bound of one upsert request's JSON, in bytes (under the API's 4 MiB default body limit)."""
JSONL_SUFFIXES = (".jsonl", ".ndjson")


def read_records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Records of a bulk file, with their 1-based line numbers.

    Args:
        path: JSON Lines (``.jsonl``/``.ndjson``) or plain text (one record per non-empty line).

    Raises:
        ValueError: A JSON line is malformed or holds neither an object with ``text`` nor a string.
    """
    jsonl = path.suffix.lower() in JSONL_SUFFIXES
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            if not jsonl:
                yield number, {"text": line.rstrip("\n"), "metadata": {"source": path.name, "line": number}}
                continue
            try:
                item = json.loads(line)
            except ValueError as exc:
                raise ValueError(f"{path}:{number}: not JSON: {exc}") from None
            if isinstance(item, str):
                item = {"text": item}
            if not isinstance(item, dict) or "text" not in item:
                raise ValueError(f"{path}:{number}: expected an object with a 'text' field, or a string")
            yield number, item


def _batches(
    records: Iterator[tuple[int, dict[str, Any]]], size: int
) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    batch: list[dict[str, Any]] = []
    first, used = 0, 0
    for number, record in records:
        cost = len(json.dumps(record)) + 2
        if batch and (len(batch) >= size or used + cost > MAX_BATCH_BYTES):
            yield first, batch
            batch, used = [], 0
        if not batch:
            first = number
        batch.append(record)
        used += cost
    if batch:
        yield first, batch


@vault_app.command()
def add(
    source: Annotated[str, typer.Argument(help="A JSONL/text file to load, or the text to store.")],
    record_id: Annotated[str | None, typer.Option("--id", help="Id of a single text record.")] = None,
    metadata: Annotated[str | None, typer.Option(help="JSON object of metadata (single text).")] = None,
    batch_size: Annotated[int, typer.Option(min=1, max=4096, help="Records per request.")] = 256,
    tenant: TenantOption = None,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
) -> None:
    """Store a text, or every record of a JSONL/text file (batched, with a progress bar)."""
    path = Path(source)
    try:
        with Client(url, api_key=api_key) as client:
            resource = client.vault.with_tenant(tenant) if tenant else client.vault
            if not path.is_file():
                meta = json.loads(metadata) if metadata else {}
                if not isinstance(meta, dict):
                    raise fail("--metadata must be a JSON object")
                console.print(resource.add(source, id=record_id, metadata=meta))
                return
            total = sum(1 for _ in read_records(path))
            stored = 0
            columns = (
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
            )
            with Progress(*columns, console=err_console) as progress:
                task = progress.add_task(f"storing {path.name}", total=total)
                for first_line, batch in _batches(read_records(path), batch_size):
                    try:
                        stored += len(resource.upsert(batch))
                    except NeurectomyError as exc:
                        raise fail(
                            f"batch starting at line {first_line}: {exc} ({stored} records stored)"
                        ) from None
                    progress.advance(task, len(batch))
            err_console.print(f"[green]stored {stored} records from {path}[/green]")
    except NeurectomyError as exc:
        raise fail(str(exc)) from None
    except ValueError as exc:  # a malformed file or --metadata
        raise fail(str(exc)) from None
    except OSError as exc:
        raise fail(f"cannot reach {url}: {exc}") from None


def _filter(item: str) -> tuple[str, Any]:
    key, sep, raw = item.partition("=")
    if not sep or not key:
        raise typer.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint="--filter")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return key, value


@vault_app.command()
def search(
    query: Annotated[str, typer.Argument(help="Text to search for (semantic, not keywords).")],
    k: Annotated[int, typer.Option("-k", "--k", min=1, max=1000, help="Hits wanted.")] = 5,
    filters: Annotated[
        list[str] | None, typer.Option("--filter", help="Metadata KEY=VALUE (VALUE as JSON if it parses).")
    ] = None,
    min_score: Annotated[float | None, typer.Option(help="Lowest cosine similarity.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the hits as JSON.")] = False,
    tenant: TenantOption = None,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
) -> None:
    """Print the records nearest to QUERY, best first."""
    where = dict(_filter(f) for f in filters or [])
    try:
        with Client(url, api_key=api_key) as client:
            hits = client.vault.search(query, k=k, filters=where, min_score=min_score, tenant=tenant)
    except NeurectomyError as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        raise fail(f"cannot reach {url}: {exc}") from None
    if as_json:
        console.print_json(json.dumps([h.model_dump() for h in hits]))
        return
    table = Table(title=f"{len(hits)} hits for {query!r}")
    for column in ("#", "score", "id"):
        table.add_column(column, no_wrap=True)
    table.add_column("text", ratio=1)
    table.add_column("metadata")
    for rank, hit in enumerate(hits, start=1):
        text = hit.text if len(hit.text) <= 200 else hit.text[:199] + "…"
        table.add_row(str(rank), f"{hit.score:.3f}", hit.id, text, json.dumps(hit.metadata))
    console.print(table)


@vault_app.command("rm")
def remove(
    record_id: Annotated[str, typer.Argument(help="Id of the record to delete.")],
    tenant: TenantOption = None,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
) -> None:
    """Delete one record."""
    try:
        with Client(url, api_key=api_key) as client:
            client.vault.delete(record_id, tenant=tenant)
    except NeurectomyError as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        raise fail(f"cannot reach {url}: {exc}") from None
    err_console.print(f"deleted {record_id}")


@vault_app.command()
def stats(tenant: TenantOption = None, url: UrlOption = DEFAULT_URL, api_key: ApiKeyOption = None) -> None:
    """Print the vault's counters (records, tombstones, cache hit ratio, WAL)."""
    try:
        with Client(url, api_key=api_key) as client:
            body = client.vault.stats(tenant=tenant)
    except NeurectomyError as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        raise fail(f"cannot reach {url}: {exc}") from None
    console.print_json(body.model_dump_json())

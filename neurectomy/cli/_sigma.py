"""``neurectomy compress FILE`` and ``neurectomy decompress FILE``: ΣLANG files through the HTTP API.

A file is compressed in blocks of at most ``--block-size`` bytes (one ΣLANG frame each: one HTTP
request carries at most the service's ``MAX_DATA_BYTES``). The output is a *ΣLANG file*::

    offset  size  field
    0       4     magic       "SGMF"
    4       1     version     1
    then per block:
            4     length      of the frame, bytes (u32, little-endian)
            n     frame       a ΣLANG frame (see sigmalang.frame)

``decompress`` reads ΣLANG files and also a bare ΣLANG frame (as ``POST /v1/sigma/compress`` returns).
Files are compressed without the service's RSU store by default (``--no-dedup``), so they decode on
any Neurectomy service that holds the same trained dictionary; ``--dedup`` makes smaller files that
need this service's store.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn
from rich.table import Table

from api.sigma.schemas import SigmaCompressionReport
from neurectomy.cli._errors import fail
from neurectomy.cli._options import ApiKeyOption, UrlOption
from neurectomy.sdk.client import DEFAULT_URL, Client
from neurectomy.sdk.errors import NeurectomyError

__all__ = ("DEFAULT_BLOCK_BYTES", "FILE_MAGIC", "FILE_VERSION", "register")

FILE_MAGIC = b"SGMF"
"""First bytes of a ΣLANG file."""
FILE_VERSION = 1
"""ΣLANG file format version written."""
DEFAULT_BLOCK_BYTES = 4 * 1024 * 1024
"""Bytes per frame (below the service's per-request limit of 6,242,304 bytes)."""
_LENGTH = struct.Struct("<I")

err_console = Console(stderr=True)
OutOption = Annotated[Path | None, typer.Option("-o", "--output", help="Output file.")]


def _blocks(path: Path, size: int) -> Iterator[bytes]:
    with path.open("rb") as f:
        while block := f.read(size):
            yield block


def _progress(total: int) -> Progress:
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
        disable=total <= DEFAULT_BLOCK_BYTES,
    )


def _write_atomically(target: Path, chunks: Iterator[bytes]) -> None:
    tmp = target.with_name(f".{target.name}.partial")
    try:
        with tmp.open("wb") as f:
            for chunk in chunks:
                f.write(chunk)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _report_table(title: str, reports: list[SigmaCompressionReport], out: Path) -> Table:
    b_in = sum(r.bytes_in for r in reports)
    b_out = sum(r.bytes_out for r in reports) + len(FILE_MAGIC) + 1 + _LENGTH.size * len(reports)
    saved = {k: sum(getattr(r, f"{k}_saved") for r in reports) for k in ("dedup", "dictionary", "entropy")}
    gross = sum(max(v, 0) for v in saved.values())
    tokens_in = [r.tokens_in for r in reports]
    tokens_out = [r.tokens_out for r in reports]
    counters = sorted({r.token_counter for r in reports})
    table = Table(title=title, show_header=False)
    table.add_row("output", str(out))
    table.add_row("frames", str(len(reports)))
    table.add_row("bytes in → out", f"{b_in:,} → {b_out:,}")
    table.add_row("ratio", f"{b_in / b_out:.2f}×" if b_out else "-")
    if all(t is not None for t in tokens_in + tokens_out):
        t_in = sum(t for t in tokens_in if t is not None)
        t_out = sum(t for t in tokens_out if t is not None)
        ratio = f" ({t_in / t_out:.2f}×)" if t_out else ""
        table.add_row("tokens in → out", f"{t_in:,} → {t_out:,}{ratio} [{', '.join(counters)}]")
    for name, value in saved.items():
        share = max(value, 0) / gross if gross else 0.0
        table.add_row(f"{name} share", f"{share:.1%} ({value:,} bytes)")
    return table


def compress(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="File to compress.")
    ],
    output: OutOption = None,
    level: Annotated[int | None, typer.Option(min=-7, max=22, help="zstd level.")] = None,
    dedup: Annotated[
        bool, typer.Option(help="Reference the service's RSU store (smaller, not portable).")
    ] = False,
    block_size: Annotated[
        int, typer.Option(min=1024, max=6_000_000, help="Bytes per frame.")
    ] = DEFAULT_BLOCK_BYTES,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
) -> None:
    """Compress FILE into a ΣLANG file (FILE.sigma) through the service; print the report."""
    out = output or file.with_name(file.name + ".sigma")
    if out.resolve() == file.resolve():
        raise fail("the output would overwrite the input")
    total = file.stat().st_size
    reports: list[SigmaCompressionReport] = []

    def frames(client: Client, progress: Progress) -> Iterator[bytes]:
        task = progress.add_task(f"compressing {file.name}", total=total)
        yield FILE_MAGIC + bytes([FILE_VERSION])
        for block in _blocks(file, block_size):
            result = client.sigma.compress(block, level=level, dedup=dedup, stream=str(file.name))
            reports.append(result.report)
            progress.advance(task, len(block))
            yield _LENGTH.pack(len(result.frame)) + result.frame

    try:
        with Client(url, api_key=api_key) as client, _progress(total) as progress:
            _write_atomically(out, frames(client, progress))
    except NeurectomyError as exc:
        raise fail(str(exc)) from None
    except (OSError, httpx.HTTPError) as exc:
        raise fail(f"{type(exc).__name__}: {exc}") from None
    err_console.print(_report_table(f"ΣLANG compress {file.name}", reports, out))


def _read_frames(path: Path) -> Iterator[bytes]:
    from sigmalang.frame import MAGIC as FRAME_MAGIC  # the engine loads only for this local command

    with path.open("rb") as f:
        head = f.read(len(FILE_MAGIC) + 1)
        if head.startswith(FRAME_MAGIC):
            yield head + f.read()
            return
        if head[: len(FILE_MAGIC)] != FILE_MAGIC:
            raise ValueError(f"{path} is neither a ΣLANG file nor a ΣLANG frame")
        if head[len(FILE_MAGIC) :] != bytes([FILE_VERSION]):
            raise ValueError(f"{path}: unsupported ΣLANG file version {head[len(FILE_MAGIC) :].hex()}")
        while prefix := f.read(_LENGTH.size):
            if len(prefix) < _LENGTH.size:
                raise ValueError(f"{path} is truncated (inside a frame length)")
            (n,) = _LENGTH.unpack(prefix)
            frame = f.read(n)
            if len(frame) < n:
                raise ValueError(f"{path} is truncated ({len(frame)} of {n} frame bytes)")
            yield frame


def decompress(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="ΣLANG file.")],
    output: OutOption = None,
    url: UrlOption = DEFAULT_URL,
    api_key: ApiKeyOption = None,
) -> None:
    """Decompress a ΣLANG file (or a bare frame) through the service, byte for byte."""
    out = output or (file.with_suffix("") if file.suffix == ".sigma" else file.with_name(file.name + ".out"))
    if out.resolve() == file.resolve():
        raise fail("the output would overwrite the input")
    total = file.stat().st_size
    counts = {"frames": 0, "bytes_in": 0, "bytes_out": 0, "glyphs": 0}

    def blocks(client: Client, progress: Progress) -> Iterator[bytes]:
        task = progress.add_task(f"decompressing {file.name}", total=total)
        for frame in _read_frames(file):
            result = client.sigma.decompress(frame)
            counts["frames"] += 1
            counts["bytes_in"] += len(frame)
            counts["bytes_out"] += len(result.data)
            counts["glyphs"] += result.report.glyphs
            progress.advance(task, len(frame) + _LENGTH.size)
            yield result.data

    try:
        with Client(url, api_key=api_key) as client, _progress(total) as progress:
            _write_atomically(out, blocks(client, progress))
    except NeurectomyError as exc:
        raise fail(str(exc)) from None
    except (ValueError, OSError, httpx.HTTPError) as exc:
        raise fail(f"{type(exc).__name__}: {exc}") from None
    table = Table(title=f"ΣLANG decompress {file.name}", show_header=False)
    table.add_row("output", str(out))
    table.add_row("frames", str(counts["frames"]))
    table.add_row("bytes in → out", f"{total:,} → {counts['bytes_out']:,}")
    table.add_row("glyphs resolved", str(counts["glyphs"]))
    err_console.print(table)


def register(app: typer.Typer) -> None:
    """Add the ``compress`` and ``decompress`` commands to the ``neurectomy`` app."""
    app.command()(compress)
    app.command()(decompress)

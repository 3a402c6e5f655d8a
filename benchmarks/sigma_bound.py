"""An upper reference for ΣLANG's ratio: the best general compressors over each tenant's WHOLE corpus.

A per-message codec sees one turn at a time and must let each frame decode on its own (given the
tenant's store); a compressor run once over everything a tenant sent, in order, with a window large
enough to hold it all, sees strictly more. Its ratio is therefore what "full knowledge" buys with
general-purpose tools, and where it is below the 20× target the absolute target is out of reach on
that draw (only the relative one, against whole-session zstd-19, can count).

Run: ``PYTHONPATH=$PWD .venv/bin/python -m benchmarks.sigma_bound`` with the draw options of
``benchmarks/sigmalang.py`` (``--corpus``, ``--source``, ``--seed``, ``--tenants``,
``--sessions-per-tenant``, ``--turns``). Columns: whole-session zstd-19 (the issue's baseline), then
per tenant (its sessions' turns concatenated in the order the benchmark posts them) zstd-19,
``zstd --ultra -22 --long=27`` (level 22, long-distance matching, 128 MiB window: python-zstandard's
parameters for the CLI's flags) and ``xz -9e`` (`lzma` preset 9 | PRESET_EXTREME). Ratios are total
input bytes / total output bytes.
"""

from __future__ import annotations

import argparse
import lzma
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import zstandard

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.sigma_corpus import Session  # noqa: E402
from benchmarks.sigma_draw import add_draw_arguments, draw  # noqa: E402


def _zstd(level: int, *, long: bool = False) -> Callable[[bytes], int]:
    params = zstandard.ZstdCompressionParameters.from_level(
        level, enable_ldm=long, window_log=27 if long else 0
    )
    compressor = zstandard.ZstdCompressor(compression_params=params)
    return lambda data: len(compressor.compress(data))


def _xz(data: bytes) -> int:
    return len(lzma.compress(data, preset=9 | lzma.PRESET_EXTREME))


def bounds(sessions: Sequence[Session]) -> dict[str, float]:
    """Ratios (input / output) of each reference compressor on `sessions`."""
    total = sum(len(t) for s in sessions for t in s.turns)
    by_tenant: dict[str, list[bytes]] = {}
    for s in sessions:
        by_tenant.setdefault(s.tenant, []).extend(s.turns)
    zstd19 = _zstd(19)
    out = {"whole-session zstd-19": total / sum(zstd19(b"".join(s.turns)) for s in sessions)}
    tenants = [b"".join(turns) for turns in by_tenant.values()]
    for name, size in (
        ("whole-tenant zstd-19", zstd19),
        ("whole-tenant zstd --ultra -22 --long=27", _zstd(22, long=True)),
        ("whole-tenant xz -9e", _xz),
    ):
        out[name] = total / sum(size(t) for t in tenants)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_draw_arguments(parser)
    args = parser.parse_args()
    sessions = draw(args)
    size = sum(len(t) for s in sessions for t in s.turns)
    print(f"{len(sessions)} sessions, {sum(len(s.turns) for s in sessions)} turns, {size / 1e6:.2f} MB")
    for name, ratio in bounds(sessions).items():
        print(f"{name:42s} {ratio:8.2f}x")


if __name__ == "__main__":
    main()

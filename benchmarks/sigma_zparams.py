"""zstd's parameters for ΣLANG's frames, chosen by measurement: replay zstd on what the codec hands it.

For every frame of a draw, the REST default codec (`SigmaCodec()`: generic dictionary, then each
tenant's dictionary trained from its traffic, the training waited for) is run once and what it hands
zstd is recorded: the coded bytes (the message's middle), the frame's zstd dictionary (its context
after the dictionary's content or tables, `sigmalang._zstd.context_dict`), the level, the share of
the message's new bytes, and the frame's size. zstd is then replayed on the recorded inputs with each
candidate parameter set, through the same libzstd calls as the codec (`sigmalang._libzstd`: one reused
context, the dictionary referenced, hash-chain match finder, hash table of half the chain table):

- frames with a context at the context level: level 8's own search (main before this change), fixed
  ``searchLog``/``minMatch`` sets, levels 9-12 and 19 (binary trees from 11), and rules by the share
  of new bytes (the shipped one: `SigmaConfig.mostly_new_min_share` and the search fields);
- frames without a context (first turns: the dictionary alone): levels 6 (as main and now), 8, 9, 12, 19.

Each row gives the whole draw's ratio when only those frames change (the others as this checkout's
codec wrote them, a frame's framing unchanged; a payload zstd does not shrink counts as stored), its
change against the first row, and zstd's CPU time over those frames (`time.process_time`, the fastest
of ``--reps`` passes, candidates interleaved) against the first row's; ``*`` marks the Pareto front
(no other row is both smaller and faster). The ratio is exact (what the codec would write); the time
is zstd's alone, not the codec's (``benchmarks/sigma_speed.py`` measures that).

Usage::

    PYTHONPATH=$PWD python -m benchmarks.sigma_zparams [--draws coding7,default] [--reps 7]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sigmalang  # noqa: E402
from benchmarks.sigma_draw import add_draw_arguments, draw  # noqa: E402
from sigmalang import _context, _libzstd, _zstd, _zstd_block  # noqa: E402

DRAWS = {  # the draws every ΣLANG change is measured on (docs/sigmalang.md)
    "default": "",
    "seed11": "--seed 11 --tenants 6 --sessions-per-tenant 5",
    "short": "--source packages --seed 23 --tenants 8 --sessions-per-tenant 3 --turns 2 6",
    "window": "--corpus window --seed 5 --tenants 5 --sessions-per-tenant 5",
    "window-short": "--corpus window --seed 29 --tenants 8 --sessions-per-tenant 3 --turns 2 5",
    "window-long": "--corpus window --seed 43 --tenants 2 --sessions-per-tenant 2 --turns 60 80",
    "coding7": "--corpus coding",
    "coding13": "--corpus coding --seed 13 --tenants 6 --sessions-per-tenant 4",
    "coding41": "--corpus coding --seed 41 --tenants 3 --sessions-per-tenant 6 --turns 6 16",
    "coding19": "--corpus coding --seed 19 --tenants 8 --sessions-per-tenant 3 --turns 2 6",
    "coding29": "--corpus coding --seed 29 --tenants 2 --sessions-per-tenant 3 --turns 30 40",
}
_LIB: Any = _libzstd.lib
_FFI: Any = _libzstd.ffi
_PARAM = {"level": _LIB.ZSTD_c_compressionLevel, "slog": _LIB.ZSTD_c_searchLog, "mml": _LIB.ZSTD_c_minMatch}


@dataclass
class Call:
    """One frame: what the codec handed zstd, and what the frame cost."""

    data: bytes
    level: int
    dictionary: bytes
    dict_type: int
    context: bool
    new_share: float
    frame: int
    fixed: int = 0  # the frame's bytes besides the (bare or stored) payload


@contextmanager
def _recording(calls: list[Call]) -> Iterator[None]:
    """Record the one `_zstd.compress` call each store-backed `encode` makes."""
    compress, encode = _zstd.compress, _context.encode
    seen: list[tuple[bytes, int, Any]] = []

    def spy(
        data: bytes, level: int, zdict: Any, key: object, search: _libzstd.Search = _libzstd.LEVEL_SEARCH
    ) -> bytes:
        seen.append((bytes(data), level, zdict))
        return compress(data, level, zdict, key, search)

    def spy_encode(data: bytes, **kwargs: Any) -> Any:
        seen.clear()
        result = encode(data, **kwargs)
        (middle, level, zdict), report = seen[-1], result[0].report
        if isinstance(zdict, _zstd.ContextDict):
            dictionary, kind = bytes(zdict.content), zdict.dict_type
        else:
            dictionary, kind = (zdict.as_bytes(), _LIB.ZSTD_dct_fullDict) if zdict is not None else (b"", 0)
        share = report.literal_bytes / max(report.bytes_in, 1)
        calls.append(
            Call(
                middle, level, dictionary, kind, isinstance(zdict, _zstd.ContextDict), share, report.bytes_out
            )
        )
        return result

    _zstd.compress, _context.encode = spy, spy_encode  # type: ignore[assignment]
    try:
        yield
    finally:
        _zstd.compress, _context.encode = compress, encode  # type: ignore[assignment]


def record(options: str) -> tuple[list[Call], int]:
    """Run the REST default codec over a draw; every frame's zstd input and the input's total bytes."""
    parser = argparse.ArgumentParser()
    add_draw_arguments(parser)
    sessions = draw(parser.parse_args(options.split()))
    calls: list[Call] = []
    codec = sigmalang.SigmaCodec()
    with _recording(calls):
        for session in sessions:
            for message in session.turns:
                codec.compress(message, tenant=session.tenant, stream=session.session_id)
                codec.wait_auto_dictionaries()
    codec.close()
    return calls, sum(len(m) for s in sessions for m in s.turns)


Params = tuple[tuple[int, int], ...]
Choose = Callable[[Call], Params]


def _stored(call: Call, payload: bytes) -> int:
    bare = _zstd_block.bare_block(payload)
    return min(len(bare) if bare is not None else len(payload), len(call.data))


def _replay(call: Call, params: Params) -> bytes:
    """`call` compressed with `params` (beside the frame fields the codec sets) by the codec's libzstd."""
    cctx = _libzstd.contexts.cctx
    _LIB.ZSTD_CCtx_reset(cctx, _libzstd.RESET)
    for param, value in (*params, *_libzstd.FRAME_FIELDS):
        _libzstd.ok(_LIB.ZSTD_CCtx_setParameter(cctx, param, value), "parameter")
    if call.dictionary:
        content = _FFI.from_buffer(call.dictionary)
        size = len(call.dictionary)
        _libzstd.ok(
            _LIB.ZSTD_CCtx_loadDictionary_advanced(cctx, content, size, _LIB.ZSTD_dlm_byRef, call.dict_type),
            "dict",
        )
    capacity = _LIB.ZSTD_compressBound(len(call.data))
    out = _FFI.new("char[]", capacity)
    written = _libzstd.ok(
        _LIB.ZSTD_compress2(cctx, out, capacity, _FFI.from_buffer(call.data), len(call.data)), "zstd"
    )
    _LIB.ZSTD_CCtx_reset(cctx, _libzstd.RESET)
    return bytes(_FFI.buffer(out, written))[4:]


def _context_set(level: int, search: _libzstd.Search = _libzstd.LEVEL_SEARCH) -> Choose:
    return lambda c: _libzstd.context_parameters(level, len(c.data), len(c.dictionary), search)


def _rule(share: float, mostly_new: _libzstd.Search, other: _libzstd.Search) -> Choose:
    return lambda c: _libzstd.context_parameters(
        8, len(c.data), len(c.dictionary), mostly_new if c.new_share >= share else other
    )


def _level(level: int) -> Choose:
    return lambda c: ((_PARAM["level"], level),)


_S = _libzstd.Search
CONTEXT_SETS: dict[str, Choose] = {
    "level 8 (main)": _context_set(8),
    "level 8, search 5, match 5": _context_set(8, _S(5, 5)),
    "level 8, search 6, match 5": _context_set(8, _S(6, 5)),
    "level 8, search 5, match 4": _context_set(8, _S(5, 4)),
    "level 8, search 6, match 4": _context_set(8, _S(6, 4)),
    "level 8, search 8, match 4": _context_set(8, _S(8, 4)),
    "level 8, match 6": _context_set(8, _S(None, 6)),
    "new >= 40%: search 6 match 4, else 5/5": _rule(0.4, _S(6, 4), _S(5, 5)),
    "new >= 50%: search 6 match 4, else 5/5": _rule(0.5, _S(6, 4), _S(5, 5)),
    "new >= 60%: search 6 match 4, else 5/5": _rule(0.6, _S(6, 4), _S(5, 5)),
    "new >= 50%: search 5 match 4, else 5/5 (shipped)": _rule(0.5, _S(5, 4), _S(5, 5)),
    "new >= 40%: search 5 match 4, else 5/5": _rule(0.4, _S(5, 4), _S(5, 5)),
    "level 9": _context_set(9),
    "level 10": _context_set(10),
    "level 11 (btlazy2)": _context_set(11),
    "level 12": _context_set(12),
    "level 19 (btultra2)": _context_set(19),
}
FIRST_SETS: dict[str, Choose] = {
    f"level {n}{' (main, kept)' if n == 6 else ''}": _level(n) for n in (6, 8, 9, 12, 19)
}


def measure(calls: list[Call], sets: dict[str, Choose], reps: int) -> list[tuple[str, int, float]]:
    """Each set's total stored bytes over `calls` and zstd's CPU seconds (fastest of `reps` passes)."""
    jobs = {name: [(c, choose(c)) for c in calls] for name, choose in sets.items()}
    sizes = {name: sum(_stored(c, _replay(c, p)) for c, p in job) for name, job in jobs.items()}
    best = dict.fromkeys(jobs, float("inf"))
    for _ in range(reps):
        for name, job in jobs.items():
            start = time.process_time()
            for call, params in job:
                _replay(call, params)
            best[name] = min(best[name], time.process_time() - start)
    return [(name, sizes[name], best[name]) for name in jobs]


def report(name: str, calls: list[Call], total_in: int, reps: int) -> None:
    """Print the two tables of one draw (see the module docstring)."""
    config = sigmalang.SigmaConfig()
    for call in calls:  # the frame's bytes besides its payload, replayed as the codec coded it
        searched = _context._search(config, mostly_new=call.new_share >= config.mostly_new_min_share)
        shipped = _libzstd.context_parameters(call.level, len(call.data), len(call.dictionary), searched)
        params = shipped if call.context and call.level >= 5 else ((_PARAM["level"], call.level),)
        call.fixed = call.frame - _stored(call, _replay(call, params))
    total_out = sum(c.frame for c in calls)
    print(
        f"\n== {name}: {len(calls)} frames, {total_in / 1e6:.2f} MB, REST default {total_in / total_out:.2f}x"
    )
    groups = (
        ("frames with a context", [c for c in calls if c.context and c.level >= 5], CONTEXT_SETS),
        ("frames without a context", [c for c in calls if not c.context and c.level >= 5], FIRST_SETS),
    )
    for title, group, sets in groups:
        if not group:
            continue
        rest = total_out - sum(c.frame for c in group)
        fixed = sum(c.fixed for c in group)
        rows = measure(group, sets, reps)
        _, base_size, base_time = rows[0]
        share = sum(c.frame for c in group) / total_out
        at_first = f"zstd {base_time * 1e3:.1f} ms at the first row"
        print(f"  {title} ({len(group)}, {share:.0%} of the output; {at_first})")
        for label, size, seconds in rows:
            front = not any(s < size and t < seconds for _, s, t in rows)
            ratio = total_in / (rest + fixed + size)
            change = (base_size - size) / (rest + fixed + size) * 100
            mark = "*" if front else " "
            print(
                f"   {mark} {label:50s} {ratio:8.3f}x {change:+6.2f}%  zstd time x{seconds / base_time:.2f}"
            )


def main() -> None:
    """Record and replay the chosen draws."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--draws", default=",".join(DRAWS), help=f"comma-separated, of {', '.join(DRAWS)}")
    parser.add_argument("--reps", type=int, default=5, help="timed passes per parameter set (fastest kept)")
    args = parser.parse_args()
    for name in args.draws.split(","):
        calls, total_in = record(DRAWS[name])
        report(name, calls, total_in, args.reps)


if __name__ == "__main__":
    main()

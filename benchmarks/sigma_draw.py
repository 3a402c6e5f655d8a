"""The draw options of the ΣLANG benchmarks and the sessions they build (one definition for every script).

``--corpus rag`` (`benchmarks/sigma_corpus.py`, documents from ``--source``), ``--corpus window``
(`benchmarks/sigma_corpus_window.py`, an independent generator), ``--corpus coding``
(`benchmarks/sigma_corpus_coding.py`, coding agents: source files, JSON tool calls, three envelopes,
compacted histories) or ``--corpus prose`` (`benchmarks/sigma_corpus_prose.py`, written apart from
the other three: RAG help desks over the package documentation that is not code), ``--seed``,
``--tenants``, ``--sessions-per-tenant``, ``--turns MIN MAX`` (default 4 14; window: 3 9; coding:
4 12; prose: 2 12). Used by
`benchmarks/sigmalang.py` and `benchmarks/sigma_bound.py`, so both see the same sessions for the same options.
"""

from __future__ import annotations

import argparse

from benchmarks.sigma_corpus import Session, build_sessions

__all__ = ("add_draw_arguments", "draw")

TRAINING_SEED_OFFSET = 1000
"""Dictionary-training sessions use ``seed + 1000`` (2 tenants × 4 sessions): never the measured ones."""


def add_draw_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--tenants``, ``--sessions-per-tenant``, ``--seed``, ``--turns``, ``--corpus``, ``--source``."""
    parser.add_argument("--tenants", type=int, default=4)
    parser.add_argument("--sessions-per-tenant", type=int, default=8)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--turns",
        type=int,
        nargs=2,
        metavar=("MIN", "MAX"),
        help="turns per session (default 4 14; window: 3 9; coding: 4 12; prose: 2 12)",
    )
    parser.add_argument(
        "--corpus",
        choices=("rag", "window", "coding", "prose"),
        default="rag",
        help="rag: benchmarks/sigma_corpus.py; window: benchmarks/sigma_corpus_window.py (independent); "
        "coding: benchmarks/sigma_corpus_coding.py (coding agents, another shape); "
        "prose: benchmarks/sigma_corpus_prose.py (RAG help desks over package documentation, written apart)",
    )
    parser.add_argument(
        "--source",
        choices=("stdlib", "packages"),
        default="stdlib",
        help="documents from the standard library, or from the installed third-party packages",
    )


def draw(args: argparse.Namespace, *, training: bool = False) -> list[Session]:
    """The sessions for the options in ``args`` (see `add_draw_arguments`).

    Args:
        args: Parsed options.
        training: Draw the dictionary-training sessions instead (seed + 1000, 2 tenants × 4 sessions;
            the rag corpus then uses its default turns, the window, coding and prose corpora the same turns
            as measured).
    """
    seed = args.seed + TRAINING_SEED_OFFSET if training else args.seed
    tenants, per_tenant = (2, 4) if training else (args.tenants, args.sessions_per_tenant)
    if args.corpus == "window":
        from benchmarks.sigma_corpus_window import build_window_sessions

        return build_window_sessions(
            seed, tenants=tenants, sessions_per_tenant=per_tenant, turns=tuple(args.turns or (3, 9))
        )
    if args.corpus == "coding":
        from benchmarks.sigma_corpus_coding import build_coding_sessions

        return build_coding_sessions(
            seed, tenants=tenants, sessions_per_tenant=per_tenant, turns=tuple(args.turns or (4, 12))
        )
    if args.corpus == "prose":
        from benchmarks.sigma_corpus_prose import build_prose_sessions

        return build_prose_sessions(
            seed, tenants=tenants, sessions_per_tenant=per_tenant, turns=tuple(args.turns or (2, 12))
        )
    if training:
        return build_sessions(seed, tenants=tenants, sessions_per_tenant=per_tenant, source=args.source)
    return build_sessions(
        seed,
        tenants=tenants,
        sessions_per_tenant=per_tenant,
        turns=tuple(args.turns or (4, 14)),
        source=args.source,
    )

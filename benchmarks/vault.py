"""ΣVAULT next to raw FAISS on embeddings of real text (not a test).

Generates a deterministic corpus of English sentences (no downloads), embeds it once with
all-MiniLM-L6-v2, then for each index kind (flat, HNSW) and each run:

* inserts the same vectors into ΣVAULT (sealed, compressed, WAL-fsynced, batches of ``--batch``) and into a
  bare ``faiss.IndexIDMap2`` of the same kind;
* times single-vector top-10 searches (ΣVAULT's include fetching and decrypting the 10 records);
* measures recall@10 of both against exact flat search.

Prints medians over ``--runs`` runs and the ΣVAULT / FAISS ratios, with the p99 and the longest single
write (``put_many`` / ``add_with_ids`` call). Then, at ``--stall-records`` records (100,000 by default; 0
skips it), it runs ``benchmarks/vault_stalls.py``'s measurement on precomputed random vectors (embedding
100,000 texts would take half an hour here): write p50/p99 and the longest write across the HNSW switch
and the background snapshots, and the peak against the steady RSS of a fresh process opening the vault.

    .venv/bin/python benchmarks/vault.py --docs 5000 --queries 300 --runs 3 --stall-records 100000
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Run as a script, this file's folder comes first on sys.path and this file would shadow the `vault` package.
if sys.path and Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

import faiss  # noqa: E402
import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from vault import IndexConfig, MiniLMEmbedder, NewRecord, Vault, VaultConfig  # noqa: E402

SUBJECTS = [
    "the engineer",
    "our team",
    "the new intern",
    "a customer",
    "the database",
    "the scheduler",
    "my neighbour",
    "the city council",
    "the research group",
    "a small startup",
    "the support desk",
    "the orchestra",
    "the football club",
    "the hospital",
    "the bakery",
    "the weather service",
    "the school board",
    "the museum",
]
VERBS = [
    "fixed",
    "reported",
    "postponed",
    "announced",
    "rewrote",
    "investigated",
    "cancelled",
    "celebrated",
    "reviewed",
    "approved",
    "delayed",
    "documented",
    "measured",
    "questioned",
    "expanded",
    "replaced",
]
OBJECTS = [
    "the billing bug",
    "the quarterly budget",
    "a memory leak",
    "the summer festival",
    "the login page",
    "the train timetable",
    "a heavy storm warning",
    "the vaccine trial",
    "the bread recipe",
    "the concert season",
    "the cache eviction policy",
    "a leaking roof",
    "the exam results",
    "the new bike lanes",
    "a data breach",
    "the holiday schedule",
    "the migration plan",
    "the coffee machine",
    "the solar panels",
    "the museum exhibit",
]
TAILS = [
    "after a long meeting",
    "before the deadline",
    "on Friday afternoon",
    "despite the rain",
    "to everyone's surprise",
    "with help from volunteers",
    "for the third time this year",
    "without telling anyone",
    "in under an hour",
    "after complaints from users",
    "during the night shift",
    "as the auditors requested",
]


def make_corpus(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [
        f"{rng.choice(SUBJECTS).capitalize()} {rng.choice(VERBS)} {rng.choice(OBJECTS)} {rng.choice(TAILS)}."
        for _ in range(n)
    ]


@dataclass
class Result:
    insert_per_s: float
    p50_ms: float
    p99_ms: float
    recall: float
    write_p99_ms: float
    write_max_ms: float


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)]))


def run_faiss(
    kind: str, vectors: np.ndarray, queries: np.ndarray, truth: np.ndarray, cfg: IndexConfig, batch: int
) -> Result:
    dim = vectors.shape[1]
    if kind == "hnsw":
        base = faiss.IndexHNSWFlat(dim, cfg.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        base.hnsw.efConstruction = cfg.hnsw_ef_construction
        base.hnsw.efSearch = cfg.hnsw_ef_search
    else:
        base = faiss.IndexFlatIP(dim)
    index = faiss.IndexIDMap2(base)
    start = time.perf_counter()
    writes = []
    for i in range(0, len(vectors), batch):
        t0 = time.perf_counter()
        index.add_with_ids(vectors[i : i + batch], np.arange(i, min(i + batch, len(vectors)), dtype=np.int64))
        writes.append(time.perf_counter() - t0)
    insert = len(vectors) / (time.perf_counter() - start)
    latencies, found = [], []
    for q in queries:
        t0 = time.perf_counter()
        _, labels = index.search(q.reshape(1, -1), 10)
        latencies.append(time.perf_counter() - t0)
        found.append(labels[0])
    return Result(insert, *percentiles(latencies), recall_at_k(np.array(found), truth), *write_stats(writes))


def run_vault(
    kind: str,
    texts: list[str],
    vectors: np.ndarray,
    queries: np.ndarray,
    truth: np.ndarray,
    base_dir: Path,
    embedder: MiniLMEmbedder,
    batch: int,
) -> Result:
    threshold = 1 if kind == "hnsw" else len(vectors) + 1
    config = VaultConfig(index=IndexConfig(hnsw_threshold=threshold))
    with tempfile.TemporaryDirectory(dir=base_dir) as tmp, Vault(tmp, config=config, embedder=embedder) as v:
        start = time.perf_counter()
        writes = []
        for i in range(0, len(vectors), batch):
            chunk = [
                NewRecord(text=texts[j], id=str(j), embedding=vectors[j])
                for j in range(i, min(i + batch, len(vectors)))
            ]
            t0 = time.perf_counter()
            v.put_many("bench", chunk)
            writes.append(time.perf_counter() - t0)
        v.join_background()  # HNSW is built and fed in the background: count it in the insert time
        insert = len(vectors) / (time.perf_counter() - start)
        assert v.stats().index_kinds["bench"] == kind
        latencies, found = [], []
        for q in queries:
            t0 = time.perf_counter()
            hits = v.search("bench", q, k=10)
            latencies.append(time.perf_counter() - t0)
            found.append([int(h.record.id) for h in hits])
        return Result(
            insert, *percentiles(latencies), recall_at_k(np.array(found), truth), *write_stats(writes)
        )


def percentiles(latencies: list[float]) -> tuple[float, float]:
    ms = np.array(latencies) * 1000.0
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def write_stats(writes: list[float]) -> tuple[float, float]:
    """p99 and longest of the write calls (milliseconds)."""
    ms = np.array(writes) * 1000.0
    return float(np.percentile(ms, 99)), float(ms.max())


def stall_measurement() -> object:
    """``benchmarks/vault_stalls.py`` as a module (this folder is not on ``sys.path``: see above)."""
    path = Path(__file__).resolve().parent / "vault_stalls.py"
    spec = importlib.util.spec_from_file_location("vault_stalls", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["vault_stalls"] = module  # its dataclass looks its module up
    spec.loader.exec_module(module)
    return module


def median(results: list[Result]) -> Result:
    return Result(
        *(
            statistics.median(getattr(r, f) for r in results)
            for f in ("insert_per_s", "p50_ms", "p99_ms", "recall", "write_p99_ms", "write_max_ms")
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--docs", type=int, default=5000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=256, help="records per put_many / add call")
    parser.add_argument(
        "--stall-records",
        type=int,
        default=100_000,
        help="records for the write-stall and open-RSS measurement (random vectors; 0 skips it)",
    )
    parser.add_argument(
        "--dir", type=Path, default=None, help="where the vault writes (default: system temp)"
    )
    args = parser.parse_args()
    console = Console(width=150)  # a table of eight columns, also when piped
    base_dir = args.dir or Path(tempfile.gettempdir())

    embedder = MiniLMEmbedder()
    embedder.load()
    texts = make_corpus(args.docs, seed=1)
    query_texts = make_corpus(args.queries, seed=2)
    embedder.embed(texts[:64])  # warm-up
    t0 = time.perf_counter()
    vectors = embedder.embed(texts)
    embed_rate = len(texts) / (time.perf_counter() - t0)
    queries = embedder.embed(query_texts)
    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(vectors)
    _, truth = exact.search(queries, 10)

    table = Table(
        title=f"ΣVAULT vs raw FAISS: {args.docs} docs x 384-d MiniLM, {args.queries} queries, k=10, "
        f"median of {args.runs} runs (faiss {faiss.__version__}, {os.cpu_count()} CPUs)"
    )
    columns = ("index", "system", "insert (rec/s)", "search p50 (ms)", "search p99 (ms)", "recall@10")
    for column in (*columns, "write p99 (ms)", "longest write (ms)"):
        table.add_column(column, justify="right" if column not in ("index", "system") else "left")
    cfg = IndexConfig()
    for kind in ("flat", "hnsw"):
        f_runs, v_runs = [], []
        for _ in range(args.runs):
            f_runs.append(run_faiss(kind, vectors, queries, truth, cfg, args.batch))
            v_runs.append(run_vault(kind, texts, vectors, queries, truth, base_dir, embedder, args.batch))
        f, v = median(f_runs), median(v_runs)
        table.add_row(
            kind,
            "raw FAISS",
            f"{f.insert_per_s:,.0f}",
            f"{f.p50_ms:.3f}",
            f"{f.p99_ms:.3f}",
            f"{f.recall:.3f}",
            f"{f.write_p99_ms:.2f}",
            f"{f.write_max_ms:.1f}",
        )
        table.add_row(
            kind,
            "ΣVAULT",
            f"{v.insert_per_s:,.0f}",
            f"{v.p50_ms:.3f}",
            f"{v.p99_ms:.3f}",
            f"{v.recall:.3f}",
            f"{v.write_p99_ms:.2f}",
            f"{v.write_max_ms:.1f}",
        )
        table.add_row(
            kind,
            "ΣVAULT / FAISS",
            f"{v.insert_per_s / f.insert_per_s:.3f}x",
            f"{v.p50_ms / f.p50_ms:.2f}x",
            f"{v.p99_ms / f.p99_ms:.2f}x",
            f"{v.recall - f.recall:+.3f}",
            f"{v.write_p99_ms / f.write_p99_ms:.1f}x",
            f"{v.write_max_ms / f.write_max_ms:.1f}x",
            end_section=True,
        )
    console.print(table)
    console.print(
        f"Embedding (all-MiniLM-L6-v2, batch 64, torch CPU): {embed_rate:,.0f} docs/s; "
        "ΣVAULT inserts above use the same precomputed vectors."
    )
    if args.stall_records:
        stalls: Any = stall_measurement()
        console.print(
            f"ΣVAULT at {args.stall_records:,} records (random 384-d vectors, batches of 100, HNSW past "
            "20,000, a snapshot every 10,000 WAL entries, fsync on):"
        )
        result = stalls.measure(args.stall_records, 20_000, 100, 10_000, args.queries)
        console.print("\n".join(f"  {line}" for line in result.lines()), highlight=False)


if __name__ == "__main__":
    main()

"""Write stalls and open-time memory of ΣVAULT: ``put_many`` latency across the HNSW switch and snapshots.

Stores ``--records`` random unit vectors (384-d, precomputed: the embedder is neither loaded nor measured)
in batches of ``--batch`` through one vault with ``hnsw_threshold`` below the total and a snapshot every
``--snapshot-every`` WAL entries, and prints the p50/p99 and the longest single write, the write that
crossed the threshold, and how long the (background) HNSW build took to land. fsync stays on.

Then it closes the vault (which snapshots it) and opens it again in a fresh subprocess, which prints its
peak RSS while opening (``VmHWM`` of ``/proc/self/status``; ``ru_maxrss`` would count the parent's RSS
at the fork) against its steady RSS once open (``VmRSS``),
and the latency of ``--queries`` top-10 searches by vector (each fetching and decrypting its 10 records).

Run it against another checkout (e.g. ``PYTHONPATH=/path/to/main``) for the baseline side by side::

    python benchmarks/vault_stalls.py --records 100000 --threshold 20000 --snapshot-every 10000
"""

from __future__ import annotations

import argparse
import base64
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path and benchmarks/vault.py would shadow `vault`.
if sys.path and Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

import numpy as np  # noqa: E402

from vault import DurabilityConfig, IndexConfig, NewRecord, Vault, VaultConfig  # noqa: E402


class _Precomputed:
    dim = 384

    def embed(self, texts: list[str]) -> np.ndarray:
        raise AssertionError("vectors are precomputed")


REOPEN = """
import statistics, sys, time
import numpy as np
from vault import IndexConfig, Vault, VaultConfig

class Precomputed:
    dim = 384
    def embed(self, texts):
        raise AssertionError("vectors are precomputed")

def rss_mib(field="VmRSS"):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field}")

before = rss_mib()
began = time.perf_counter()
v = Vault(sys.argv[1], config=VaultConfig(index=IndexConfig(hnsw_threshold=int(sys.argv[2]))),
          embedder=Precomputed())
opened_s = time.perf_counter() - began
steady = rss_mib()
peak = rss_mib("VmHWM")  # ru_maxrss would include the parent's RSS when it forked this process
rng = np.random.default_rng(1)
queries = rng.standard_normal((int(sys.argv[3]), 384)).astype(np.float32)
took = []
for q in queries:
    t = time.perf_counter()
    hits = v.search("bench", q, k=10)
    took.append((time.perf_counter() - t) * 1000)
    assert len(hits) == 10
took.sort()
stats = v.stats()
v.close()
print(f"reopened: {stats.records} records, index {stats.index_kinds['bench']}, "
      f"{stats.wal_entries} WAL entries replayed")
print(f"open: {opened_s:.2f} s; RSS before open {before:.0f} MiB, steady {steady:.0f} MiB, "
      f"peak {peak:.0f} MiB (peak / steady {peak / steady:.2f})")
print(f"search top-10 with decryption ({len(took)} queries): p50 {statistics.median(took):.3f} ms  "
      f"p99 {took[int(0.99 * (len(took) - 1))]:.3f} ms")
"""


@dataclass
class StallResult:
    """What :func:`measure` found (milliseconds unless named otherwise)."""

    writes: int
    batch: int
    kind: str
    p50_ms: float
    p99_ms: float
    longest_ms: float
    total_s: float
    most_waiting: int
    crossed_ms: float | None
    landed_s: float
    reopen: str
    """The reopening child's report: records, open time, RSS before/steady/peak, search latency."""

    def lines(self) -> list[str]:
        """The report, one line each."""
        out = [
            f"writes: {self.writes} x {self.batch} records, index at the end: {self.kind}",
            f"p50 {self.p50_ms:.2f} ms  p99 {self.p99_ms:.2f} ms  longest {self.longest_ms:.1f} ms",
            f"writes took {self.total_s:.1f} s in all; most vectors waiting after a write: "
            f"{self.most_waiting}",
        ]
        if self.crossed_ms is not None:
            out.append(f"write that crossed the threshold: {self.crossed_ms:.1f} ms")
        out.append(f"HNSW landed {self.landed_s:.2f} s after the last write returned")
        return out + self.reopen.splitlines()


def measure(
    records: int, threshold: int, batch: int, snapshot_every: int, queries: int, *, settle: bool = False
) -> StallResult:
    """Write ``records`` random vectors in batches, then reopen in a fresh process (see the module doc)."""
    os.environ.setdefault("NEURECTOMY_VAULT_KEK", base64.b64encode(os.urandom(32)).decode())
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((records, 384)).astype(np.float32)
    config = VaultConfig(
        index=IndexConfig(hnsw_threshold=threshold),
        durability=DurabilityConfig(snapshot_every_writes=snapshot_every),
    )
    latencies: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        v = Vault(Path(tmp) / "vault", config=config, embedder=_Precomputed())
        crossed_at = None
        most_waiting = 0
        for start in range(0, records, batch):
            chunk = [
                NewRecord(text=f"record {i}", id=f"r{i}", embedding=vectors[i])
                for i in range(start, min(start + batch, records))
            ]
            began = time.perf_counter()
            v.put_many("bench", chunk)
            latencies.append(time.perf_counter() - began)
            most_waiting = max(most_waiting, getattr(v.stats(), "pending_vectors", 0))  # 0: not reported
            if crossed_at is None and start + batch >= threshold:
                crossed_at = len(latencies) - 1
                if settle:
                    v.join_background()
        loop_end = time.perf_counter()
        join = getattr(v, "join_background", None)  # absent in versions that build HNSW inline
        if join is not None:
            join()
        landed_s = time.perf_counter() - loop_end
        kind = v.stats().index_kinds["bench"]
        v.close()
        reopen = subprocess.run(
            [sys.executable, "-c", REOPEN, str(Path(tmp) / "vault"), str(threshold), str(queries)],
            capture_output=True,
            text=True,
            check=True,
            cwd=tmp,  # with -c the cwd comes first on sys.path: it must not be another checkout
        )
    ms = sorted(x * 1000 for x in latencies)
    return StallResult(
        writes=len(ms),
        batch=batch,
        kind=kind,
        p50_ms=statistics.median(ms),
        p99_ms=ms[int(0.99 * (len(ms) - 1))],
        longest_ms=ms[-1],
        total_s=sum(ms) / 1000,
        most_waiting=most_waiting,
        crossed_ms=None if crossed_at is None else latencies[crossed_at] * 1000,
        landed_s=landed_s,
        reopen=reopen.stdout,
    )


def main() -> None:
    """Measure and print (milliseconds)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=30_000)
    parser.add_argument("--threshold", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--snapshot-every", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument(
        "--settle",
        action="store_true",
        help="wait (untimed) for the HNSW build after the write that crossed the threshold, so that the "
        "later writes measure writing into HNSW rather than into the flat index it replaces",
    )
    args = parser.parse_args()
    result = measure(
        args.records, args.threshold, args.batch, args.snapshot_every, args.queries, settle=args.settle
    )
    print("\n".join(result.lines()))


if __name__ == "__main__":
    main()

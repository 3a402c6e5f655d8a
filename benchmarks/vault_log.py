"""Applying ΣVAULT record-log messages: one commit per message vs one per batch (not a test).

A replica catching up with the JetStream record log applies the messages it has received with
``LogReplica.apply_many`` (one WAL write and fsync for up to 256 messages) instead of one ``apply`` (and
one fsync) per message. Both are timed here on the same messages: ``--messages`` one-record messages
(random 384-d vectors, no embedding) sealed on one vault and applied to two others. fsync cost dominates
the per-message path, so it depends on the disk and the machine's load.

    .venv/bin/python benchmarks/vault_log.py --messages 500
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import numpy as np  # noqa: E402

from vault import LogReplica, NewRecord, Vault  # noqa: E402
from vault.static_embedding import StaticEmbedder  # noqa: E402


def main() -> None:
    """Parse arguments, run, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=500)
    args = parser.parse_args()
    os.environ["NEURECTOMY_VAULT_KEK"] = base64.b64encode(os.urandom(32)).decode()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        replicas = [LogReplica(Vault(Path(tmp) / n, embedder=StaticEmbedder())) for n in ("w", "one", "many")]
        writer, one, many = replicas
        doc = writer.new_tenant_key("acme", 1, None)
        for r in replicas:
            r.install_tenant_keys("acme", doc)
        dim = writer.vault.dim
        messages = [
            (
                writer.seal_put(
                    "acme",
                    [
                        NewRecord(
                            f"note {i}", id=f"n{i}", embedding=rng.standard_normal(dim).astype(np.float32)
                        )
                    ],
                ).data,
                i + 1,
            )
            for i in range(args.messages)
        ]
        started = time.perf_counter()
        for data, seq in messages:
            one.apply(data, seq)
        per_message = time.perf_counter() - started
        started = time.perf_counter()
        for start in range(0, len(messages), 256):
            many.apply_many(messages[start : start + 256])
        batched = time.perf_counter() - started
        assert one.vault.count("acme") == many.vault.count("acme") == args.messages
        for r in replicas:
            r.vault.close()
    print(f"{args.messages} one-record messages; 1-min load average {os.getloadavg()[0]:.2f}")
    print(f"{'path':>22} {'seconds':>8} {'msg/s':>8}")
    print(f"{'apply (per message)':>22} {per_message:>8.2f} {args.messages / per_message:>8.0f}")
    print(f"{'apply_many (256/batch)':>22} {batched:>8.2f} {args.messages / batched:>8.0f}")
    print(f"ratio {per_message / batched:.1f}x")


if __name__ == "__main__":
    main()

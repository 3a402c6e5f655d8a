"""Shared state on JetStream KV against the per-process baselines, side by side.

1. **ΣLANG RSU store**: the session corpus (``benchmarks.sigma_corpus``, multi-turn agent requests)
   compressed turn by turn with one `SigmaCodec` over `DiskRSUStore` (SQLite, one host) and over
   `JetStreamRSUStore` (a real nats-server on loopback), every frame then decoded by a **second** codec
   (another replica: its own connection and cache) on the JetStream store. Reports compressed MB/s
   (1e6 input bytes per second), the ratio and the decode speed; the ratios must be equal.
2. **Rate limiting**: requests/s of an authenticated ``GET`` through the app with the ``limits`` fixed
   window over this process's ``WindowStore`` and over ``KeyValueStore`` (the ``limits`` storage on
   JetStream KV: a read and a compare-and-set per request, the window's end returned with the count), one
   client, sequential, in process (``httpx.ASGITransport``).

Run: ``PYTHONPATH=$PWD python -m benchmarks.shared_state [--sessions 6] [--requests 400]
[--sections rsu rate-limit]``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import anyio
import httpx
from anyio.from_thread import start_blocking_portal

from agents import Bus
from agents.compression.rsu_store import JetStreamRSUStore, shared_frame_secret
from agents.jetstream import JetStream
from agents.roster import ROSTER
from api import AuthConfig, KeyValueStore, LimitsConfig, create_app
from benchmarks.sigma_corpus import build_sessions
from neurectomy.server.keys import KEYS_FILE_NAME, KeyStore
from neurectomy.server.natsserver import EmbeddedNats
from orchestrator import Orchestrator
from sigmalang import DiskRSUStore, RSUStore, SigmaCodec


def _compress_all(codec: SigmaCodec, turns: list[tuple[str, bytes]]) -> tuple[float, int, int, list[bytes]]:
    start = time.perf_counter()
    frames, raw, packed = [], 0, 0
    for tenant, turn in turns:
        frame = codec.compress(turn, tenant=tenant).frame
        frames.append(frame)
        raw += len(turn)
        packed += len(frame)
    return time.perf_counter() - start, raw, packed, frames


def _decode_all(codec: SigmaCodec, turns: list[tuple[str, bytes]], frames: list[bytes]) -> float:
    start = time.perf_counter()
    for (tenant, turn), frame in zip(turns, frames, strict=True):
        assert codec.decompress(frame, tenant=tenant) == turn
    return time.perf_counter() - start


def bench_rsu(url: str, sessions: int) -> None:
    corpus = build_sessions(7, tenants=2, sessions_per_tenant=max(sessions // 2, 1))
    turns = [(s.tenant, t) for s in corpus for t in s.turns]
    secret = b"s" * 32
    with tempfile.TemporaryDirectory() as tmp:
        disk: RSUStore = DiskRSUStore(Path(tmp) / "rsu.db")
        seconds, raw, packed, frames = _compress_all(SigmaCodec(store=disk, secret=secret), turns)
        disk_decode = _decode_all(SigmaCodec(store=disk, secret=secret), turns, frames)
        disk.close()
    bucket = f"bench_rsu_{time.monotonic_ns()}"
    with start_blocking_portal() as p1, start_blocking_portal() as p2:
        bus1 = p1.call(lambda: Bus.connect(url, name="bench-1"))
        bus2 = p2.call(lambda: Bus.connect(url, name="bench-2"))
        js1, js2 = JetStream(bus1), JetStream(bus2)
        secret = p1.call(lambda: shared_frame_secret(js1, bucket=bucket))
        one = SigmaCodec(store=p1.call(lambda: JetStreamRSUStore.open(js1, p1, bucket=bucket)), secret=secret)
        two = SigmaCodec(store=p2.call(lambda: JetStreamRSUStore.open(js2, p2, bucket=bucket)), secret=secret)
        kv_seconds, _, kv_packed, kv_frames = _compress_all(one, turns)
        kv_decode = _decode_all(two, turns, kv_frames)
        p1.call(js1.delete_stream, f"KV_{bucket}")
        p1.call(bus1.aclose)
        p2.call(bus2.aclose)
    mb = raw / 1e6
    print(f"ΣLANG store: {len(turns)} turns, {mb:.2f} MB in")
    print(f"  {'store':<28}{'compress MB/s':>14}{'ratio':>8}{'decode MB/s':>13}")
    print(
        f"  {'DiskRSUStore (SQLite)':<28}{mb / seconds:>14.2f}{raw / packed:>8.2f}{mb / disk_decode:>13.2f}"
    )
    print(
        f"  {'JetStreamRSUStore (KV)':<28}{mb / kv_seconds:>14.2f}{raw / kv_packed:>8.2f}"
        f"{mb / kv_decode:>13.2f}  (decoded by another replica)"
    )
    print(f"  JetStream / disk: compress {seconds / kv_seconds:.2f}x, decode {disk_decode / kv_decode:.2f}x")


async def bench_rate_limit(url: str, requests: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        keys = KeyStore(Path(tmp) / KEYS_FILE_NAME)
        token = keys.create("bench", "read").token
        limits = LimitsConfig(rate_limit=10 * requests, rate_window="hour")
        async with await Bus.connect(url, name="bench-rl") as bus:
            kv = await KeyValueStore.open(JetStream(bus), namespace="bench")
            rounds: dict[str, list[float]] = {
                "no rate limit (floor)": [],
                "memory store (per process)": [],
                "KV store, compare-and-set": [],
            }
            for _ in range(3):  # alternating rounds: neither side always runs first on a loaded machine
                for label, store in zip(rounds, (None, None, kv), strict=True):
                    app = create_app(
                        Orchestrator(bus, specs=ROSTER),
                        auth=AuthConfig(enabled=True),
                        keys=keys,
                        limits=None if label.startswith("no rate limit") else limits,
                        rate_limit_store=store,
                    )
                    transport = httpx.ASGITransport(app=app)
                    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                        headers = {"Authorization": f"Bearer {token}"}
                        for _ in range(20):  # warm up
                            await client.get("/v1/agents/statistician", headers=headers)
                        start = time.perf_counter()
                        for _ in range(requests):
                            response = await client.get("/v1/agents/statistician", headers=headers)
                            assert response.status_code == 200
                        rounds[label].append(requests / (time.perf_counter() - start))
            await kv.reset()
            results = {label: statistics.median(rates) for label, rates in rounds.items()}
    base = results["memory store (per process)"]
    print(f"Rate limiting: {requests} sequential authenticated GETs, in process (median of 3 rounds)")
    for label, rate in results.items():
        print(f"  {label:<30}{rate:>9.0f} req/s  ({rate / base:.2f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=6)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--sections", nargs="+", choices=("rsu", "rate-limit"), default=["rsu", "rate-limit"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedNats(Path(tmp) / "nats")
        anyio.run(server.start)
        try:
            if "rsu" in args.sections:
                bench_rsu(server.url, args.sessions)
            if "rate-limit" in args.sections:
                anyio.run(bench_rate_limit, server.url, args.requests)
        finally:
            anyio.run(server.stop)


if __name__ == "__main__":
    main()

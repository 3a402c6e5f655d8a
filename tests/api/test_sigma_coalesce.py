"""Group commit of ``POST /v1/sigma/compress``: concurrent single messages share compressor calls.

The coalescer runs over the real Compression team (real nats-server, real codec, a real on-disk RSU
store). ``Gated`` passes every call on to the real orchestrator but holds it until the test opens the
gate, so a call is provably in flight while the next messages arrive (no timing assumption).
"""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from agents import AgentError, Bus, DeadlineExceededError
from agents.compression import COMPRESSION_AGENTS
from agents.compression.wire import MAX_BATCH_ITEMS, pack_parts, unpack_parts
from agents.protocol import Attached
from api.sigma._coalesce import CompressCoalescer
from bridges.sigma import SigmaBridge
from neurectomy.testing import start_serve, stop_serve
from orchestrator import Orchestrator
from orchestrator.testing import running
from sigmalang import DiskRSUStore, FrameAuthenticationError, SigmaCodec

pytestmark = pytest.mark.anyio
Team = Callable[[Path], AbstractAsyncContextManager[tuple[Orchestrator, SigmaBridge]]]

SECRET = b"coalesce-test-secret-32-bytes!!!"
DOCS = {
    "alice": "".join(f"Alice's contract clause {i}: the fee is {i * 17} euros.\n" for i in range(120)),
    "bob": "".join(f"Bob's runbook step {i}: restart shard {i % 7} and wait {i} s.\n" for i in range(120)),
}
MEMBERS = 6


def message(tenant: str, i: int) -> bytes:
    """A turn of ``tenant``: its document, then a question of its own."""
    return f"{DOCS[tenant]}user: question {i} of {tenant}?\n".encode()


def stream_of(tenant: str, i: int) -> str | None:
    return None if i % 3 == 2 else f"{tenant}-conversation-{i % 2}"


@pytest.fixture
def team(bus: Bus) -> Team:
    """The Compression team over a DiskRSUStore at ``root`` (the same secret each time)."""

    @asynccontextmanager
    async def run(root: Path) -> AsyncIterator[tuple[Orchestrator, SigmaBridge]]:
        codec = SigmaCodec(store=DiskRSUStore(root / "rsu.db"), secret=SECRET)
        async with (
            SigmaBridge(codec) as bridge,
            running(bus, [cls(bridge) for cls in COMPRESSION_AGENTS]) as orchestrator,
        ):
            yield orchestrator, bridge

    return run


class Gated:
    """The real orchestrator; each call records what it carries and waits for ``gate`` before going on."""

    def __init__(self, inner: Orchestrator) -> None:
        self.inner = inner
        self.gate = anyio.Event()
        self.calls: list[tuple[str, list[bytes], list[str | None]]] = []

    async def call(self, team: str, agent: str, payload: Any, ctx: Any, **kwargs: Any) -> dict[str, Any]:
        messages = unpack_parts(payload.attachment, MAX_BATCH_ITEMS)
        streams = payload.get("streams") or [payload.get("stream")] * len(messages)
        self.calls.append((ctx.tenant, messages, streams))
        await self.gate.wait()
        return await self.inner.call(team, agent, payload, ctx, **kwargs)


async def until(predicate: Callable[[], bool]) -> None:
    """Wait for a state of the coalescer (polled; fails after 20 s)."""
    with anyio.fail_after(20):
        while not predicate():
            await anyio.sleep(0.002)


async def test_concurrent_messages_of_two_tenants_share_calls_and_get_their_own_frames(
    team: Team, tmp_path: Path
) -> None:
    frames: dict[tuple[str, int], bytes] = {}
    reports: dict[tuple[str, int], bytes] = {}
    async with team(tmp_path / "coalesced") as (orchestrator, bridge):
        gated = Gated(orchestrator)
        coalescer = CompressCoalescer(gated)  # type: ignore[arg-type]

        async def one(tenant: str, i: int) -> None:
            ctx = orchestrator.context(tenant=tenant)
            report, frame = await coalescer.compress(
                message(tenant, i), ctx, stream=stream_of(tenant, i), level=None, dedup=True
            )
            frames[tenant, i], reports[tenant, i] = frame, report

        async with coalescer, anyio.create_task_group() as tg:
            for tenant in DOCS:  # an idle lane: each tenant's first message is sent at once, alone
                tg.start_soon(one, tenant, 0)
            await until(lambda: len(gated.calls) == 2)
            for i in range(1, MEMBERS + 1):
                for tenant in DOCS:
                    tg.start_soon(one, tenant, i)
            await until(lambda: coalescer.pending == 2 * MEMBERS)  # all wait behind the calls in flight
            gated.gate.set()

        # Two calls per tenant: the first message alone, then the six that came meanwhile, as one batch.
        assert sorted((t, len(m)) for t, m, _ in gated.calls) == [
            ("alice", 1),
            ("alice", MEMBERS),
            ("bob", 1),
            ("bob", MEMBERS),
        ]
        for (tenant, i), frame in frames.items():
            assert await bridge.decompress(frame, tenant=tenant) == message(tenant, i)
            other = "bob" if tenant == "alice" else "alice"
            with pytest.raises(FrameAuthenticationError):
                await bridge.decompress(frame, tenant=other)
            assert f'"bytes_out":{len(frame)}'.encode() in reports[tenant, i]
        # Each tenant's store holds its own document's chunks and none of the other's.
        for tenant, other in (("alice", "bob"), ("bob", "alice")):
            own, foreign = await bridge.dedup_stats(
                [DOCS[tenant].encode(), DOCS[other].encode()], tenant=tenant
            )
            assert own.known_bytes > len(DOCS[tenant]) // 2 and foreign.known_bytes == 0
        # Committed before the answers: another connection to the file (as another process) decodes all.
        fresh = SigmaCodec(store=DiskRSUStore(tmp_path / "coalesced" / "rsu.db"), secret=SECRET)
        try:
            for (tenant, i), frame in frames.items():
                assert fresh.decompress(frame, tenant=tenant) == message(tenant, i)
        finally:
            fresh.store.close()
        calls = list(gated.calls)

    # Byte-identical to one call per message, in the same order, against a fresh store.
    async with team(tmp_path / "one-by-one") as (orchestrator, _):
        for tenant, messages, streams in calls:
            for data, stream in zip(messages, streams, strict=True):
                out = await orchestrator.call(
                    "compression",
                    "compressor",
                    Attached({"stream": stream}, pack_parts([data])),
                    orchestrator.context(tenant=tenant),
                )
                alone = unpack_parts(out.attachment, 2)[1]  # type: ignore[attr-defined]
                i = next(i for (t, i), _ in frames.items() if t == tenant and message(t, i) == data)
                assert frames[tenant, i] == alone


async def test_a_member_stops_waiting_at_its_own_deadline(team: Team, tmp_path: Path) -> None:
    outcomes: dict[str, object] = {}
    async with team(tmp_path) as (orchestrator, bridge):
        gated = Gated(orchestrator)
        coalescer = CompressCoalescer(gated)  # type: ignore[arg-type]

        async def one(name: str, i: int, timeout_s: float) -> None:
            ctx = orchestrator.context(tenant="alice", timeout_s=timeout_s)
            try:
                outcomes[name] = await coalescer.compress(
                    message("alice", i), ctx, stream=None, level=None, dedup=True
                )
            except AgentError as exc:
                outcomes[name] = exc

        async with coalescer, anyio.create_task_group() as tg:
            tg.start_soon(one, "leader", 0, 30.0)
            await until(lambda: len(gated.calls) == 1)
            tg.start_soon(one, "hasty", 1, 0.2)
            tg.start_soon(one, "patient", 2, 30.0)
            await until(lambda: "hasty" in outcomes)  # its deadline passed while the leader's call waits
            gated.gate.set()

        assert isinstance(outcomes["hasty"], DeadlineExceededError)
        assert [len(m) for _, m, _ in gated.calls] == [1, 2]  # the group keeps the later deadline
        report, frame = outcomes["patient"]  # type: ignore[misc]
        assert await bridge.decompress(frame, tenant="alice") == message("alice", 2)


async def test_a_cancelled_lone_request_keeps_its_lane_until_its_call_ended(
    team: Team, tmp_path: Path
) -> None:
    """The first message of an idle lane is sent from its own request: cancelling that request (its client
    went away) neither cancels the call nor lets the next turn of the stream overtake it."""
    frames: dict[str, bytes] = {}
    stream = "alice-conversation-0"
    async with team(tmp_path / "coalesced") as (orchestrator, bridge):
        gated = Gated(orchestrator)
        coalescer = CompressCoalescer(gated)  # type: ignore[arg-type]
        scopes: list[anyio.CancelScope] = []

        async def turn(name: str, i: int) -> None:
            _, frames[name] = await coalescer.compress(
                message("alice", i),
                orchestrator.context(tenant="alice"),
                stream=stream,
                level=None,
                dedup=True,
            )

        async def leader() -> None:
            with anyio.CancelScope() as scope:
                scopes.append(scope)
                await turn("leader", 0)

        async def follower() -> None:
            await turn("follower", 1)

        async with coalescer, anyio.create_task_group() as tg:
            tg.start_soon(leader)
            await until(lambda: len(gated.calls) == 1)
            scopes[0].cancel()  # the leader's client went away while its call is in flight
            tg.start_soon(follower)
            await until(lambda: coalescer.pending == 1)  # it waits for the cancelled request's call
            assert len(gated.calls) == 1
            gated.gate.set()

        assert [len(m) for _, m, _ in gated.calls] == [1, 1]
        assert await bridge.decompress(frames["follower"], tenant="alice") == message("alice", 1)

    # The follower's frame is the one made after the leader's turn, as with one call per message in order.
    async with team(tmp_path / "one-by-one") as (orchestrator, _):
        for i in (0, 1):
            out = await orchestrator.call(
                "compression",
                "compressor",
                Attached({"stream": stream}, pack_parts([message("alice", i)])),
                orchestrator.context(tenant="alice"),
            )
        assert unpack_parts(out.attachment, 2)[1] == frames["follower"]  # type: ignore[attr-defined]


async def test_a_group_waiting_when_the_coalescer_stops_gets_busy(team: Team, tmp_path: Path) -> None:
    """The app stops while a lone call is in flight: that call still answers, the group behind it is
    never sent and its requests get ``busy``."""
    outcomes: dict[str, object] = {}
    async with team(tmp_path) as (orchestrator, bridge):
        gated = Gated(orchestrator)
        coalescer = CompressCoalescer(gated)  # type: ignore[arg-type]

        async def one(name: str, i: int) -> None:
            ctx = orchestrator.context(tenant="alice")
            try:
                outcomes[name] = await coalescer.compress(
                    message("alice", i), ctx, stream=None, level=None, dedup=True
                )
            except AgentError as exc:
                outcomes[name] = exc

        async with anyio.create_task_group() as tg:
            async with coalescer:
                tg.start_soon(one, "leader", 0)
                await until(lambda: len(gated.calls) == 1)
                tg.start_soon(one, "follower", 1)
                await until(lambda: coalescer.pending == 1)
            gated.gate.set()  # the coalescer has stopped; the leader's call goes on

        assert [len(m) for _, m, _ in gated.calls] == [1]
        follower = outcomes["follower"]
        assert isinstance(follower, AgentError) and follower.code == "busy", follower
        _, frame = outcomes["leader"]  # type: ignore[misc]
        assert await bridge.decompress(frame, tenant="alice") == message("alice", 0)


async def test_a_failed_call_fails_every_request_of_its_group(team: Team, tmp_path: Path) -> None:
    errors: list[AgentError] = []
    async with team(tmp_path) as (orchestrator, bridge):
        gated = Gated(orchestrator)
        coalescer = CompressCoalescer(gated)  # type: ignore[arg-type]

        async def one(i: int) -> None:
            try:
                await coalescer.compress(
                    message("alice", i),
                    orchestrator.context(tenant="alice"),
                    stream=None,
                    level=None,
                    dedup=True,
                )
            except AgentError as exc:
                errors.append(exc)

        async with coalescer, anyio.create_task_group() as tg:
            tg.start_soon(one, 0)
            await until(lambda: len(gated.calls) == 1)
            for i in range(1, 4):
                tg.start_soon(one, i)
            await until(lambda: coalescer.pending == 3)
            bridge.codec.store.close()  # the store goes away: no frame can be committed
            gated.gate.set()

    assert len(errors) == 4 and {e.code for e in errors} == {"busy"}, errors
    assert "closed" in errors[-1].message


@pytest.mark.slow
def test_answered_frames_survive_a_killed_service(tmp_path: Path) -> None:
    """Every 200 comes after its group's store commit: kill -9 the service, restart it, decode all."""
    env = {"NEURECTOMY_TEAMS": '["compression"]'}
    sent = [(tenant, i) for i in range(12) for tenant in DOCS]
    proc, url = start_serve(tmp_path, env=env)
    try:
        with httpx.Client(base_url=url, timeout=60) as client:

            def post(item: tuple[str, int]) -> bytes:
                tenant, i = item
                r = client.post(
                    "/v1/sigma/compress",
                    params={"stream": f"{tenant}-c{i % 3}"},
                    content=message(tenant, i),
                    headers={"x-neurectomy-tenant": tenant, "content-type": "application/octet-stream"},
                )
                assert r.status_code == 200, r.text
                return r.content

            with ThreadPoolExecutor(8) as pool:
                made = dict(zip(sent, pool.map(post, sent), strict=True))
        os.kill(proc.pid, signal.SIGKILL)  # no shutdown, no checkpoint
        proc.wait(30)
    finally:
        stop_serve(proc)
    proc, url = start_serve(tmp_path, env=env)
    try:
        with httpx.Client(base_url=url, timeout=60) as client:
            for (tenant, i), frame in made.items():
                r = client.post(
                    "/v1/sigma/decompress",
                    content=frame,
                    headers={"x-neurectomy-tenant": tenant, "content-type": "application/octet-stream"},
                )
                assert r.status_code == 200, r.text
                assert r.content == message(tenant, i)
    finally:
        stop_serve(proc)

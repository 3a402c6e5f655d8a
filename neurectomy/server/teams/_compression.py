"""Starting the Compression team: one shared ΣLANG codec, its bridge, and the eight agents.

State lives under ``settings.state_dir / "sigma"``: the per-tenant RSU store in ``rsu.db``
(`sigmalang.DiskRSUStore`, SQLite, survives restarts and may be shared by several processes on one
host; retention from ``settings.sigma``), trained dictionaries as ``dictionaries/<id>.zdict``, and the
secret the tenants' frame MAC keys derive from in ``frame.key`` (32 random bytes, mode 0600, created
on first start; frames decode only with the same secret).

When the Storage team runs in this process, its vault is passed in and RSUs are sealed at rest with the
tenant's vault data key (`bridges.tenant_seal.VaultChunkSealer`; deleting the tenant crypto-shreds them
and the store drops their rows); otherwise they are stored unsealed, with a warning. ``rsu.db`` records
which: a file written one way refuses to open the other (`sigmalang.RSUStoreError` at start).

With ``nats.shared_state`` (on against an existing NATS server or cluster) the RSUs live in JetStream KV
instead (`agents.compression.rsu_store.JetStreamRSUStore`, sealed the same way when the vault is in
process; a bucket is sealed or plain for its whole life) and the frame secret too
(`agents.compression.rsu_store.shared_frame_secret`), so a frame compressed by one Compression replica
decodes on any other, and so do trained dictionaries (`agents.compression.dictionary_source`: published
when trained, sealed like the RSUs, fetched by a replica that meets a frame naming one it lacks, kept
under ``dictionaries/``).

Token counts use Ryot's tokenizer (the model of ``settings.ryot``, the one the Inference team serves),
loaded vocabulary-only (`ryot.Tokenizer`: no weights, no context); if it cannot be loaded, the team
counts with `bridges.sigma.approx_tokens`, and every result says ``token_counter: "approx"``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path

import anyio
import anyio.abc
import anyio.to_thread
import structlog
from anyio.from_thread import BlockingPortal

from agents import Bus
from agents.compression import COMPRESSION_AGENTS
from agents.compression.dictionary_source import JetStreamDictionarySource
from agents.compression.rsu_store import JetStreamRSUStore, shared_frame_secret
from agents.jetstream import JetStream
from bridges.sigma import SigmaBridge
from bridges.tenant_seal import VaultChunkSealer
from bridges.vault import VaultBridge
from neurectomy.server.teams._runners import check_agent, start_runners
from neurectomy.settings import Settings
from ryot import RyotError, Tokenizer
from sigmalang import DictionaryRegistry, DiskRSUStore, Retention, RSUStore, SigmaCodec

__all__ = ("AGENT_MAILBOX_SIZE", "AGENT_CONCURRENCY", "start_compression")

log = structlog.get_logger("neurectomy")

AGENT_MAILBOX_SIZE = 32
"""Calls that may wait per compression agent instance; one more is refused with 429."""
AGENT_CONCURRENCY = 2
"""Calls one compression agent instance handles at once (the bridge bounds threads in total)."""


async def _ryot_token_counter(settings: Settings, stack: AsyncExitStack) -> Callable[[str], int] | None:
    """``text -> tokens`` with the default Ryot model's tokenizer (BOS included, as generation), or None."""
    try:
        with anyio.CancelScope(shield=True):
            tokenizer = await anyio.to_thread.run_sync(Tokenizer, settings.ryot.default_entry().path)
    except RyotError as exc:
        log.warning("Ryot tokenizer unavailable; compression counts tokens approximately", error=str(exc))
        return None
    stack.callback(tokenizer.close)
    return tokenizer.count


def _frame_secret(path: Path) -> bytes:
    """The service's frame secret: read from `path`, or 32 random bytes written there with mode 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes()
    secret = os.urandom(32)
    with os.fdopen(fd, "wb") as f:
        f.write(secret)
    return secret


async def start_compression(
    settings: Settings,
    stack: AsyncExitStack,
    bus: Bus,
    tg: anyio.abc.TaskGroup,
    *,
    agent: str | None = None,
    replicas: int = 1,
    vault: VaultBridge | None = None,
) -> None:
    """Open the shared codec and start the Compression team's agents (all eight, or only ``agent``).

    RSUs are sealed with the tenants' data keys in ``vault`` if given (the Storage team's, in process),
    and a tenant deleted through it is forgotten by the codec (its RSUs, streams and anchors).

    Raises:
        ValueError: The team has no agent named ``agent``.
    """
    check_agent("compression", [cls.name for cls in COMPRESSION_AGENTS], agent)
    root = settings.state_dir / "sigma"
    retention = Retention(settings.sigma.store_max_bytes, settings.sigma.store_max_age_s)
    sealer = VaultChunkSealer(vault.vault) if vault is not None else None
    if sealer is None:
        log.warning("no vault in this process: ΣLANG RSUs are stored unsealed")
    store: RSUStore
    source: JetStreamDictionarySource | None = None
    if settings.nats.shares_state():
        js = JetStream(bus)
        portal = await stack.enter_async_context(BlockingPortal())  # the store's calls from worker threads
        store = await JetStreamRSUStore.open(js, portal, retention=retention, sealer=sealer)
        secret = await shared_frame_secret(js)
        source = await JetStreamDictionarySource.open(js, portal, sealer=sealer)
    else:
        store = await anyio.to_thread.run_sync(
            lambda: DiskRSUStore(root / "rsu.db", retention=retention, sealer=sealer)
        )
        secret = await anyio.to_thread.run_sync(_frame_secret, root / "frame.key")
    stack.callback(store.close)
    dictionaries = await anyio.to_thread.run_sync(
        lambda: DictionaryRegistry(
            root / "dictionaries",
            source=source,
            fetched_max_bytes=settings.sigma.fetched_dictionary_max_bytes,
        )
    )
    count_tokens = await _ryot_token_counter(settings, stack)
    codec = SigmaCodec(store=store, dictionaries=dictionaries, config=settings.sigma, secret=secret)
    bridge = SigmaBridge(codec, count_tokens=count_tokens, timeout_s=settings.orchestrator.default_deadline_s)
    stack.push_async_callback(bridge.aclose)
    if vault is not None:
        vault.on_tenant_deleted.append(bridge.forget_tenant)
    log.info(
        "compression codec ready",
        store=str(store.path) if isinstance(store, DiskRSUStore) else "jetstream",
        sealed=sealer is not None,
        dictionaries=len(dictionaries),
        token_counter=bridge.token_counter,
    )
    await start_runners(
        bus,
        tg,
        lambda: [cls(bridge, max_payload_bytes=bus.max_payload) for cls in COMPRESSION_AGENTS],
        agent=agent,
        replicas=replicas,
        mailbox_size=AGENT_MAILBOX_SIZE,
        concurrency=AGENT_CONCURRENCY,
    )

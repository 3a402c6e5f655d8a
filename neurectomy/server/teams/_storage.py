"""Starting the Storage team: open ΣVAULT under the state directory and run its agents (eight + embedder).

The vault lives in ``settings.state_dir / "vault"`` (one process may open it at a time: it is
``flock``-ed), named snapshot copies in ``settings.state_dir / "vault-snapshots"``. The key-encryption
key comes from ``$NEURECTOMY_VAULT_KEK`` (base64, 32 bytes) or a key file (``settings.vault.keys``; default
``$XDG_CONFIG_HOME/neurectomy/vault-keys/<vault id>.key``, generated with mode 0600 on first run, never
inside the vault directory), exactly as the library resolves it.
Replicas of an agent run in this process over the same vault; the vault is closed (with a snapshot) after
the agents have drained.

With ``vault_log.mode: jetstream`` (a cluster) the vault is a cache of the replicated record log
(:class:`agents.storage.RecordLog`): the process catches up with the stream before its agents join their
queue groups, then keeps applying it, so any number of ``neurectomy agent --team storage`` processes (each
with its own state directory and the same KEK) serve the same records.
"""

from __future__ import annotations

from contextlib import AsyncExitStack

import anyio
import anyio.abc
import structlog

from agents import Bus
from agents.jetstream import JetStream
from agents.storage import STORAGE_AGENT_NAMES, EmbedderAgent, RecordLog, StorageAgent, storage_agents
from bridges.vault import VaultBridge
from neurectomy.server.teams._runners import check_agent, start_runners
from neurectomy.settings import Settings

__all__ = (
    "STORAGE_CONCURRENCY",
    "STORAGE_MAILBOX_SIZE",
    "STORAGE_THREADS",
    "open_storage_vault",
    "start_storage",
)

log = structlog.get_logger("neurectomy")

STORAGE_MAILBOX_SIZE = 64
"""Calls that may wait per storage agent instance; one more is refused with 429."""
STORAGE_CONCURRENCY = 4
"""Calls a storage agent instance hands to the vault bridge at once."""
STORAGE_THREADS = 4
"""Vault calls running in worker threads at once, across the team (the bridge's capacity limiter)."""


async def start_storage(
    settings: Settings,
    stack: AsyncExitStack,
    bus: Bus,
    tg: anyio.abc.TaskGroup,
    *,
    agent: str | None = None,
    replicas: int = 1,
    bridge: VaultBridge | None = None,
) -> None:
    """Open the vault (and load all-MiniLM-L6-v2) in a thread, then start the Storage team's agents.

    Args:
        settings: All settings (``state_dir``, ``vault``, ``orchestrator.default_deadline_s``).
        stack: Gets the vault's ``aclose`` (runs after the agents, which live in ``tg``, have stopped).
        bus: Connected bus.
        tg: Task group the agent runners run in.
        agent: Only this agent of the team.
        replicas: Instances per agent (one queue group; they share the vault).
        bridge: The vault, if the caller opened it already (:func:`open_storage_vault`).

    Raises:
        ValueError: The team has no agent named ``agent``.
        vault.VaultLockedError: Another process has the vault directory open.
        vault.IntegrityError: A vault file is corrupted (the error names it).
        vault.KeyEncryptionKeyError: The KEK is malformed or does not match the keyring.
    """
    check_agent("storage", (*STORAGE_AGENT_NAMES, EmbedderAgent.name), agent)
    if bridge is None:
        bridge = await open_storage_vault(settings, stack)
    record_log = None
    if settings.vault_log.mode == "jetstream":
        record_log = RecordLog(bridge, JetStream(bus), settings.vault_log, max_payload_bytes=bus.max_payload)
        await record_log.open()
        await tg.start(record_log.run)  # caught up with the stream before any agent serves

    def build() -> list[StorageAgent]:
        snapshot_dir = settings.state_dir / "vault-snapshots"
        return [
            *storage_agents(
                bridge, snapshot_dir=snapshot_dir, max_payload_bytes=bus.max_payload, log=record_log
            ),
            EmbedderAgent(bridge, max_payload_bytes=bus.max_payload),
        ]

    await start_runners(
        bus,
        tg,
        build,
        agent=agent,
        replicas=replicas,
        mailbox_size=STORAGE_MAILBOX_SIZE,
        concurrency=STORAGE_CONCURRENCY,
    )


async def open_storage_vault(settings: Settings, stack: AsyncExitStack) -> VaultBridge:
    """Open the vault under ``settings.state_dir / "vault"`` in a thread; ``stack`` gets its ``aclose``.

    Raises:
        vault.VaultLockedError: Another process has the vault directory open.
        vault.IntegrityError: A vault file is corrupted (the error names it).
        vault.KeyEncryptionKeyError: The KEK is malformed or does not match the keyring.
    """
    data_dir = settings.state_dir / "vault"
    with anyio.CancelScope(shield=True):
        bridge = await VaultBridge.open(
            data_dir,
            settings.vault,
            timeout_s=settings.orchestrator.default_deadline_s,
            max_threads=STORAGE_THREADS,
        )
    stack.push_async_callback(bridge.aclose)
    log.info("vault opened", data_dir=str(data_dir), dim=bridge.dim, tenants=len(bridge.vault.tenants()))
    return bridge

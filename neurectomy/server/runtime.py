"""Wiring of a Neurectomy process: NATS, agents, orchestrator and the HTTP server.

``serve`` (embedded default): a private nats-server (unless ``nats.url`` is set; supervised: restarted
with its data if it dies, the API answering 503 meanwhile), the generator agent with the Ryot model, the
orchestrator and the API, all in one process; SIGINT/SIGTERM stop the HTTP server, drain the agents,
close NATS and stop the private nats-server, in that order. With the Storage team in the process, durable
task records are sealed with the tenant's vault data key (deleting the tenant crypto-shreds them); a
task reconciler requeues or dead-letters stuck records.

``serve --teams none`` (cluster role): the API and the orchestrator only; agents come from ``run_agents``
processes on any host.

``run_agents`` (distributed): only agent instances, joining an existing NATS server (or cluster).
"""

from __future__ import annotations

import contextlib
import gc
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import AsyncExitStack
from functools import partial
from typing import Any, Protocol

import anyio
import structlog
import uvicorn

from agents import Bus, NatsAuth, NoRespondersError, tracing
from agents._compiled import status as call_path_status
from agents.jetstream import JetStream, JetStreamNotReadyError
from agents.roster import ROSTER
from api import KeyValueStore, create_app
from bridges.tenant_seal import VaultSealer
from bridges.vault import VaultBridge
from neurectomy.server.keys import KEYS_FILE_NAME, KeyStore, local_admin_token
from neurectomy.server.natsserver import CREDENTIALS_FILE_NAME, EmbeddedNats, NatsCredentials, team_role
from neurectomy.server.shared_keys import SharedKeyStore
from neurectomy.server.teams import (
    open_storage_vault,
    start_analysis,
    start_compression,
    start_inference,
    start_storage,
    start_synthesis,
)
from neurectomy.settings import Settings
from orchestrator import Orchestrator, TaskQueue, TaskReconciler, TaskWorker, task_executor

log = structlog.get_logger("neurectomy")


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling, and with one tick a second instead of ten.

    The runtime owns SIGINT/SIGTERM and the shutdown order. uvicorn's main loop wakes every 0.1 s to
    refresh the ``Date`` header once a second and to look at ``should_exit``; here it wakes when the wall
    clock's second changes (the header is then never stale by more than the clock's own resolution) and
    at once on :meth:`request_exit`.
    """

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._exit_requested = anyio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def request_exit(self) -> None:
        """Stop serving (the HTTP server shuts down gracefully)."""
        self.should_exit = True
        self._exit_requested.set()

    async def main_loop(self) -> None:
        while not await self.on_tick(0):  # counter 0: refresh the Date header, then look at should_exit
            with anyio.move_on_after(1.0 - time.time() % 1.0):
                await self._exit_requested.wait()


def embedded_credentials(settings: Settings) -> NatsCredentials:
    """The role credentials of the private nats-server of ``settings.state_dir`` (made on first use)."""
    return NatsCredentials(settings.state_dir / "nats" / CREDENTIALS_FILE_NAME)


async def _embedded_nats(settings: Settings, stack: AsyncExitStack) -> EmbeddedNats | None:
    """Start the private nats-server with role credentials (None when ``nats.url`` names an existing one)."""
    if settings.nats.url:
        return None
    server = EmbeddedNats(
        settings.state_dir / "nats",
        startup_timeout_s=settings.nats.startup_timeout_s,
        credentials=embedded_credentials(settings),
    )
    await stack.enter_async_context(server)
    return server


def _agent_auth(settings: Settings, team: str) -> NatsAuth:
    """Credentials of an agent process of ``team``.

    The settings' own; without any, the private server's role credentials when the state directory
    holds them (an agent process beside ``serve`` on the same host).
    """
    auth = settings.nats.auth()
    if auth != NatsAuth() or not (settings.state_dir / "nats" / CREDENTIALS_FILE_NAME).is_file():
        return auth
    return embedded_credentials(settings).auth(team_role(team))


PRIVATE_STATE_DIRS = ("nats", "sigma", "vault")
"""Subdirectories of the state directory that hold tenants' data (JetStream, ΣLANG chunks, ΣVAULT)."""


def private_state_dirs(settings: Settings) -> None:
    """Create the state directory's data subdirectories with mode 0700 (and tighten existing ones)."""
    for name in PRIVATE_STATE_DIRS:
        path = settings.state_dir / name
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.chmod(0o700)


async def _watch_signals(on_signal: Callable[[], None]) -> None:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            log.info("shutting down", signal=signal.Signals(signum).name)
            on_signal()
            return


class TeamStarter(Protocol):
    """Starts one team's agents on ``bus`` inside ``tg``; resources go on ``stack``."""

    async def __call__(
        self,
        settings: Settings,
        stack: AsyncExitStack,
        bus: Bus,
        tg: anyio.abc.TaskGroup,
        *,
        agent: str | None = None,
        replicas: int = 1,
    ) -> None:
        """Start ``replicas`` instances of the team's agents (only ``agent`` if given).

        Raises:
            ValueError: The team has no agent named ``agent``.
        """
        ...


TEAM_STARTERS: dict[str, TeamStarter] = {
    "inference": start_inference,
    "compression": start_compression,
    "storage": start_storage,
    "analysis": start_analysis,
    "synthesis": start_synthesis,
}
"""Team name → starter. A team's starter raises ValueError for an agent name it does not have."""


def parse_teams(value: str) -> tuple[str, ...]:
    """The teams of ``serve --teams``: ``all``, ``none`` (API and orchestrator only) or ``a,b``.

    Raises:
        ValueError: A name is not a team (the message lists the teams).
    """
    value = value.strip().lower()
    if value == "all":
        return tuple(TEAM_STARTERS)
    if value == "none":
        return ()
    names = tuple(dict.fromkeys(t.strip() for t in value.split(",") if t.strip()))
    unknown = [t for t in names if t not in TEAM_STARTERS]
    if unknown or not names:
        raise ValueError(
            f"--teams: unknown team {', '.join(unknown) or repr(value)} "
            f"(use all, none, or a comma-separated list of {', '.join(TEAM_STARTERS)})"
        )
    return names


async def start_teams(
    settings: Settings,
    stack: AsyncExitStack,
    bus: Bus,
    tg: anyio.abc.TaskGroup,
    *,
    vault: VaultBridge | None = None,
    bus_for: Callable[[str], Bus] | None = None,
) -> None:
    """Start every team in ``settings.teams`` that has a starter.

    Each on ``bus_for(team)`` (default ``bus``); the Storage team on ``vault`` if given.
    """
    for team in settings.teams:
        starter = TEAM_STARTERS.get(team)
        if starter is None:
            log.warning("no agents implemented for team; skipped", team=team)
            continue
        team_bus = bus_for(team) if bus_for is not None else bus
        if team == "storage" and vault is not None:
            await start_storage(settings, stack, team_bus, tg, bridge=vault)
            continue
        if team == "compression":
            await start_compression(settings, stack, team_bus, tg, vault=vault)
            continue
        await starter(settings, stack, team_bus, tg)


async def _start_tasks(
    settings: Settings,
    bus: Bus,
    orchestrator: Orchestrator,
    tg: anyio.abc.TaskGroup,
    vault: VaultBridge | None,
) -> TaskQueue | None:
    """Open the durable task queue, start a worker and the reconciler (None without JetStream).

    Without JetStream ``/v1/tasks`` answers 503. Records are sealed with the tenants' data keys when
    ``vault`` is given.

    Raises:
        JetStreamNotReadyError: JetStream was not ready within ``nats.jetstream_startup_timeout_s``.
    """
    sealer = VaultSealer(vault.vault) if vault is not None else None
    if sealer is None:
        log.warning("no vault in this process: durable task records are stored unsealed")
    try:
        queue = await TaskQueue.open(bus, settings.tasks, sealer=sealer)
    except JetStreamNotReadyError:
        raise  # a cluster that never became ready is a start-up failure, not a JetStream-less setup
    except NoRespondersError as exc:
        log.warning("durable tasks unavailable (is JetStream enabled?)", error=exc.message)
        return None
    execute = task_executor(orchestrator, deadline_s=settings.orchestrator.task_deadline_s)
    await tg.start(TaskWorker(bus, execute, settings.tasks, name="serve", sealer=sealer).run)
    await tg.start(TaskReconciler(bus, settings.tasks, sealer=sealer).run)
    return queue


def freeze_startup_heap() -> int:
    """Collect once, then move every object alive after start-up out of the garbage collector's reach.

    What start-up builds (torch, the model bindings, the roster, the encoders, pydantic's schemas: millions
    of objects) lives as long as the process, yet every full collection walked all of it: 0.28–0.36 s
    holding the interpreter lock once torch is loaded, whichever thread's allocations triggered it, so the
    event loop (and every stream and request on it) stalled that long (`benchmarks/analysis_stalls.py`:
    keyword-extractor's worst loop lag 306 → 25 ms with ``--freeze``). :func:`gc.freeze` (Python ≥ 3.7;
    the technique of Instagram's "Dismissing Python Garbage Collection at Instagram", 2017) moves them to
    a permanent generation; later collections scan only what came after. The cost: garbage among the
    frozen objects (cycles that die later) is never freed — the collection before freezing keeps that
    to what was still referenced at start-up.

    Returns:
        Objects frozen (``gc.get_freeze_count()``).
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


async def serve(settings: Settings, *, on_ready: Callable[[str], Any] | None = None) -> None:
    """Run the embedded service until SIGINT/SIGTERM.

    Args:
        settings: All settings.
        on_ready: Called with the base URL once the HTTP server accepts connections.
    """
    private_state_dirs(settings)
    async with AsyncExitStack() as stack:
        nats = await _embedded_nats(settings, stack)
        if nats is None or nats.credentials is None:  # an existing server: one connection, its credentials
            bus = await Bus.connect(
                str(settings.nats.url), name="neurectomy-serve", auth=settings.nats.auth()
            )
            stack.push_async_callback(bus.aclose)
            role_buses = {"api": bus, "agent": bus, "composer": bus}
        else:  # the private server: one connection per role, each with that role's permissions only
            role_buses = {}
            for role in ("api", "agent", "composer"):
                role_buses[role] = await Bus.connect(
                    nats.url, name=f"neurectomy-serve-{role}", auth=nats.credentials.auth(role)
                )
                stack.push_async_callback(role_buses[role].aclose)
            bus = role_buses["api"]
        for role_bus in role_buses.values():
            role_bus.stream_replicas = settings.nats.stream_replicas
            role_bus.jetstream_startup_timeout_s = settings.nats.jetstream_startup_timeout_s
            role_bus.local_replies = settings.nats.local_replies
        for role in ("api", "composer"):  # the roles NATS lets publish to agent subjects (not "agent")
            role_buses[role].local_requests = settings.nats.local_requests
        tracing.configure("neurectomy-api", settings.tracing)
        async with anyio.create_task_group() as tg:
            tg.start_soon(tracing.collect_spans, bus)  # spans of agent-only processes
            # Agents stop (drain) before the bus closes: the task group exits before the stack unwinds.
            if nats is not None:
                await tg.start(nats.supervise)
            # Without a local Inference team, /health does not wait for a generator that lives elsewhere.
            orchestrator = Orchestrator(
                bus,
                settings.orchestrator,
                specs=ROSTER,
                health_requires_generator="inference" in settings.teams,
            )
            await tg.start(orchestrator.run)
            vault = await open_storage_vault(settings, stack) if "storage" in settings.teams else None
            await start_teams(
                settings, stack, bus, tg, vault=vault, bus_for=lambda team: role_buses[team_role(team)]
            )
            tasks = await _start_tasks(settings, bus, orchestrator, tg, vault)
            guards = _guards(settings)
            if settings.nats.shares_state():
                guards.update(await _shared_guards(settings, bus, tg, guards["keys"]))
            app = create_app(orchestrator, max_body_bytes=settings.api.max_body_bytes, tasks=tasks, **guards)
            config = uvicorn.Config(
                app,
                host=settings.api.host,
                port=settings.api.port,
                log_config=None,
                access_log=False,
                lifespan="on",
            )
            server = _Server(config)

            tg.start_soon(_watch_signals, server.request_exit)
            tg.start_soon(_announce, server, settings, on_ready)
            await server.serve()
            tg.cancel_scope.cancel()


def _guards(settings: Settings) -> dict[str, Any]:
    """Auth (resolved against the bind address), limits, hosts/origins and admin token of ``create_app``."""
    enabled = settings.auth.enabled_for(settings.api.host)
    keys = KeyStore(settings.state_dir / KEYS_FILE_NAME)
    log.info("auth", enabled=enabled, api_keys=len(keys.list_keys()), jwt=settings.auth.jwt_key() is not None)
    if enabled and not keys.list_keys() and settings.auth.jwt_key() is None:
        log.warning(
            "auth is on but there are no API keys and no JWT key: create one with `neurectomy keys create`"
        )
    return {
        "auth": settings.auth.model_copy(update={"enabled": enabled}),
        "keys": keys,
        "limits": settings.limits,
        "allowed_hosts": settings.api.hosts_allowed(),
        "cors_origins": settings.api.cors_origins,
        "admin_token": None if enabled else local_admin_token(settings.state_dir),
    }


async def _shared_guards(
    settings: Settings, bus: Bus, tg: anyio.abc.TaskGroup, file_keys: KeyStore
) -> dict[str, Any]:
    """API keys and rate-limit counts on JetStream KV, shared with the cluster's other API processes.

    Without JetStream: an error if ``nats.shared_state`` asked for it explicitly, else a warning and the
    local key file and per-process counts.

    Raises:
        NoRespondersError: JetStream is unavailable and ``nats.shared_state`` is ``True``.
        JetStreamNotReadyError: JetStream was not ready within ``nats.jetstream_startup_timeout_s``.
    """
    js = JetStream(bus)
    try:
        keys = await SharedKeyStore.open(js, file_keys)
        store = await KeyValueStore.open(js) if settings.limits.rate_limit else None
    except JetStreamNotReadyError:
        raise
    except NoRespondersError as exc:
        if settings.nats.shared_state:
            raise
        log.warning(
            "shared state unavailable (is JetStream enabled?); keys and limits stay local", error=exc.message
        )
        return {}
    await tg.start(keys.run)
    log.info("shared state on JetStream KV", api_keys=len(keys.list_keys()), rate_limits=store is not None)
    return {"keys": keys, "rate_limit_store": store}


async def _announce(
    server: uvicorn.Server, settings: Settings, on_ready: Callable[[str], Any] | None
) -> None:
    while not server.started:
        if server.should_exit:
            return
        await anyio.sleep(0.02)
    port = settings.api.port
    for s in server.servers:
        for sock in s.sockets:
            port = sock.getsockname()[1]
    base = f"http://{settings.api.host}:{port}"
    compiled = call_path_status()
    call_path = "compiled" if compiled.active else f"python: {compiled.reason}"
    log.info("serving", url=base, frozen_objects=freeze_startup_heap(), call_path=call_path)
    if on_ready is not None:
        on_ready(base)


async def run_agents(settings: Settings, *, team: str, agent: str | None = None, replicas: int = 1) -> None:
    """Run agent instances of ``team`` on an existing NATS server until SIGINT/SIGTERM.

    Raises:
        ValueError: ``nats.url`` is not set, or the team/agent has no implementation.
    """
    if not settings.nats.url:
        raise ValueError("--nats-url is required to run agents on their own")
    starter = TEAM_STARTERS.get(team)
    if starter is None:
        raise ValueError(f"no agents implemented for team {team!r} (available: {', '.join(TEAM_STARTERS)})")
    private_state_dirs(settings)
    async with AsyncExitStack() as stack:
        bus = await Bus.connect(
            settings.nats.url, name=f"neurectomy-agents-{team}", auth=_agent_auth(settings, team)
        )
        bus.stream_replicas = settings.nats.stream_replicas
        bus.jetstream_startup_timeout_s = settings.nats.jetstream_startup_timeout_s
        bus.local_replies = settings.nats.local_replies  # composing agents calling agents of this process
        stack.push_async_callback(bus.aclose)
        tracing.configure(f"neurectomy-agents-{team}", settings.tracing, ship=True)
        async with anyio.create_task_group() as tg:
            tg.start_soon(partial(tracing.ship_spans, bus, interval_s=settings.tracing.ship_interval_s))
            await starter(settings, stack, bus, tg, agent=agent, replicas=replicas)
            log.info("agents started", team=team, frozen_objects=freeze_startup_heap())
            await _watch_signals(tg.cancel_scope.cancel)
            tg.cancel_scope.cancel()

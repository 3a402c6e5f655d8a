"""Shared fixtures: the real nats-server and the real model, started once per session."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anyio
import pytest
import structlog

from agents import Bus
from neurectomy.server.logs import console_renderer
from neurectomy.server.natsserver import EmbeddedNats
from ryot import RyotConfig, RyotEngine

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session", autouse=True)
def plain_tracebacks() -> Iterator[None]:
    """The default processors of structlog, rendered by the service's console renderer (plain tracebacks).

    The default renders an exception with rich (installed here) and every frame's locals: 30-80 ms of CPU
    per ``log.exception("agent failed")`` of a real agent's failure (more for the process's first), spent
    in the event loop of the test process that also runs the caller. Niced on a loaded 2-core machine,
    an agent's planned failure so held the loop past the caller's 2 s accept timeout, and the call failed
    over or timed out. A plain traceback costs 0.2-0.8 ms.
    """
    processors = list(structlog.get_config()["processors"])
    processors[-1] = console_renderer()
    structlog.configure(processors=processors)
    yield
    structlog.reset_defaults()


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNats]:
    """A real nats-server (JetStream on) on a free port; terminated, then killed, at the end."""
    server = EmbeddedNats(tmp_path_factory.mktemp("nats"))
    anyio.run(server.start)
    try:
        yield server
    finally:
        anyio.run(server.stop)


@pytest.fixture
async def bus(nats_server: EmbeddedNats) -> AsyncIterator[Bus]:
    """A connection to the session's nats-server."""
    async with await Bus.connect(nats_server.url, name="tests") as connected:
        yield connected


@pytest.fixture(scope="session")
def engine() -> Iterator[RyotEngine]:
    """The packaged Gemma 3 270M Q4_K_M, loaded once."""
    with RyotEngine(RyotConfig(n_ctx=2048)) as eng:
        yield eng


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    path = tmp_path / "state"
    path.mkdir()
    return path


@pytest.fixture(scope="session")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``neurectomy serve`` in its own process, joined (``--nats-url``) to a nats-server of its own (not
    the session's, whose tests start and stop their own agents); yields the service's base URL."""
    from neurectomy.testing import start_serve, stop_serve

    server = EmbeddedNats(tmp_path_factory.mktemp("service-nats"))
    anyio.run(server.start)
    try:
        proc, url = start_serve(tmp_path_factory.mktemp("serve-state"), "--nats-url", server.url)
        try:
            yield url
        finally:
            stop_serve(proc)
    finally:
        anyio.run(server.stop)

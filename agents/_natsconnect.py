"""Connecting to NATS: the client's credentials and TLS (:class:`NatsAuth`), the server list, the connection.

:meth:`agents.messaging.Bus.connect` wraps :func:`connect`; the settings and the embedded server's
launcher build :class:`NatsAuth` (re-exported by :mod:`agents.messaging`).
"""

from __future__ import annotations

import math
import ssl
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import nats.errors
import structlog
from nats.aio.client import Client

__all__ = ("NatsAuth", "PermissionDenials", "connect", "server_urls")

log = structlog.get_logger("neurectomy.nats")


@dataclass(frozen=True, slots=True)
class NatsAuth:
    """How a client proves who it is to NATS, and how it checks the server (all optional).

    Attributes:
        user: User name (with ``password``).
        password: Password of ``user``.
        credentials_file: A ``.creds`` file (user JWT and nkey seed; NATS decentralised auth).
        nkey_seed_file: A file holding an nkey seed (``SU...``).
        tls_ca_file: PEM CA bundle that verifies the server's certificate (turns TLS on).
        tls_cert_file: PEM client certificate (mutual TLS; with ``tls_key_file``).
        tls_key_file: PEM key of ``tls_cert_file``.
    """

    user: str | None = None
    password: str | None = None
    credentials_file: Path | None = None
    nkey_seed_file: Path | None = None
    tls_ca_file: Path | None = None
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None

    def tls_context(self) -> ssl.SSLContext | None:
        """The TLS context (``None`` when neither a CA nor a client certificate is given).

        Raises:
            OSError: A certificate file cannot be read.
            ssl.SSLError: A certificate or key is invalid.
        """
        if self.tls_ca_file is None and self.tls_cert_file is None:
            return None
        context = ssl.create_default_context(cafile=str(self.tls_ca_file) if self.tls_ca_file else None)
        if self.tls_cert_file is not None:
            key = str(self.tls_key_file) if self.tls_key_file else None
            context.load_cert_chain(str(self.tls_cert_file), key)
        return context

    def connect_options(self) -> dict[str, Any]:
        """Keyword arguments of ``nats.aio.client.Client.connect`` for these settings."""
        options: dict[str, Any] = {}
        if self.user is not None:
            options["user"] = self.user
            options["password"] = self.password or ""
        if self.credentials_file is not None:
            options["user_credentials"] = str(self.credentials_file)
        if self.nkey_seed_file is not None:
            options["nkeys_seed"] = str(self.nkey_seed_file)
        context = self.tls_context()
        if context is not None:
            options["tls"] = context
        return options


class PermissionDenials:
    """The permission violations the server reported on one connection (the latest ``keep``).

    NATS refuses a publish the credentials do not allow with an asynchronous ``-ERR 'Permissions Violation
    for Publish to "<subject>"'`` and drops the message, so a request to a denied subject only times out;
    this record lets the caller tell that timeout from a slow server (``agents.jetstream`` uses it to
    fail JetStream set-up at once instead of waiting for a cluster that is not the problem).
    """

    def __init__(self, keep: int = 16) -> None:
        self._seen: deque[tuple[float, str]] = deque(maxlen=keep)

    def record(self, message: str) -> None:
        """Keep ``message`` with the current monotonic time."""
        self._seen.append((time.monotonic(), message))

    def since(self, t: float, subject_prefix: str) -> str | None:
        """The latest violation since monotonic time ``t`` on a subject starting with ``subject_prefix``.

        Case-insensitive (nats-py lower-cases the server's text). ``None`` when there is none.
        """
        needle = f'"{subject_prefix.lower()}'
        for at, message in reversed(self._seen):
            if at < t:
                return None
            if needle in message.lower():
                return message
        return None


def server_urls(url: str) -> list[str]:
    """``nats://a:4222,nats://b:4222`` as a list of server URLs (a cluster's seed servers)."""
    return [u.strip() for u in url.split(",") if u.strip()]


async def connect(
    url: str,
    *,
    name: str,
    connect_timeout_s: float,
    auth: NatsAuth | None,
    denials: PermissionDenials | None = None,
) -> Client:
    """A nats-py client connected to ``url`` (reconnecting for ever once connected).

    Args:
        url: ``nats://host:4222``, or several separated by commas.
        name: Client name (shown by the server).
        connect_timeout_s: How long to try, in seconds.
        auth: Credentials and TLS, or ``None``.
        denials: Where to record the permission violations the server reports (none kept without it).

    Raises:
        ConnectionError: No server can be reached within ``connect_timeout_s`` seconds, or the server
            refused the credentials (``Authorization Violation``).
    """
    connected = False

    async def on_error(exc: Exception) -> None:
        if not connected and "authorization violation" in str(exc).lower():
            raise exc  # refused credentials: fail now instead of retrying them forever
        if denials is not None and "permissions violation" in str(exc).lower():
            denials.record(str(exc))
        log.warning("nats client error", error=f"{type(exc).__name__}: {exc}")

    nc = Client()
    try:
        await nc.connect(
            servers=server_urls(url),
            name=name,
            error_cb=on_error,
            connect_timeout=max(1, math.ceil(connect_timeout_s)),
            allow_reconnect=True,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,  # type: ignore[arg-type]  # seconds; nats-py annotates int, uses float
            **(auth.connect_options() if auth is not None else {}),
        )
    except (OSError, nats.errors.Error) as exc:
        with anyio.CancelScope(shield=True):
            await nc.close()
        raise ConnectionError(f"cannot connect to NATS at {url}: {exc}") from exc
    connected = True
    return nc

"""Root settings: one pydantic-settings model composed of each component's frozen config.

Sources, highest first: environment (``NEURECTOMY_`` prefix, ``__`` between nested names, e.g.
``NEURECTOMY_RYOT__N_CTX=8192``), then a YAML file (``--config``, or ``NEURECTOMY_CONFIG``, or
``$XDG_CONFIG_HOME/neurectomy/config.yaml`` if it exists), then defaults.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from agents.messaging import JETSTREAM_STARTUP_TIMEOUT_S, NatsAuth
from agents.storage import VaultLogConfig
from agents.tracing import TracingConfig
from api import AuthConfig, LimitsConfig
from api._origin import default_allowed_hosts
from bridges import DEFAULT_CHUNK_INTERVAL_S
from orchestrator import OrchestratorConfig, TaskConfig
from ryot import ModelPoolConfig
from sigmalang import SigmaConfig
from vault import VaultConfig


def default_state_dir() -> Path:
    """``$XDG_STATE_HOME/neurectomy`` (``~/.local/state/neurectomy``), via platformdirs."""
    return platformdirs.user_state_path("neurectomy")


def default_config_file() -> Path | None:
    """The YAML settings file to read, if any."""
    explicit = os.environ.get("NEURECTOMY_CONFIG")
    if explicit:
        return Path(explicit)
    candidate = platformdirs.user_config_path("neurectomy") / "config.yaml"
    return candidate if candidate.is_file() else None


class NatsSettings(BaseModel):
    """Where NATS is, and how to authenticate to an existing one.

    A private server (``url`` unset) needs none of the credential settings: it is started with generated
    credentials and per-role permissions (see ``neurectomy.server.natsserver``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str | None = None
    """An existing NATS server (``nats://host:4222``) or a cluster's servers, comma-separated
    (``nats://a:4222,nats://b:4222``; the client picks one and fails over to the others); ``None`` starts
    a private one (JetStream on)."""
    stream_replicas: int = Field(default=1, ge=1, le=5)
    """Replicas of every JetStream stream, KV bucket and object store this process creates (1 on one
    server; 3 on a cluster of three or more, so losing one server loses nothing acknowledged)."""
    startup_timeout_s: float = Field(default=15.0, gt=0)
    """How long the private server may take to become ready, in seconds."""
    jetstream_startup_timeout_s: float = Field(default=JETSTREAM_STARTUP_TIMEOUT_S, ge=0)
    """How long creating each JetStream stream, consumer and KV bucket at start-up waits while the cluster
    cannot answer yet (no meta or stream leader elected, requests timing out), in seconds; each wait is
    logged (``waiting for JetStream``), then the process exits with the last error. ``0``: no waiting.
    Errors that waiting cannot fix (JetStream not enabled, a refused configuration, missing permissions)
    fail at once."""
    local_replies: bool = True
    """Deliver an agent's answers (accept, stream chunks, ``End``/``Error``) to a caller in the same process
    (``serve``: the API, the orchestrator and the composing agents) straight to its inbox, without the
    round trip through nats-server; requests, cancels and everything else still go over NATS, and so do
    answers to callers in other processes. ``false``: every message goes over NATS."""
    local_requests: bool = True
    """Hand a request to an agent instance in the same process (``serve``: the router's choice of the
    least-loaded instance, when that one runs here) straight to its endpoint, without the round trip
    through nats-server; only from the connections whose NATS role may call agents (the API's, the
    composers'). Requests to an agent's shared subject (its queue group), cancels and everything else still
    go over NATS. ``false``: every request goes over NATS."""
    shared_state: bool | None = None
    """Keep API keys, rate-limit counts, chat sessions and ΣLANG chunks in JetStream KV, shared by every
    process of a cluster (see docs/deploy.md). ``None``: on when ``url`` names an existing server or
    cluster, off with the private server (keys in the state directory's file, the rest in process)."""
    user: str | None = None
    """User name on an existing server (with ``password``)."""
    password: SecretStr | None = None
    """Password of ``user``."""
    credentials_file: Path | None = None
    """A NATS ``.creds`` file (user JWT and nkey seed)."""
    nkey_seed_file: Path | None = None
    """A file holding an nkey seed (``SU...``)."""
    tls_ca_file: Path | None = None
    """PEM CA bundle verifying the server's certificate (TLS on)."""
    tls_cert_file: Path | None = None
    """PEM client certificate for mutual TLS (with ``tls_key_file``)."""
    tls_key_file: Path | None = None
    """PEM key of ``tls_cert_file``."""

    def auth(self) -> NatsAuth:
        """These credentials and TLS files as the messaging layer takes them."""
        return NatsAuth(
            user=self.user,
            password=self.password.get_secret_value() if self.password is not None else None,
            credentials_file=self.credentials_file,
            nkey_seed_file=self.nkey_seed_file,
            tls_ca_file=self.tls_ca_file,
            tls_cert_file=self.tls_cert_file,
            tls_key_file=self.tls_key_file,
        )

    def shares_state(self) -> bool:
        """Whether this process keeps its shared state in JetStream KV (``shared_state`` resolved)."""
        return self.shared_state if self.shared_state is not None else bool(self.url)

    @property
    def servers(self) -> list[str]:
        """The server URLs of ``url`` (empty without one)."""
        return [u.strip() for u in (self.url or "").split(",") if u.strip()]


class ApiSettings(BaseModel):
    """The HTTP server."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = "127.0.0.1"
    """Address to bind."""
    port: int = Field(default=8420, ge=0, le=65535)
    """TCP port (0 picks a free one)."""
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    """Largest request body, in bytes (413 beyond)."""
    allowed_hosts: tuple[str, ...] | None = None
    """Hosts a request's ``Host`` header may name (port ignored; ``*.example.com``: its subdomains; ``*``:
    any). ``None``: the loopback names and ``host`` (a wildcard bind needs the public names listed).
    Anything else is answered 400 before a handler runs (DNS rebinding, see docs/security.md)."""
    cors_origins: tuple[str, ...] = ()
    """Origins (``https://app.example.com``) whose pages may call the API from a browser (CORS); none by
    default. Unsafe requests and WebSockets from other origins are refused (403)."""

    def hosts_allowed(self) -> tuple[str, ...]:
        """``allowed_hosts``, or its default for the bind address."""
        return self.allowed_hosts if self.allowed_hosts is not None else default_allowed_hosts(self.host)


class GeneratorSettings(BaseModel):
    """The generator agent instances started by ``serve``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mailbox_size: int = Field(default=32, ge=1)
    """Calls that may wait per instance; one more is refused with 429."""
    concurrency: int | None = Field(default=None, ge=1)
    """Calls an instance hands to Ryot at once (Ryot queues them for its single worker); ``None``: Ryot's
    ``ryot.parallel`` (sequences per decode batch), so every sequence of a batch can be in use."""
    chunk_interval_s: float = Field(default=DEFAULT_CHUNK_INTERVAL_S, ge=0)
    """Least time between two deliveries of a stream's text after its first, in seconds (0: every decode
    step); the first text and the end go at once (see ``bridges._ryot_delivery``)."""


class Settings(BaseSettings):
    """All settings of a Neurectomy process."""

    model_config = SettingsConfigDict(
        env_prefix="NEURECTOMY_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    state_dir: Path = Field(default_factory=default_state_dir)
    """All state (NATS data, later vault and keys) lives here."""
    log_format: Literal["auto", "console", "json"] = "auto"
    """``auto``: colourful console on a TTY, JSON lines otherwise."""
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    """Lowest level logged."""
    nats: NatsSettings = NatsSettings()
    api: ApiSettings = ApiSettings()
    auth: AuthConfig = AuthConfig()
    """API keys (``<state_dir>/api-keys.json``) and JWTs; on by default only off loopback."""
    limits: LimitsConfig = LimitsConfig()
    """Per-key (or per-IP) rate limits; body size, queue depth and deadline limits live in ``api``,
    ``generator`` and ``orchestrator``."""
    ryot: ModelPoolConfig = ModelPoolConfig()
    """Ryot's engine defaults and its named models (``models``, ``default_model``; see docs/ryot.md)."""
    orchestrator: OrchestratorConfig = OrchestratorConfig()
    generator: GeneratorSettings = GeneratorSettings()
    sigma: SigmaConfig = SigmaConfig()
    vault: VaultConfig = VaultConfig()
    vault_log: VaultLogConfig = VaultLogConfig()
    """Where the vault's writes are logged: ``file`` (one Storage process, its WAL) or ``jetstream``
    (a replicated stream every Storage replica applies: ``NEURECTOMY_VAULT_LOG__MODE=jetstream``)."""
    tasks: TaskConfig = TaskConfig()
    """Durable tasks: JetStream stream and bucket names, attempts, ack wait, worker concurrency."""
    teams: tuple[str, ...] = ("inference", "compression", "storage", "analysis", "synthesis")
    """Teams whose agents ``serve`` starts in-process (each must have a starter in the runtime)."""
    tracing: TracingConfig = TracingConfig()
    """OpenTelemetry spans: sampling, the in-memory buffer behind ``/v1/traces``, OTLP export."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Init arguments > environment > YAML file > defaults."""
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = settings_cls.model_config.get("yaml_file") or default_config_file()
        if config_file is not None:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=config_file))
        return tuple(sources)


def load_settings(config_file: Path | None = None, **overrides: object) -> Settings:
    """Read the settings once (where the app is wired); ``config_file`` overrides the YAML location.

    Raises:
        pydantic.ValidationError: A setting is invalid (the message names it).
    """
    if config_file is None:
        return Settings(**overrides)  # type: ignore[arg-type]

    class FromFile(Settings):
        model_config = SettingsConfigDict(yaml_file=config_file)

    return FromFile(**overrides)  # type: ignore[arg-type]

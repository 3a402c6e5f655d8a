"""A pool of named models: each loaded on first use (or at start), freed after an idle time.

Each model is one :class:`~ryot.RyotEngine` (one llama.cpp context, one worker thread). The pool

* loads a model the first time it is asked for (:meth:`ModelPool.get`); callers asking for the same
  model while it loads wait for that one load,
* counts the callers using each model (:meth:`ModelPool.lease`) so that an idle unload never closes an
  engine in use,
* frees models whose ``idle_unload_s`` passed without use (:meth:`ModelPool.unload_idle`, called by
  whoever drives the pool, e.g. ``bridges.RyotBridge``'s idle loop); the next request loads them again,
* reports every model's state and approximate memory (:meth:`ModelPool.status`).

Every method is synchronous and thread safe. :meth:`ModelPool.get` blocks while a model loads (seconds):
call it from a worker thread in async code.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ryot._engine import RyotEngine
from ryot._file_digest import FileDigests
from ryot._gguf import GGUFHeader, read_gguf_header
from ryot._model_status import (
    ModelState,
    ModelStatus,
    _memory_bytes,
    _prefix_cache_bytes,
    _to_wall,
    header_facts,
    kv_cache_bytes,
)
from ryot.config import ModelEntry, ModelPoolConfig, RyotConfig
from ryot.errors import EngineClosedError, ModelLoadError, UnknownModelError

__all__ = ("ModelPool", "ModelState", "ModelStatus", "kv_cache_bytes")

_IDLE_CHECK_MIN_S = 0.05
_IDLE_CHECK_MAX_S = 10.0


@dataclass(slots=True)
class _Model:
    name: str
    entry: ModelEntry
    config: RyotConfig
    load_lock: threading.Lock = field(default_factory=threading.Lock)
    engine: RyotEngine | None = None
    state: ModelState = "unloaded"
    error: str | None = None
    path: Path | None = None
    loaded_at: float | None = None
    last_used: float | None = None
    """``time.monotonic()`` of the last use."""
    loads: int = 0
    in_use: int = 0
    memory_bytes: int = 0
    header: GGUFHeader | None = None
    """What the GGUF's header says (read once its path is known: configured, or found by the load)."""


def _header(path: Path | None, known: GGUFHeader | None) -> GGUFHeader | None:
    """``known`` if it is ``path``'s header, else ``path``'s header read now (``None`` if unreadable)."""
    if path is None or (known is not None and known.path == path):
        return known
    try:
        return read_gguf_header(path)
    except ModelLoadError:
        return None  # loading the model reports why


class ModelPool:
    """Named models, loaded on demand and freed when idle.

    Args:
        entries: The models by name (at least one), in listing order.
        default: Name of the model used when a caller names none; the first entry by default.
        base: Engine settings that entries do not override.

    Raises:
        ValueError: ``entries`` is empty.
        UnknownModelError: ``default`` is not one of ``entries``.
    """

    def __init__(
        self,
        entries: Mapping[str, ModelEntry],
        *,
        default: str | None = None,
        base: RyotConfig | None = None,
    ) -> None:
        if not entries:
            raise ValueError("a model pool needs at least one model")
        base = base or RyotConfig()
        self._models = {
            name: _Model(name, e, e.engine_config(base), header=_header(e.path, None))
            for name, e in entries.items()
        }
        self.default = default if default is not None else next(iter(entries))
        if self.default not in self._models:
            raise UnknownModelError(self.default, self.names)
        self.id = uuid.uuid4().hex[:12]
        """Random id of this pool (see :attr:`ModelStatus.pool`)."""
        self._lock = threading.Lock()
        self._closed = False
        self._digests = FileDigests()

    @classmethod
    def from_config(cls, config: ModelPoolConfig) -> ModelPool:
        """The pool ``config`` describes (nothing is loaded yet; see :meth:`preload`)."""
        return cls(config.resolved_models(), default=config.default_name(), base=config)

    @classmethod
    def from_engine(cls, engine: RyotEngine, *, name: str | None = None) -> ModelPool:
        """A pool of one model: ``engine``, already loaded, never unloaded (the pool closes it).

        Args:
            engine: A loaded engine.
            name: The model's name; ``engine.model_name`` by default.
        """
        name = name or engine.model_name
        entry = ModelEntry(path=engine.model_path, n_ctx=engine.n_ctx, parallel=engine.parallel, preload=True)
        pool = cls({name: entry}, base=engine.config)
        model = pool._models[name]
        model.engine, model.state, model.loads = engine, "loaded", 1
        model.path, model.loaded_at = engine.model_path, time.time()
        model.memory_bytes = _memory_bytes(engine)
        return pool

    # -- names -------------------------------------------------------------------------------------------

    @property
    def names(self) -> tuple[str, ...]:
        """The configured model names, in order."""
        return tuple(self._models)

    def resolve(self, name: str | None) -> str:
        """``name``, checked to be configured; the default model's name for ``None``.

        Raises:
            UnknownModelError: No model has that name (the message lists the configured names).
        """
        if name is None:
            return self.default
        if name not in self._models:
            raise UnknownModelError(name, self.names)
        return name

    def entry(self, name: str | None = None) -> ModelEntry:
        """The configuration of a model (the default one for ``None``)."""
        return self._models[self.resolve(name)].entry

    @property
    def idle_check_interval_s(self) -> float | None:
        """How often :meth:`unload_idle` should run, in seconds; ``None`` when no model is ever unloaded.

        A quarter of the shortest ``idle_unload_s``, between 0.05 and 10 seconds.
        """
        idle = [m.entry.idle_unload_s for m in self._models.values() if m.entry.idle_unload_s is not None]
        if not idle:
            return None
        return min(max(min(idle) / 4, _IDLE_CHECK_MIN_S), _IDLE_CHECK_MAX_S)

    # -- use ---------------------------------------------------------------------------------------------

    def get(self, name: str | None = None) -> RyotEngine:
        """The engine of a model, loading it first if needed (blocks while it loads).

        Callers that ask for a model while it loads wait for that load; it happens once.

        Raises:
            UnknownModelError: No model has that name.
            ModelLoadError: Loading failed (the message names the model; its state becomes ``failed``
                and the next call tries again).
            EngineClosedError: The pool is closed.
        """
        model = self._models[self.resolve(name)]
        with self._lock:
            if self._closed:
                raise EngineClosedError()
            model.last_used = time.monotonic()
            if model.engine is not None:
                return model.engine
        with model.load_lock:
            with self._lock:
                if self._closed:
                    raise EngineClosedError()
                if model.engine is not None:  # loaded by the caller we waited for
                    return model.engine
                model.state, model.error = "loading", None
            engine = self._load(model)
            header = _header(engine.model_path, model.header)
            with self._lock:
                model.header = header
                closed = self._closed
                if not closed:
                    model.engine, model.state, model.loads = engine, "loaded", model.loads + 1
                    model.path, model.loaded_at = engine.model_path, time.time()
                    model.last_used = time.monotonic()
                    model.memory_bytes = _memory_bytes(engine)
                else:
                    model.state = "unloaded"
        if closed:  # closed while loading
            engine.close()
            raise EngineClosedError()
        return engine

    def _load(self, model: _Model) -> RyotEngine:
        try:
            return RyotEngine(model.config)
        except Exception as exc:
            with self._lock:
                model.state, model.error = "failed", str(exc)
            if isinstance(exc, ModelLoadError):
                raise ModelLoadError(exc.path, exc.reason, model=model.name) from exc
            source = str(model.entry.path or model.entry.package)
            raise ModelLoadError(source, f"{type(exc).__name__}: {exc}", model=model.name) from exc
        except BaseException:
            with self._lock:
                model.state = "unloaded"
            raise

    def loaded(self, name: str | None = None) -> RyotEngine | None:
        """The engine of a model if it is loaded now (never loads, never blocks); marks it used.

        Raises:
            UnknownModelError: No model has that name.
        """
        model = self._models[self.resolve(name)]
        with self._lock:
            if model.engine is not None:
                model.last_used = time.monotonic()
            return model.engine

    @contextmanager
    def lease(self, name: str | None = None) -> Iterator[str]:
        """Mark a model as in use for the block (an idle unload skips it); yields its resolved name.

        Entering neither loads nor blocks; use :meth:`get` inside the block for the engine. Leaving
        counts as a use (the idle time starts then).

        Raises:
            UnknownModelError: No model has that name.
        """
        model = self._models[self.resolve(name)]
        with self._lock:
            model.in_use += 1
        try:
            yield model.name
        finally:
            with self._lock:
                model.in_use -= 1
                model.last_used = time.monotonic()

    def preload(self) -> list[str]:
        """Load every model marked ``preload`` that is not loaded yet; returns their names.

        Raises:
            ModelLoadError: A model failed to load (the ones before it stay loaded).
        """
        names = [m.name for m in self._models.values() if m.entry.preload and m.engine is None]
        for name in names:
            self.get(name)
        return names

    # -- status and unloading ----------------------------------------------------------------------------

    def status(self) -> list[ModelStatus]:
        """Every model's state, in configuration order.

        Never waits for a file's SHA-256: the first call after a model's file is known starts its hash
        in the background (:class:`ryot._file_digest.FileDigests`); ``file_sha256`` is ``None`` until done.
        """
        out: list[ModelStatus] = []
        with self._lock:
            for m in self._models.values():
                engine = m.engine
                path = m.path or m.entry.path
                out.append(
                    ModelStatus(
                        name=m.name,
                        state=m.state,
                        default=m.name == self.default,
                        pool=self.id,
                        path=str(path) if path is not None else None,
                        package=m.entry.package,
                        n_ctx=engine.n_ctx if engine is not None else m.config.n_ctx,
                        parallel=engine.parallel if engine is not None else m.config.parallel,
                        preload=m.entry.preload,
                        idle_unload_s=m.entry.idle_unload_s,
                        loaded_at=m.loaded_at if engine is not None else None,
                        last_used_at=_to_wall(m.last_used),
                        loads=m.loads,
                        in_use=m.in_use,
                        active=engine.active if engine is not None else 0,
                        queue_depth=engine.queue_depth if engine is not None else 0,
                        memory_bytes=m.memory_bytes + _prefix_cache_bytes(engine)
                        if engine is not None
                        else 0,
                        error=m.error,
                        **header_facts(m.header),
                        file_sha256=self._digests.get(m.header.path) if m.header is not None else None,
                    )
                )
        return out

    def unload_idle(self, now: float | None = None) -> list[str]:
        """Close the engines of models idle for longer than their ``idle_unload_s``; returns their names.

        A model is idle when nobody holds it (:meth:`lease`), nothing runs or waits in its engine, and
        its last use is at least ``idle_unload_s`` seconds before ``now``.

        Args:
            now: The ``time.monotonic()`` to compare with (now by default).
        """
        now = time.monotonic() if now is None else now
        victims: list[tuple[str, RyotEngine]] = []
        with self._lock:
            for m in self._models.values():
                engine, idle_s = m.engine, m.entry.idle_unload_s
                if engine is None or idle_s is None or m.in_use or engine.active or engine.queue_depth:
                    continue
                if now - (m.last_used or 0.0) < idle_s:
                    continue
                m.engine, m.state, m.loaded_at, m.memory_bytes = None, "unloaded", None, 0
                victims.append((m.name, engine))
        for _, engine in victims:
            engine.close()
        return [name for name, _ in victims]

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def close(self) -> None:
        """Close every loaded engine (cancelling their requests); later calls fail. Idempotent."""
        with self._lock:
            self._closed = True
            engines = [m.engine for m in self._models.values() if m.engine is not None]
            for m in self._models.values():
                m.engine, m.state, m.memory_bytes = None, "unloaded", 0
        for engine in engines:
            engine.close()
        self._digests.close()

    def __enter__(self) -> ModelPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

"""Trained zstd dictionaries: training, ids and a registry to look them up by id.

A dictionary trained on typical messages (zstd's COVER algorithm; Collet, "Zstandard dictionary
builder", lib/dictBuilder/cover.c, after Liao et al., "Effective construction of relative Lempel-Ziv
dictionaries", WWW 2016) lets zstd compress a short message well even though the message alone holds
too little repetition. Frames name the dictionary by id; the decoder needs the same dictionary.

Dictionaries belong to a tenant (trained on its messages, used for its frames only) or are shared
(``tenant=None``: the generic one, or trained without a tenant). A `DictionarySource` lets several
processes share them: the registry publishes what it adds and fetches an id it lacks when a frame
names it, keeping a fetched dictionary only if its bytes hash to that id. Fetched dictionaries are a
cache (the source still holds each one): a registry keeps the least recently used within a byte budget.

A dictionary carries its provenance: ``automatic`` (trained by `sigmalang.autotrain` from the tenant's
traffic) or not (chosen by a user: trained on request or added). The registry's directory keeps the
mark in the file name, so after a restart a tenant whose active dictionary is automatic is still
trained automatically, and only a user's choice is left alone.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import zstandard

from sigmalang.config import SigmaConfig
from sigmalang.errors import MissingDictionaryError

__all__ = ("Dictionary", "DictionaryRegistry", "DictionarySource", "train_dictionary")

_SUFFIX = ".zdict"
_AUTOMATIC = ".auto"  # <id>.auto.zdict: trained from the tenant's traffic (`Dictionary.automatic`)
_FETCHED = ".fetched"  # <id>.fetched.zdict: fetched from the source to decode a frame, never activated


def _dict_id(data: bytes) -> int:
    value = int.from_bytes(hashlib.blake2b(data, digest_size=4).digest(), "little")
    return value or 1


@dataclass(frozen=True, slots=True)
class Dictionary:
    """A zstd dictionary and its ΣLANG id.

    Attributes:
        data: The dictionary bytes (zstd format, or raw content).
        dict_id: Non-zero u32: the BLAKE2b-32 of `data` (so the same bytes always get the same id).
        automatic: Trained automatically from a tenant's traffic (`sigmalang.autotrain`), so automatic
            training may replace it; False (the default) for a dictionary a user chose (trained on
            request, added to a registry, shipped), which automatic training never replaces. Not part
            of equality (the bytes are).
    """

    data: bytes
    dict_id: int = field(init=False, compare=False)
    automatic: bool = field(default=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "dict_id", _dict_id(self.data))

    def __len__(self) -> int:
        return len(self.data)


def train_dictionary(
    samples: Sequence[bytes],
    *,
    size_bytes: int | None = None,
    min_samples: int | None = None,
    level: int = 3,
    threads: int = 0,
    cover: tuple[int, int, int, int] | None = None,
    split_point: float = 0.0,
) -> Dictionary | None:
    """Train a zstd dictionary on example messages.

    Args:
        samples: Example messages, each a bytes object (typical agent messages, 200 B-4 KB).
        size_bytes: Target dictionary size, bytes; default `SigmaConfig.dictionary_size_bytes`,
            capped at the total sample size.
        min_samples: Fewer samples than this and no dictionary is trained; default
            `SigmaConfig.dictionary_min_samples`.
        level: zstd level the dictionary is tuned for.
        threads: Training threads (0 = one; -1 = all cores).
        cover: zstd's fastCover parameters ``(k, d, f, accel)`` (segment size and d-mer size in bytes,
            log2 of the frequency table's size, acceleration 1-10); None lets zstd search ``k`` and
            ``d`` (several times slower: 20-40 ms instead of 3-8 ms on 64-256 KB of samples here).
        split_point: Share of the samples zstd trains on (the first ones); it scores each ``k``/``d``
            tried by coding the rest (1.0: trains and scores on all of them; 0.0: zstd's default, 0.75).

    Returns:
        The dictionary, or None when there are too few samples or zstd cannot build one from them
        (callers then compress without a dictionary).
    """
    defaults = SigmaConfig()
    size = defaults.dictionary_size_bytes if size_bytes is None else size_bytes
    needed = defaults.dictionary_min_samples if min_samples is None else min_samples
    usable: list[bytes | bytearray | memoryview] = [bytes(s) for s in samples if s]
    if len(usable) < needed:
        return None
    total = sum(len(s) for s in usable)
    size = max(256, min(size, total))
    try:
        fast_cover = {} if cover is None else dict(zip(("k", "d", "f", "accel"), cover, strict=True))
        trained = zstandard.train_dictionary(
            size, usable, level=level, threads=threads, split_point=split_point, **fast_cover
        )
    except zstandard.ZstdError:
        return None
    return Dictionary(trained.as_bytes())


class DictionarySource(Protocol):
    """Where a registry publishes its dictionaries and fetches those it lacks (e.g. a shared KV bucket).

    Both methods are called from the registry's caller's thread (a codec worker thread, never an event
    loop) and may block.
    """

    def publish(self, tenant: str | None, dictionary: Dictionary) -> None:
        """Make ``dictionary`` of ``tenant`` (None: shared) available to every registry on this source.

        ``dictionary.automatic`` says whether it was trained automatically; a source may drop the mark
        (a fetched dictionary is never activated, so nothing reads it back).
        """

    def fetch(self, tenant: str | None, dict_id: int) -> bytes | None:
        """The bytes of ``tenant``'s (None: shared) dictionary ``dict_id``, or None if it has none."""


def _tenant_dir(tenant: str) -> str:
    return tenant.encode("utf-8").hex()


class DictionaryRegistry:
    """Dictionaries by tenant and id, optionally persisted in a directory and shared through a source.

    Thread-safe. The most recently added dictionary of a tenant is its *active* one, used by the codec
    for the tenant's new frames (falling back to the shared active one); older ones stay available for
    decoding older frames. A tenant's dictionaries are never used for, or found by, another tenant.

    Files: shared dictionaries as ``<id>.zdict``, a tenant's as ``t/<tenant UTF-8 hex>/<id>.zdict``;
    an automatic one (`Dictionary.automatic`) as ``<id>.auto.zdict``, one fetched from the source as
    ``<id>.fetched.zdict``. On load, the most recently written of a tenant's files other than fetched
    ones becomes its active dictionary (marked automatic if its file is); a file without a mark (also
    any written before the marks existed) is a user's choice, as before.

    Fetched dictionaries are a least-recently-used cache bounded by ``fetched_max_bytes`` (a use is a
    fetch or a `get` that finds one): beyond it the least recently used leave memory and the directory,
    and a later frame naming one fetches it again. A restart loads the most recently fetched within the
    bound. The tenants' own dictionaries (added or trained here) and the shared ones are never evicted.

    Args:
        directory: If given, dictionaries found there are loaded and new ones are written there.
        source: If given, dictionaries loaded from the directory or added are published to it, and
            missing ones fetched from it.
        fetched_max_bytes: Most bytes of fetched dictionaries kept (every tenant's together; the one
            just fetched is kept even if alone it is larger); default
            `SigmaConfig.fetched_dictionary_max_bytes`.

    Raises:
        ValueError: ``fetched_max_bytes`` is negative.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str] | None = None,
        *,
        source: DictionarySource | None = None,
        fetched_max_bytes: int | None = None,
    ) -> None:
        if fetched_max_bytes is None:
            fetched_max_bytes = SigmaConfig().fetched_dictionary_max_bytes
        if fetched_max_bytes < 0:
            raise ValueError(f"fetched_max_bytes must be >= 0, got {fetched_max_bytes}")
        self._lock = threading.Lock()
        self._by_key: dict[tuple[str | None, int], Dictionary] = {}
        self._active: dict[str | None, int] = {}
        # Fetched ones, least recently used first (guarded by _lock), and their bytes in total.
        self._fetched: OrderedDict[tuple[str | None, int], None] = OrderedDict()
        self._fetched_bytes = 0
        self._fetched_max_bytes = fetched_max_bytes
        self._source = source
        self._directory = Path(directory) if directory is not None else None
        if self._directory is not None:
            self._directory.mkdir(parents=True, exist_ok=True)
            found: list[tuple[str | None, Path]] = [(None, p) for p in self._directory.glob(f"*{_SUFFIX}")]
            for sub in self._directory.glob("t/*"):
                try:
                    tenant = bytes.fromhex(sub.name).decode("utf-8")
                except ValueError:
                    continue
                found += [(tenant, p) for p in sub.glob(f"*{_SUFFIX}")]
            for owner, path in sorted(found, key=lambda tp: tp[1].stat().st_mtime_ns):
                mark = Path(path.stem).suffix
                loaded = Dictionary(path.read_bytes(), automatic=mark == _AUTOMATIC)
                if mark != _FETCHED:
                    self._remember(owner, loaded, activate=True)
                    self._unfetch((owner, loaded.dict_id))
                elif (owner, loaded.dict_id) not in self._by_key:
                    self._remember(owner, loaded, activate=False)
                    self._cache_fetched(owner, loaded)
                else:  # held as its own already
                    path.unlink(missing_ok=True)
            if source is not None:  # e.g. trained before the source existed: other processes need them
                for (owner, _), dictionary in self._by_key.items():
                    source.publish(owner, dictionary)

    def _remember(self, tenant: str | None, dictionary: Dictionary, *, activate: bool) -> None:
        self._by_key[(tenant, dictionary.dict_id)] = dictionary
        if activate:
            self._active[tenant] = dictionary.dict_id

    def _cache_fetched(self, tenant: str | None, dictionary: Dictionary) -> None:
        """Count a fetched dictionary as the most recently used, then evict beyond the bound. Locked."""
        key = (tenant, dictionary.dict_id)
        if key not in self._fetched:
            self._fetched_bytes += len(dictionary)
        self._fetched[key] = None
        self._fetched.move_to_end(key)
        while self._fetched_bytes > self._fetched_max_bytes and len(self._fetched) > 1:
            old = next(iter(self._fetched))  # the least recently used
            self._unfetch(old)
            del self._by_key[old]

    def _unfetch(self, key: tuple[str | None, int]) -> None:
        """Take ``key`` out of the fetched cache, if there: its bytes uncounted, its file removed. Locked.

        It stays in `_by_key`: the caller evicts it, or keeps it as the tenant's own (`add`).
        """
        if key not in self._fetched:
            return
        del self._fetched[key]
        self._fetched_bytes -= len(self._by_key[key])
        path = self._path(key[0], key[1], _FETCHED)
        if path is not None:
            path.unlink(missing_ok=True)

    def _path(self, tenant: str | None, dict_id: int, mark: str) -> Path | None:
        if self._directory is None:
            return None
        folder = self._directory if tenant is None else self._directory / "t" / _tenant_dir(tenant)
        return folder / f"{dict_id:08x}{mark}{_SUFFIX}"

    def _write(self, tenant: str | None, dictionary: Dictionary, *, fetched: bool = False) -> None:
        mark = _FETCHED if fetched else _AUTOMATIC if dictionary.automatic else ""
        path = self._path(tenant, dictionary.dict_id, mark)
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(dictionary.data)
            os.replace(tmp, path)

    def add(self, dictionary: Dictionary, *, activate: bool = True, tenant: str | None = None) -> int:
        """Register a dictionary (write it to the directory and publish it to the source, if any).

        Args:
            dictionary: The dictionary.
            activate: Make it the one used for the tenant's new frames.
            tenant: Its tenant; None makes it shared (usable for every tenant).

        Returns:
            Its id.

        Raises:
            Exception: Whatever the source's ``publish`` raises; the dictionary is then not registered
                (published first, so frames made with it decode wherever the source reaches).
        """
        if self._source is not None:
            self._source.publish(tenant, dictionary)
        with self._lock:
            self._unfetch((tenant, dictionary.dict_id))  # held as fetched: now the tenant's own
            self._remember(tenant, dictionary, activate=activate)
            self._write(tenant, dictionary)
        return dictionary.dict_id

    def add_builtin(self, dictionary: Dictionary) -> int:
        """Register a shared dictionary that ships with the code (never written or published, not active).

        Returns:
            Its id.
        """
        with self._lock:
            self._unfetch((None, dictionary.dict_id))
            self._by_key.setdefault((None, dictionary.dict_id), dictionary)
        return dictionary.dict_id

    def get(self, dict_id: int, *, tenant: str | None = None) -> Dictionary:
        """Return ``tenant``'s dictionary ``dict_id`` (or the shared one), fetching it from the source.

        A fetched dictionary is kept (and written to the directory) but not activated, while it is
        among the most recently used within the registry's ``fetched_max_bytes``; each call that finds
        it counts as a use.

        Raises:
            MissingDictionaryError: Neither this registry nor its source holds it for ``tenant``, or
                the source's bytes do not hash to ``dict_id`` (never used, so never wrong bytes).
        """
        key = (tenant, dict_id)  # (called for every frame: no loop, no lock)
        found = self._by_key.get(key)
        if found is None and tenant is not None:
            key = (None, dict_id)
            found = self._by_key.get(key)
        if found is not None:
            if self._fetched and key in self._fetched:
                try:  # one C call, atomic under the GIL like the lookups above (the lock: 2x the get)
                    self._fetched.move_to_end(key)
                except KeyError:  # evicted (or added as the tenant's own) meanwhile
                    pass
            return found
        if self._source is not None:
            for owner in dict.fromkeys((tenant, None)):
                data = self._source.fetch(owner, dict_id)
                if data is None:
                    continue
                dictionary = Dictionary(data)
                if dictionary.dict_id != dict_id:
                    raise MissingDictionaryError(dict_id, "the shared copy does not match its id")
                with self._lock:
                    if (owner, dict_id) not in self._by_key:  # (else added or fetched meanwhile)
                        self._remember(owner, dictionary, activate=False)
                        self._write(owner, dictionary, fetched=True)
                        self._cache_fetched(owner, dictionary)
                return dictionary
        raise MissingDictionaryError(dict_id)

    def forget_tenant(self, tenant: str) -> int:
        """Drop every dictionary of ``tenant`` from memory and from the directory (shared ones stay).

        A tenant's trained dictionary holds excerpts of its messages; once the tenant is deleted, its
        frames that name one fail with `MissingDictionaryError` here. A copy in the source is not
        removed (the service's source seals a tenant's with the tenant's key, which the shred destroys).

        Returns:
            How many dictionaries were dropped.
        """
        with self._lock:
            keys = [key for key in self._by_key if key[0] == tenant]
            for key in keys:
                self._unfetch(key)
                del self._by_key[key]
            self._active.pop(tenant, None)
            folder = None if self._directory is None else self._directory / "t" / _tenant_dir(tenant)
            if folder is not None and folder.is_dir():
                shutil.rmtree(folder)
        return len(keys)

    def prune_automatic(self, tenant: str, keep: int) -> list[int]:
        """Drop ``tenant``'s oldest automatic dictionaries beyond the ``keep`` latest (never its active one).

        Each dropped one leaves memory and the directory; frames naming it then decode only if the
        source still holds it (the service's KV bucket keeps every published dictionary until the tenant
        is deleted), else fail with `MissingDictionaryError`.

        Args:
            tenant: Whose automatic dictionaries (`Dictionary.automatic`) to bound.
            keep: How many to keep, the most recently registered first (at least 1).

        Returns:
            The ids dropped, oldest first.
        """
        with self._lock:
            active = self._active.get(tenant)
            automatic = [key for key, d in self._by_key.items() if key[0] == tenant and d.automatic]
            older = [key for key in automatic if key[1] != active]
            drop = older[: max(0, len(automatic) - max(keep, 1))]
            for key in drop:
                del self._by_key[key]
                path = self._path(tenant, key[1], _AUTOMATIC)
                if path is not None:
                    path.unlink(missing_ok=True)
        return [dict_id for _, dict_id in drop]

    @property
    def active(self) -> Dictionary | None:
        """The shared dictionary used for new frames of tenants without one of their own, or None."""
        return self.active_for(None)

    def active_for(self, tenant: str | None) -> Dictionary | None:
        """The dictionary used for ``tenant``'s new frames: its own active one, else the shared one."""
        with self._lock:
            for owner in dict.fromkeys((tenant, None)):
                dict_id = self._active.get(owner)
                if dict_id is not None:
                    return self._by_key[(owner, dict_id)]
            return None

    def own_active(self, tenant: str) -> Dictionary | None:
        """``tenant``'s own active dictionary (not the shared one), or None if it has none."""
        with self._lock:
            dict_id = self._active.get(tenant)
            return None if dict_id is None else self._by_key[(tenant, dict_id)]

    def has(self, dict_id: int, *, tenant: str | None = None) -> bool:
        """Whether ``dict_id`` is held here for ``tenant`` (its own or shared), without fetching."""
        return (tenant, dict_id) in self._by_key or (None, dict_id) in self._by_key

    def __contains__(self, dict_id: object) -> bool:
        return any(key[1] == dict_id for key in list(self._by_key))

    def __iter__(self) -> Iterator[int]:
        return iter(list(dict.fromkeys(key[1] for key in list(self._by_key))))

    def __len__(self) -> int:
        return len(self._by_key)

    @classmethod
    def of(cls, dictionaries: Iterable[Dictionary]) -> DictionaryRegistry:
        """Build an in-memory registry of shared dictionaries (the last one becomes active)."""
        registry = cls()
        for dictionary in dictionaries:
            registry.add(dictionary)
        return registry

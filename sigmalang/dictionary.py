"""Trained zstd dictionaries: training, ids and a registry to look them up by id.

A dictionary trained on typical messages (zstd's COVER algorithm; Collet, "Zstandard dictionary
builder", lib/dictBuilder/cover.c, after Liao et al., "Effective construction of relative Lempel-Ziv
dictionaries", WWW 2016) lets zstd compress a short message well even though the message alone holds
too little repetition. Frames name the dictionary by id; the decoder needs the same dictionary.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import zstandard

from sigmalang.config import SigmaConfig
from sigmalang.errors import MissingDictionaryError

__all__ = ("Dictionary", "DictionaryRegistry", "train_dictionary")

_SUFFIX = ".zdict"


def _dict_id(data: bytes) -> int:
    value = int.from_bytes(hashlib.blake2b(data, digest_size=4).digest(), "little")
    return value or 1


@dataclass(frozen=True, slots=True)
class Dictionary:
    """A zstd dictionary and its ΣLANG id.

    Attributes:
        data: The dictionary bytes (zstd format, or raw content).
        dict_id: Non-zero u32: the BLAKE2b-32 of `data` (so the same bytes always get the same id).
    """

    data: bytes
    dict_id: int = field(init=False, compare=False)

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
        trained = zstandard.train_dictionary(size, usable, level=level, threads=threads)
    except zstandard.ZstdError:
        return None
    return Dictionary(trained.as_bytes())


class DictionaryRegistry:
    """Dictionaries by id, optionally persisted as ``<id>.zdict`` files in a directory.

    Thread-safe. The most recently added dictionary is the *active* one, used by the codec for new
    frames; older ones stay available for decoding older frames.

    Args:
        directory: If given, dictionaries found there are loaded and new ones are written there.
    """

    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        self._lock = threading.Lock()
        self._by_id: dict[int, Dictionary] = {}
        self._active: int | None = None
        self._directory = Path(directory) if directory is not None else None
        if self._directory is not None:
            self._directory.mkdir(parents=True, exist_ok=True)
            for path in sorted(self._directory.glob(f"*{_SUFFIX}"), key=lambda p: p.stat().st_mtime_ns):
                self._remember(Dictionary(path.read_bytes()))

    def _remember(self, dictionary: Dictionary) -> None:
        self._by_id[dictionary.dict_id] = dictionary
        self._active = dictionary.dict_id

    def add(self, dictionary: Dictionary, *, activate: bool = True) -> int:
        """Register a dictionary (and write it to the directory, if any).

        Args:
            dictionary: The dictionary.
            activate: Make it the one used for new frames.

        Returns:
            Its id.
        """
        with self._lock:
            previous = self._active
            self._remember(dictionary)
            if not activate:
                self._active = previous
            if self._directory is not None:
                path = self._directory / f"{dictionary.dict_id:08x}{_SUFFIX}"
                if not path.exists():
                    tmp = path.with_suffix(".tmp")
                    tmp.write_bytes(dictionary.data)
                    os.replace(tmp, path)
        return dictionary.dict_id

    def add_builtin(self, dictionary: Dictionary) -> int:
        """Register a dictionary that ships with the code (never written to the directory, not active).

        Returns:
            Its id.
        """
        with self._lock:
            self._by_id.setdefault(dictionary.dict_id, dictionary)
        return dictionary.dict_id

    def get(self, dict_id: int) -> Dictionary:
        """Return the dictionary with this id.

        Raises:
            MissingDictionaryError: No such dictionary is registered.
        """
        try:
            return self._by_id[dict_id]
        except KeyError:
            raise MissingDictionaryError(dict_id) from None

    @property
    def active(self) -> Dictionary | None:
        """The dictionary used for new frames, or None."""
        with self._lock:
            return None if self._active is None else self._by_id[self._active]

    def __contains__(self, dict_id: object) -> bool:
        return dict_id in self._by_id

    def __iter__(self) -> Iterator[int]:
        return iter(list(self._by_id))

    def __len__(self) -> int:
        return len(self._by_id)

    @classmethod
    def of(cls, dictionaries: Iterable[Dictionary]) -> DictionaryRegistry:
        """Build an in-memory registry from dictionaries (the last one becomes active)."""
        registry = cls()
        for dictionary in dictionaries:
            registry.add(dictionary)
        return registry

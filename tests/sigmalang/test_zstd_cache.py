"""The per-thread zstd objects of `sigmalang._zstd` stay bounded as dictionaries come and go."""

from __future__ import annotations

import threading

import pytest

from sigmalang import _zstd

_TEXT = b"the tenant's system prompt, tool schemas and retrieved passages, sent again and again. " * 40


def _in_a_new_thread(work: object) -> None:
    """Run `work` on a fresh thread (an empty per-thread cache) and re-raise what it raised."""
    failures: list[BaseException] = []

    def run() -> None:
        try:
            work()  # type: ignore[operator]
        except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
            failures.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if failures:
        raise failures[0]


def test_a_thread_keeps_at_most_max_cached_zstd_objects(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_zstd, "MAX_CACHED", 4)
    sizes: list[int] = []

    def work() -> None:
        for dict_id in range(1, 13):  # twelve dictionaries, three objects each: 36 entries unbounded
            content = _TEXT + dict_id.to_bytes(4, "little") * 64
            zdict = _zstd.trained_dict(content, dict_id)
            frame = _zstd.compress(_TEXT, 3, zdict, dict_id)
            assert _zstd.decompress(frame, len(_TEXT), zdict, dict_id) == _TEXT
            sizes.append(len(_zstd._cache()))
        # an evicted dictionary's objects are made again and still decode its frames
        first = _zstd.trained_dict(_TEXT + (1).to_bytes(4, "little") * 64, 1)
        frame = _zstd.compress(_TEXT, 3, first, 1)
        assert _zstd.decompress(frame, len(_TEXT), first, 1) == _TEXT

    _in_a_new_thread(work)
    assert max(sizes) <= 4
    assert len(sizes) == 12

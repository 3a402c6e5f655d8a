"""Logging set-up: the default stream follows ``sys.stderr`` when it is swapped after configuration."""

from __future__ import annotations

import io
import sys

import pytest
import structlog

from neurectomy.server.logs import configure_logging


def test_default_stream_follows_a_swapped_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = io.StringIO(), io.StringIO()
    saved = structlog.get_config()
    monkeypatch.setattr(sys, "stderr", first)
    try:
        configure_logging("json", "info")
        first.close()  # as a test runner's capture file is closed after its test
        monkeypatch.setattr(sys, "stderr", second)
        structlog.get_logger("neurectomy.test").info("after the swap", n=1)
        assert '"event": "after the swap"' in second.getvalue()
    finally:
        structlog.configure(**saved)  # the session's configuration (tests/conftest.py), not the defaults

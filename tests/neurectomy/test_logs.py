"""Logging set-up: the default stream follows ``sys.stderr`` when it is swapped after configuration, and an
exception is logged without its frames' local variables."""

from __future__ import annotations

import io
import sys
from typing import Literal

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


@pytest.mark.parametrize("fmt", ["console", "json"])
def test_an_exception_is_logged_without_its_frames_local_variables(fmt: Literal["console", "json"]) -> None:
    out = io.StringIO()
    saved = structlog.get_config()
    try:
        configure_logging(fmt, "info", stream=out)

        def fail(api_key: str) -> None:
            raise ValueError("agent failed")

        try:
            fail("-".join(("sk", "local", "secret", "0042")))  # the value is in no source line
        except ValueError:
            structlog.get_logger("neurectomy.test").exception("agent failed")
        text = out.getvalue()
        assert "ValueError: agent failed" in text
        assert "in fail" in text  # the traceback names the frame
        assert "sk-local-secret-0042" not in text  # but not its locals
    finally:
        structlog.configure(**saved)

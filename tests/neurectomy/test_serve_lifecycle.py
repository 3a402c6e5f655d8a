"""`neurectomy serve` with its embedded nats-server leaves no process behind."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import psutil

from neurectomy.testing import start_serve, stop_serve


def _nats_child(pid: int) -> psutil.Process:
    children = [c for c in psutil.Process(pid).children() if c.name() == "nats-server"]
    assert len(children) == 1, children
    return children[0]


def _gone(proc: psutil.Process, within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


def test_sigterm_stops_everything_and_state_lives_in_the_state_dir(state_dir: Path) -> None:
    proc, url = start_serve(state_dir)
    nats = _nats_child(proc.pid)
    assert (
        httpx.post(f"{url}/v1/generate", json={"prompt": "Hi", "max_tokens": 2}, timeout=30).status_code
        == 200
    )
    assert str(state_dir / "nats" / "jetstream") in " ".join(nats.cmdline())
    assert "-js" in nats.cmdline()
    assert stop_serve(proc) == 0
    assert _gone(nats, within_s=5)
    assert (state_dir / "nats" / "jetstream").is_dir()
    log = (state_dir / "serve.log").read_text()
    assert '"event": "nats-server stopped"' in log


def test_sigint_stops_everything(state_dir: Path) -> None:
    proc, _ = start_serve(state_dir)
    nats = _nats_child(proc.pid)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(20) == 0
    assert _gone(nats, within_s=5)


def test_sigkill_of_serve_still_takes_nats_server_down(state_dir: Path) -> None:
    proc, _ = start_serve(state_dir)
    nats = _nats_child(proc.pid)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    assert _gone(nats, within_s=5)

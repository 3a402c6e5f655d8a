"""Running ``neurectomy serve`` as a real subprocess (end-to-end tests, benchmarks, scripts)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_serve(state_dir: Path, *extra: str, port: int | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """Start ``python -m neurectomy serve`` and wait until ``/health`` answers 200.

    Args:
        state_dir: State directory of the service (its log goes to ``state_dir/serve.log``).
        extra: More ``serve`` arguments, e.g. ``("--nats-url", url)``.
        port: HTTP port; a free one by default.

    Returns:
        The process and its base URL.

    Raises:
        RuntimeError: The service exited or was not healthy within 90 s (the message holds its log).
    """
    port = port or free_port()
    env = {**os.environ, "NEURECTOMY_STATE_DIR": str(state_dir), "NEURECTOMY_LOG_FORMAT": "json"}
    with (state_dir / "serve.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "neurectomy", "serve", "--port", str(port), *extra],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"serve exited with {proc.returncode}: {(state_dir / 'serve.log').read_text()}"
            )
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    stop_serve(proc)
    raise RuntimeError(f"serve not healthy in time: {(state_dir / 'serve.log').read_text()}")


def stop_serve(proc: subprocess.Popen[bytes], timeout_s: float = 20) -> int:
    """SIGTERM, then SIGKILL if it does not exit in time; returns the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait()

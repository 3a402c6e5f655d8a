"""Starting ``neurectomy serve`` as a real subprocess for end-to-end tests."""

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
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_serve(state_dir: Path, *extra: str, port: int | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """Start ``python -m neurectomy serve`` and wait until /health answers 200."""
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

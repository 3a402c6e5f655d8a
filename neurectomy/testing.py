"""Running ``neurectomy serve`` as a real subprocess (end-to-end tests, benchmarks, scripts)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_serve(
    state_dir: Path, *extra: str, port: int | None = None, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """Start ``python -m neurectomy serve`` and wait until ``/health`` answers 200.

    Args:
        state_dir: State directory of the service (its log goes to ``state_dir/serve.log``).
        extra: More ``serve`` arguments, e.g. ``("--nats-url", url)``.
        port: HTTP port; a free one by default.
        env: More environment variables (settings, e.g. ``NEURECTOMY_TEAMS``).

    Returns:
        The process and its base URL.

    Raises:
        RuntimeError: The service exited or was not healthy within 90 s (the message holds its log).
    """
    proc, url = spawn_serve(state_dir, *extra, port=port, env=env)
    wait_healthy(proc, url, state_dir)
    return proc, url


def spawn_serve(
    state_dir: Path, *extra: str, port: int | None = None, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """Start ``python -m neurectomy serve`` without waiting for it (arguments as :func:`start_serve`).

    Returns:
        The process and its base URL (not answering yet).
    """
    port = port or free_port()
    env = {
        "NEURECTOMY_VAULT__KEYS__KEK_DIR": str(state_dir / "vault-keys"),  # not the user's ~/.config
        **os.environ,
        "NEURECTOMY_STATE_DIR": str(state_dir),
        "NEURECTOMY_LOG_FORMAT": "json",
        **(env or {}),
    }
    with (state_dir / "serve.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "neurectomy", "serve", "--port", str(port), *extra],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    return proc, f"http://127.0.0.1:{port}"


@contextmanager
def _killed_on_error(proc: subprocess.Popen[bytes]) -> Iterator[None]:
    """Kill and reap ``proc`` if the block raises.

    E.g. when the test's timeout interrupts the wait for its start (``pytest-timeout`` raises in the waiting
    thread): no process outlives the test that started it, nor warns ``subprocess ... is still running``
    at exit (an error with warnings as errors).
    """
    try:
        yield
    except BaseException:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        raise


def wait_healthy(proc: subprocess.Popen[bytes], url: str, state_dir: Path, timeout_s: float = 90) -> None:
    """Wait until the ``serve`` process ``proc`` answers 200 on ``url``/health.

    Raises:
        RuntimeError: It exited or was not healthy within ``timeout_s`` seconds (stopped then; the message
            holds its log). Whatever interrupts the wait stops it too (killed).
    """
    deadline = time.monotonic() + timeout_s
    with _killed_on_error(proc):
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"serve exited with {proc.returncode}: {(state_dir / 'serve.log').read_text()}"
                )
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    return
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


def start_agents(
    state_dir: Path,
    team: str,
    nats_url: str,
    *extra: str,
    expect: int,
    env: dict[str, str] | None = None,
    timeout_s: float = 90,
) -> subprocess.Popen[bytes]:
    """Start ``python -m neurectomy agent --team TEAM`` and wait until ``expect`` agent instances run.

    Args:
        state_dir: State directory of the process (its log goes to ``state_dir/agents-<team>.log``).
        team: The team.
        nats_url: The NATS server to join.
        extra: More ``agent`` arguments (``--agent``, ``--replicas``).
        expect: Agent instances to wait for ("agent started" log lines).
        env: More environment variables.
        timeout_s: How long to wait, in seconds.

    Raises:
        RuntimeError: The process exited or did not start ``expect`` instances in time (with its log).
            Whatever interrupts the wait stops the process too (killed).
    """
    log_path = state_dir / f"agents-{team}.log"
    full_env = {
        "NEURECTOMY_VAULT__KEYS__KEK_DIR": str(state_dir / "vault-keys"),  # not the user's ~/.config
        **os.environ,
        "NEURECTOMY_STATE_DIR": str(state_dir),
        "NEURECTOMY_LOG_FORMAT": "json",
        **(env or {}),
    }
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "neurectomy", "agent", "--team", team, "--nats-url", nats_url, *extra],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=full_env,
        )
    deadline = time.monotonic() + timeout_s
    with _killed_on_error(proc):
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"agent process exited with {proc.returncode}: {log_path.read_text()}")
            if log_path.read_text(errors="replace").count('"agent started"') >= expect:
                return proc
            time.sleep(0.1)
    stop_serve(proc)
    raise RuntimeError(f"agents not started in time: {log_path.read_text()}")

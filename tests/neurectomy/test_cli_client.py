"""The CLI's client commands against a server that is down: one red line, exit code 1, no traceback.

(With auth on, the key from ``NEURECTOMY_API_KEY``: see ``tests/api/test_auth_limits_metrics.py``.)
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from neurectomy.testing import free_port

COMMANDS = [
    ["ask", "hi"],
    ["ask", "hi", "--model", "gemma"],
    ["models"],
    ["ps"],
    ["agents"],
    ["chat"],
    ["task", "some goal"],
    ["vault", "stats"],
]


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a))
def test_server_down_is_one_line_and_exit_1(args: list[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    env = {**os.environ, "NEURECTOMY_BASE_URL": url, "NEURECTOMY_API_KEY": "k-unused"}
    done = subprocess.run(
        [sys.executable, "-m", "neurectomy", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        input="",
    )
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"cannot reach {url}") and "Connection refused" in lines[0]
    assert "Traceback" not in done.stderr + done.stdout


def test_base_url_option_wins_over_the_environment() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    env = {**os.environ, "NEURECTOMY_BASE_URL": "http://127.0.0.1:1"}
    done = subprocess.run(
        [sys.executable, "-m", "neurectomy", "models", "--base-url", url],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 1 and f"cannot reach {url}" in done.stderr

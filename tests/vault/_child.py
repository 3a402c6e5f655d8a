"""A writer process for the ΣVAULT crash tests: started with ``python -c``, killed -9, reaped.

The kill-9 tests (durability, group commit, background snapshots) each run their own child script that
prints one id per acknowledged write; this is how they start, read and end it.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest


@contextmanager
def killed_child(script: str, *args: str) -> Iterator[subprocess.Popen[str]]:
    """``python -c script *args``, its output piped as text; killed -9 and reaped when the block ends."""
    proc = subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait(timeout=10)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


def child_line(proc: subprocess.Popen[str]) -> str:
    """The child's next stdout line, stripped; the test fails with the child's stderr if it ended."""
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        pytest.fail(proc.stderr.read() if proc.stderr else "child ended")
    return line.strip()

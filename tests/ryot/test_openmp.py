"""libgomp's wait policy: importing ryot sets it before llama.cpp loads, and an operator's value wins.

Each case starts a fresh interpreter (libgomp reads its environment once, when it is loaded) with
``OMP_DISPLAY_ENV=VERBOSE``, which makes libgomp itself print the settings it adopted.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def adopted(code: str, **env: str) -> dict[str, str]:
    """libgomp's ``OMP_WAIT_POLICY`` and ``GOMP_SPINCOUNT`` after running ``code`` in a fresh interpreter."""
    base = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    out = subprocess.run(  # noqa: S603 - this interpreter, fixed code
        [sys.executable, "-c", code],
        env={**base, "PYTHONPATH": str(ROOT), "OMP_DISPLAY_ENV": "VERBOSE", **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    values = {}
    for line in out.stderr.splitlines():
        name, sep, value = line.strip().partition(" = ")
        if sep and name in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT"):
            values[name] = value.strip("'")
    return values


def test_importing_ryot_makes_llama_cpps_threads_spin_briefly() -> None:
    assert adopted("import ryot") == {"OMP_WAIT_POLICY": "PASSIVE", "GOMP_SPINCOUNT": "10000"}


def test_without_ryot_libgomp_spins_300000_times() -> None:
    """The default the service replaces (what ``import llama_cpp`` alone gets)."""
    assert adopted("import llama_cpp") == {"OMP_WAIT_POLICY": "PASSIVE", "GOMP_SPINCOUNT": "300000"}


@pytest.mark.parametrize(
    ("env", "spincount"),
    [
        ({"OMP_WAIT_POLICY": "active"}, "30000000000"),
        ({"OMP_WAIT_POLICY": "passive"}, "0"),
        ({"GOMP_SPINCOUNT": "500"}, "500"),
    ],
)
def test_an_operators_setting_wins(env: dict[str, str], spincount: str) -> None:
    assert adopted("import ryot", **env)["GOMP_SPINCOUNT"] == spincount


def test_after_llama_cpp_loaded_configure_reports_it_changed_nothing() -> None:
    code = "import llama_cpp, os, ryot._openmp as m; print(m.configure(), 'GOMP_SPINCOUNT' in os.environ)"
    base = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    out = subprocess.run(  # noqa: S603 - this interpreter, fixed code
        [sys.executable, "-c", code],
        env={**base, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert out.stdout.split() == ["False", "False"]

"""``from neurectomy import Client`` loads the SDK only: none of the service, its web framework or engines.

Checked in a fresh interpreter, since this test process has long imported everything.
"""

from __future__ import annotations

import json
import subprocess
import sys

SERVICE_MODULES = (
    "neurectomy.server",
    "neurectomy.cli",
    "neurectomy.settings",
    "api.app",
    "api._auth",
    "api._metrics",
    "litestar",
    "uvicorn",
    "torch",
    "faiss",
    "sigmalang",
    "vault",
    "orchestrator",
    "agents",
    "bridges",
    "ryot",
    "nats",
    "llama_cpp",
)
"""Modules (and their submodules) the SDK must not load."""

TASK_WIRE_MODULES = frozenset(
    {
        "orchestrator",
        "orchestrator._task_models",
        "agents",
        "agents.plans",
        "agents._plan_refs",
        "agents.protocol",
        "agents._attachment",
        "agents.limits",
        "agents.storage",
        "agents.storage.wire",
        "agents.compression",
        "agents.compression.wire",
        "agents._compiled",
    }
)
"""The exception: the wire models' one definitions (pure pydantic: the task record, the generator's and
the Storage team's wire models, the compression report), the attachment helpers ``agents.protocol``
re-exports (``agents._attachment``: a leaf, compiled with the call path when built), the lazy package roots
above them, and the finder those roots install for the compiled call path (standard library only)."""

_PROBE = """
import json, sys
import neurectomy
from neurectomy import Client, AsyncClient, TaskRecord
assert Client.__module__ == "neurectomy.sdk.client", Client.__module__
print(json.dumps(sorted(sys.modules)))
"""


def _loaded_after_import() -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True, timeout=120
    )
    loaded: list[str] = json.loads(done.stdout)
    return loaded


def test_importing_the_client_loads_no_service_code() -> None:
    loaded = _loaded_after_import()
    assert "neurectomy.sdk.client" in loaded  # the probe did import the SDK
    offending = [
        m
        for m in loaded
        if any(m == s or m.startswith(f"{s}.") for s in SERVICE_MODULES) and m not in TASK_WIRE_MODULES
    ]
    assert offending == []

"""Fixtures of the API tests: a real Chromium for page tests (Debian's ``chromium`` driven by Playwright's
Python API).

Playwright's own browser download is not used (``executable_path`` points at the system browser). Without
a ``chromium`` binary the tests are skipped with the reason, unless ``NEURECTOMY_REQUIRE_BROWSER=1``
(``make test`` sets it after installing the package), where a missing browser fails them.
Screenshots go to ``$NEURECTOMY_TEST_ARTIFACTS`` (default: pytest's temporary directory).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import ollama
import pytest

CHROMIUM_ARGS = (
    "--headless=new",
    "--no-sandbox",  # runs as root in CI
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
)


def chromium_path() -> str:
    """The system Chromium, or skip (fail when ``NEURECTOMY_REQUIRE_BROWSER=1``)."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        reason = "Debian's chromium is not installed (`make browsers` installs it as root)"
        if os.environ.get("NEURECTOMY_REQUIRE_BROWSER") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return path


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A headless Chromium with a fresh profile, one per test module; yields a Playwright context."""
    sync_api = pytest.importorskip("playwright.sync_api")
    executable = chromium_path()
    user_data_dir = tmp_path_factory.mktemp("chromium-profile")
    with sync_api.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(user_data_dir),
            executable_path=executable,
            headless=True,
            args=list(CHROMIUM_ARGS),
            viewport={"width": 1600, "height": 1200},
        )
        try:
            yield context
        finally:
            context.close()


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: ``$NEURECTOMY_TEST_ARTIFACTS`` or a pytest temporary directory."""
    configured = os.environ.get("NEURECTOMY_TEST_ARTIFACTS")
    path = Path(configured) if configured else tmp_path_factory.mktemp("artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave out the parameter combinations a test module says it does not run.

    A module may define ``uncollected_combination(params) -> bool`` (``params``: the test's
    ``callspec.params``, fixture parameters included); the combinations it returns True for are
    deselected (reported as such), not collected and skipped.
    """
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        rule = getattr(getattr(item, "module", None), "uncollected_combination", None)
        callspec = getattr(item, "callspec", None)
        (drop if rule is not None and callspec is not None and rule(callspec.params) else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="module")
def ollama_client(service: str) -> Iterator[ollama.Client]:
    """The ``ollama`` package's client of the session's ``neurectomy serve``."""
    c = ollama.Client(host=service, timeout=120)
    try:
        yield c
    finally:
        c.close()


@pytest.fixture(scope="module")
def served_model(service: str) -> str:
    """The name of the model the session's ``neurectomy serve`` serves by default."""
    name: str = httpx.get(f"{service}/health", timeout=30).json()["model"]
    return name

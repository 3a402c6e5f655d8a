"""The dashboard with authentication on, in a real Chromium: it asks for a key, refuses a wrong one and
shows the system with the right one (kept in the tab's sessionStorage, sent as a bearer token)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from neurectomy.server.keys import KEYS_FILE_NAME, KeyStore
from neurectomy.testing import start_serve, stop_serve

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """``serve`` with auth on (inference team only) and a read/write key of tenant ``acme``."""
    state_dir = tmp_path_factory.mktemp("dashboard-auth-state")
    env = {"NEURECTOMY_AUTH__ENABLED": "true", "NEURECTOMY_TEAMS": '["inference"]'}
    proc, url = start_serve(state_dir, env=env)
    try:
        token = KeyStore(state_dir / KEYS_FILE_NAME).create("acme", "read,write").token
        yield url, token
    finally:
        stop_serve(proc)


def test_wrong_key_is_refused_and_the_right_one_shows_the_page(
    browser: Any, secured: tuple[str, str], artifacts: Path
) -> None:
    expect = pytest.importorskip("playwright.sync_api").expect
    url, token = secured
    assert httpx.get(f"{url}/v1/dashboard/snapshot", timeout=10).status_code == 401
    assert httpx.get(f"{url}/", timeout=10).status_code == 200  # the page itself holds no data
    tab = browser.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda e: errors.append(str(e)))
    tab.goto(f"{url}/")
    expect(tab.locator("#key-dialog")).to_have_attribute("open", "", timeout=15_000)
    expect(tab.locator("#main")).to_be_hidden()

    tab.fill("#key-input", "nk_" + "x" * 40)
    tab.click("#key-submit")
    expect(tab.locator("#key-error")).to_contain_text("refused", timeout=15_000)
    expect(tab.locator("#main")).to_be_hidden()
    assert tab.evaluate("() => sessionStorage.getItem('neurectomy.apiKey')") is None
    path = artifacts / "dashboard-auth-refused.png"
    tab.screenshot(path=str(path))
    print(f"screenshot: {path}")

    tab.fill("#key-input", token)
    tab.click("#key-submit")
    expect(tab.locator("#main")).to_be_visible(timeout=15_000)
    roster = httpx.get(f"{url}/v1/agents", headers={"authorization": f"Bearer {token}"}, timeout=30).json()
    expect(tab.locator("tr.agent")).to_have_count(len(roster), timeout=30_000)
    up = {a["name"] for a in roster if a["health"] == "up"}
    shown_up = {r.get_attribute("data-agent") for r in tab.locator('tr.agent[data-health="up"]').all()}
    assert shown_up == up and "generator" in up
    assert tab.evaluate("() => sessionStorage.getItem('neurectomy.apiKey')") == token
    tab.reload()  # the key survives a reload of the tab
    expect(tab.locator("#main")).to_be_visible(timeout=15_000)
    expect(tab.locator("#key-dialog")).not_to_have_attribute("open", "")
    path = artifacts / "dashboard-auth-accepted.png"
    tab.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    assert errors == []
    tab.close()

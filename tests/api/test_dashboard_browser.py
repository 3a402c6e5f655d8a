"""The dashboard in a real Chromium against the session's ``neurectomy serve`` (every team, auth off).

The page loads without console errors and shows every agent of the roster by team with live health;
the ask box streams tokens; a goal submitted from the page runs as a task whose plan steps turn green;
the task's trace shows as a waterfall. Screenshots are saved (paths printed) for a human to look at.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.slow

# A goal the planner answers with the built-in report plan (analysis steps, then the reporter).
GOAL = "report on: NATS is a fast messaging system, and operators like how simple it is."
GREEN = "rgb(31, 77, 43)"  # style.css: svg.plan .step.succeeded rect


@pytest.fixture(scope="module")
def page(browser: Any, service: str) -> Iterator[tuple[Any, list[str]]]:
    """The dashboard, opened once for the module, and the console errors it logged."""
    tab = browser.new_page()
    errors: list[str] = []
    tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    tab.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))
    tab.goto(f"{service}/")
    yield tab, errors
    tab.close()


def _expect() -> Any:
    return pytest.importorskip("playwright.sync_api").expect


def test_page_shows_every_agent_by_team_with_live_health_and_no_console_errors(
    page: tuple[Any, list[str]], service: str, artifacts: Path
) -> None:
    tab, errors = page
    expect = _expect()
    roster = httpx.get(f"{service}/v1/agents", timeout=30).json()
    expect(tab.locator("tr.agent")).to_have_count(len(roster), timeout=30_000)
    teams = sorted({a["team"] for a in roster})
    assert len(teams) == 5
    for team in teams:
        members = {a["name"] for a in roster if a["team"] == team}
        rows = tab.locator(f'.team[data-team="{team}"] tr.agent')
        assert {r.get_attribute("data-agent") for r in rows.all()} == members
    shown = {
        r.get_attribute("data-agent"): r.get_attribute("data-health") for r in tab.locator("tr.agent").all()
    }
    assert shown == {a["name"]: a["health"] for a in roster}
    assert set(shown.values()) == {"up"}  # serve runs every agent
    # Live: the snapshot feed keeps updating the page without a reload.
    first = tab.locator("body").get_attribute("data-updated")
    expect(tab.locator("body")).not_to_have_attribute("data-updated", first or "", timeout=15_000)
    expect(tab.locator("#pill-agents")).to_contain_text(f"{len(roster)}/{len(roster)} up")
    expect(tab.locator("#models tbody tr")).not_to_have_count(0)
    expect(tab.locator("#prefix-cache")).to_contain_text("prefix (KV) cache")
    expect(tab.locator("#vault")).to_contain_text("records (tenant / all)", timeout=15_000)
    expect(tab.locator("#sigma")).to_contain_text("RSUs", timeout=15_000)
    screenshot(tab, artifacts, "dashboard-agents")
    assert errors == []


def test_ask_box_streams_tokens(page: tuple[Any, list[str]], artifacts: Path) -> None:
    tab, errors = page
    expect = _expect()
    tab.fill("#ask-input", "The capital of France is")
    tab.fill("#ask-max", "32")
    tab.click("#ask-submit")
    output = tab.locator("#ask-output")
    seen: list[int] = []
    deadline = time.monotonic() + 120
    while "tokens" not in (tab.locator("#ask-meta").text_content() or ""):
        assert time.monotonic() < deadline, "the answer never finished"
        seen.append(int(output.get_attribute("data-chunks") or 0))
        time.sleep(0.02)
    final = int(output.get_attribute("data-chunks") or 0)
    assert final > 1
    assert any(0 < n < final for n in seen), f"no partial answer was ever shown: {seen[-20:]}"
    assert (output.text_content() or "").strip()
    expect(tab.locator("#ask-meta")).to_contain_text("finish:")
    screenshot(tab, artifacts, "dashboard-ask")
    assert errors == []


def test_goal_runs_as_a_task_whose_steps_turn_green(
    page: tuple[Any, list[str]], service: str, artifacts: Path
) -> None:
    tab, errors = page
    expect = _expect()
    tab.fill("#goal-input", GOAL)
    tab.click("#goal-run")
    detail = tab.locator("#task-detail")
    expect(detail).to_have_attribute("data-task", re.compile("[0-9a-f]{32}"), timeout=30_000)
    task_id = detail.get_attribute("data-task")
    statuses: set[str] = set()
    deadline = time.monotonic() + 120
    while detail.get_attribute("data-status") != "succeeded":
        assert detail.get_attribute("data-status") in ("queued", "running"), detail.get_attribute(
            "data-status"
        )
        assert time.monotonic() < deadline, "the task did not finish"
        statuses |= {s.get_attribute("data-status") or "" for s in detail.locator("g.step").all()}
        time.sleep(0.05)
    record = httpx.get(f"{service}/v1/tasks/{task_id}", timeout=30).json()
    assert record["status"] == "succeeded"
    steps = detail.locator("g.step")
    expect(steps).to_have_count(len(record["steps"]))
    for step in steps.all():
        expect(step).to_have_attribute("data-status", "succeeded")
        assert step.locator("rect").evaluate("r => getComputedStyle(r).fill") == GREEN
    print(f"step statuses seen while running: {sorted(statuses)}")
    row = tab.locator(f'#tasks tr.task[data-task="{task_id}"]')
    expect(row).to_contain_text("succeeded", timeout=15_000)
    listed = httpx.get(f"{service}/v1/tasks", params={"status": "succeeded", "limit": 200}, timeout=30).json()
    assert task_id in {t["id"] for t in listed["tasks"]}
    bad = httpx.get(f"{service}/v1/tasks", params={"limit": 0}, timeout=30)
    assert bad.status_code == 400 and "limit" in bad.text
    screenshot(tab, artifacts, "dashboard-task")
    assert errors == []


def test_the_tasks_trace_shows_as_a_waterfall(
    page: tuple[Any, list[str]], service: str, artifacts: Path
) -> None:
    tab, errors = page
    expect = _expect()
    # The goal's task (the test above), not the newest task trace: the service is shared with other
    # modules' tests, whose tasks may be listed first until the goal's trace comes in.
    listed = httpx.get(f"{service}/v1/tasks", params={"status": "succeeded", "limit": 200}, timeout=30).json()
    goal_task = max((t for t in listed["tasks"] if t.get("goal") == GOAL), key=lambda t: t["created_at"])
    trace_id = goal_task["traceparent"].split("-")[1]  # W3C traceparent: version-trace id-span id-flags
    row = tab.locator(f'#traces tr.trace[data-trace="{trace_id}"]', has_text="POST /v1/tasks")
    expect(row).to_be_visible(timeout=15_000)
    row.click()
    waterfall = tab.locator(".waterfall")
    for name in ("POST /v1/tasks", "task", "nats planner", "agent planner", "step report", "agent reporter"):
        expect(waterfall.locator(".span-row", has_text=name).first).to_be_visible(timeout=15_000)
    screenshot(tab, artifacts, "dashboard-trace")
    assert errors == []


def screenshot(tab: Any, directory: Path, name: str) -> Path:
    """Save a full-page screenshot and print its path."""
    path = directory / f"{name}.png"
    tab.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path

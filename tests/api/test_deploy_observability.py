"""``deploy/``: the Prometheus alert rules pass ``promtool`` (check and unit tests), and every metric the
rules and the Grafana dashboard query is one the API exports."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from api import Metrics
from api._metrics import _SCRAPED_COUNTERS

DEPLOY = Path(__file__).parents[2] / "deploy"
ALERTS = DEPLOY / "prometheus" / "alerts.yaml"
ALERT_TESTS = DEPLOY / "prometheus" / "alerts_test.yaml"
DASHBOARD = DEPLOY / "grafana" / "neurectomy.json"
_METRIC = re.compile(r"\b((?:neurectomy|process|python)_[a-z0-9_]+)")
_SUFFIXES = ("_bucket", "_count", "_sum")


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        reason = (
            "promtool is not installed (Debian package prometheus; `make system-deps` installs it as root)"
        )
        if os.environ.get("NEURECTOMY_REQUIRE_BROWSER") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return path


def test_alert_rules_pass_promtool_check_and_unit_tests() -> None:
    for args in (("check", "rules", str(ALERTS)), ("test", "rules", str(ALERT_TESTS))):
        done = subprocess.run([promtool(), *args], capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "SUCCESS" in done.stdout


def exported_names() -> set[str]:
    """Every sample name the API's registry exports (scraped counters included)."""
    names = {f"neurectomy_{key}_total" for key in _SCRAPED_COUNTERS}
    for family in Metrics().registry.collect():  # labelled families have no samples before first use
        names |= {s.name for s in family.samples}
        if family.type == "histogram":
            names |= {family.name + suffix for suffix in _SUFFIXES}
        elif family.type == "counter":
            names.add(family.name + "_total")
        else:
            names.add(family.name)
    return names


def queried(expressions: list[str]) -> set[str]:
    return {name for expr in expressions for name in _METRIC.findall(expr)}


def test_rules_and_dashboard_query_only_exported_metrics() -> None:
    exported = exported_names()
    assert "neurectomy_build_info" in exported and "process_resident_memory_bytes" in exported
    rules = yaml.safe_load(ALERTS.read_text())
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    dashboard = json.loads(DASHBOARD.read_text())
    targets = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert len(targets) >= 15
    for name in sorted(queried(exprs + targets)):
        assert name in exported, f"{name} is queried but not exported"
    assert "neurectomy_prefix_cache_hit_ratio" not in exported  # counters replaced the ratio gauges
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))

"""The call path's modules compiled by mypyc (agents._compiled, deploy/compile_hot_path.py).

``make test`` sets ``NEURECTOMY_REQUIRE_COMPILED=1`` after ``make setup`` built them, so the whole suite runs
against the compiled modules and :func:`test_build_in_use` fails if they were not loaded. The plain-Python
fallback (no build, a stale build, turned off) is checked here: the finder's verdicts on made-up builds, and
the hop's tests run in a child interpreter with the build turned off.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import agents._compiled as compiled
from agents._compiled import MODULES, build_dir, digest, interpreter

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "deploy"))
from compile_hot_path import sources  # noqa: E402


def test_build_in_use() -> None:
    state = compiled.status()
    if not state.active and not os.environ.get("NEURECTOMY_REQUIRE_COMPILED"):
        pytest.skip(f"compiled call path not in use: {state.reason}")
    assert state.active, state.reason
    directory = Path(state.directory)
    for name in MODULES:
        file = Path(importlib.import_module(name).__file__ or "")
        assert file.suffix == ".so" and file.is_relative_to(directory), (name, file)
    assert state.modules > len(MODULES)  # and mypyc's shared library


def _fake_build(root: Path, *, interp: str | None = None) -> Path:
    """A build directory under ``root`` whose manifest lists one source and one module file."""
    source = root / "agents" / "x.py"
    source.parent.mkdir(parents=True)
    source.write_text("X = 1\n")
    directory = build_dir(root)
    (directory / "agents").mkdir(parents=True)
    (directory / "agents" / "x.so").write_bytes(b"")
    manifest = {
        "interpreter": interp or interpreter(),
        "sources": {"agents/x.py": digest(source)},
        "modules": {"agents.x": "agents/x.so"},
    }
    (directory / "manifest.json").write_text(json.dumps(manifest))
    return source


def test_current_build_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NEURECTOMY_COMPILED", raising=False)
    _fake_build(tmp_path)
    finder = compiled._Finder(tmp_path)
    assert finder.check() == {"agents.x": build_dir(tmp_path) / "agents" / "x.so"}
    assert finder.reason == ""


def test_stale_source_leaves_python(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NEURECTOMY_COMPILED", raising=False)
    source = _fake_build(tmp_path)
    source.write_text("X = 2\n")
    finder = compiled._Finder(tmp_path)
    assert finder.check() == {}
    assert finder.reason.startswith("stale: agents/x.py changed")
    assert finder.find_spec("agents._message", None) is None
    source.unlink()
    gone = compiled._Finder(tmp_path)
    assert gone.check() == {} and "agents/x.py" in gone.reason


def test_other_interpreter_missing_files_or_off_leave_python(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NEURECTOMY_COMPILED", raising=False)
    assert compiled._Finder(tmp_path).check() == {}  # nothing built
    _fake_build(tmp_path / "a", interp="cpython-312 3.12.1 linux")
    other = compiled._Finder(tmp_path / "a")
    assert other.check() == {} and "not this interpreter" in other.reason
    _fake_build(tmp_path / "b")
    (build_dir(tmp_path / "b") / "agents" / "x.so").unlink()
    incomplete = compiled._Finder(tmp_path / "b")
    assert incomplete.check() == {} and incomplete.reason.startswith("incomplete build")
    _fake_build(tmp_path / "c")
    monkeypatch.setenv("NEURECTOMY_COMPILED", "0")
    off = compiled._Finder(tmp_path / "c")
    assert off.check() == {} and "NEURECTOMY_COMPILED=0" in off.reason


def test_no_build_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NEURECTOMY_COMPILED", raising=False)
    finder = compiled._Finder(tmp_path)
    assert finder.check() == {}
    assert finder.reason.startswith("not built")


def test_sources_cover_modules_and_their_imports() -> None:
    files = {str(path.relative_to(ROOT)) for path in sources(ROOT)}
    for name in MODULES:
        assert name.replace(".", "/") + ".py" in files
    # what the compiled modules import from the project: a change there also calls for a rebuild
    expected = {"agents/__init__.py", "agents/protocol.py", "agents/errors.py", "orchestrator/__init__.py"}
    assert expected <= files
    assert "orchestrator/_generators.py" in files  # the async generators left to Python


def test_plain_python_fallback_runs_the_hop() -> None:
    """With the build turned off the modules load from their sources and the hop's tests pass."""
    env = {**os.environ, "NEURECTOMY_COMPILED": "0"}
    env.pop("NEURECTOMY_REQUIRE_COMPILED", None)
    probe = (
        "import agents.actor, orchestrator._route, agents._compiled as c\n"
        "print(agents.actor.__file__); print(orchestrator._route.__file__); print(c.status().reason)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out[0].endswith("agents/actor.py") and out[1].endswith("orchestrator/_route.py")
    assert out[2] == "turned off (NEURECTOMY_COMPILED=0)"
    tests = ["tests/orchestrator/test_local_hop.py", "tests/orchestrator/test_reliability.py"]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and " failed" not in done.stdout

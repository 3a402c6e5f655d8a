"""``pip install neurectomy`` (no extras) is enough for the SDK and the CLI's client commands.

A fresh virtualenv gets the project (built and installed by pip, without dependencies) and exactly the
distributions its base requirements pull in, taken from this environment (linked, not downloaded, so
the test runs offline and fast). Then ``from neurectomy import Client`` must work with no server
package importable, and the CLI must answer a client command with its one-line error.
"""

from __future__ import annotations

import importlib.metadata as md
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
SERVER_PACKAGES = ("litestar", "llama_cpp", "nats", "torch", "faiss", "uvicorn", "structlog", "zstandard")

_PACKAGES = ("neurectomy", "api", "orchestrator", "agents", "bridges", "ryot", "sigmalang", "vault")

pytestmark = pytest.mark.slow


def _closure(requirements: list[str]) -> set[str]:
    """Installed distributions that ``requirements`` (and theirs, recursively) name; no extras."""
    seen: set[str] = set()
    todo = list(requirements)
    while todo:
        req = Requirement(todo.pop())
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        name = canonicalize_name(req.name)
        if name in seen:
            continue
        seen.add(name)
        todo.extend(md.requires(name) or [])
    return seen


def _base_requirements() -> list[str]:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps: list[str] = project["dependencies"]
    return deps


def _link_distribution(name: str, site: Path) -> None:
    """Make distribution ``name`` of this environment importable in ``site`` (symlinks to its files)."""
    dist = md.distribution(name)
    for file in dist.files or []:
        parts = Path(file).parts
        if parts[0] == ".." or parts[0].endswith(".data"):
            continue  # scripts and headers outside site-packages
        top = site / parts[0]
        source = Path(str(dist.locate_file(parts[0])))
        if not top.exists() and source.exists():
            top.symlink_to(source)


@pytest.fixture(scope="module")
def light_env(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("light-venv")
    venv.EnvBuilder(with_pip=False).create(root)
    python = root / "bin" / "python"
    site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    for name in sorted(_closure(_base_requirements())):
        _link_distribution(name, site)
    build = tmp_path_factory.mktemp("light-build")
    source = build / "src"  # a copy: setuptools writes build/ and *.egg-info next to the sources
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for package in _PACKAGES:
        shutil.copytree(ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip"]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"PIP_NO_CACHE_DIR": "1"}
    # Build the wheel here (setuptools lives in this environment), install it there without deps.
    subprocess.run(
        [*pip, "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(build), str(source)],
        check=True,
        cwd=build,
        timeout=300,
        env=env,
    )
    (wheel,) = build.glob("neurectomy-*.whl")
    subprocess.run(
        [*pip, "--python", str(python), "install", "--quiet", "--no-deps", "--no-index", str(wheel)],
        check=True,
        cwd=build,
        timeout=300,
        env=env,
    )
    return root


def _run(env: Path, *args: str) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "NEURECTOMY_BASE_URL", "NEURECTOMY_URL")
    }
    return subprocess.run(list(args), capture_output=True, text=True, timeout=120, env=clean, cwd=env)


def test_the_client_imports_with_no_server_package(light_env: Path) -> None:
    python = str(light_env / "bin" / "python")
    probe = (
        "import importlib.util, json, sys\n"
        "from neurectomy import Client, TaskRecord\n"
        "import neurectomy.sdk.client as c\n"
        f"print(json.dumps({{'file': c.__file__, 'server': [m for m in {SERVER_PACKAGES!r} "
        "if importlib.util.find_spec(m) is not None]}))\n"
    )
    done = _run(light_env, python, "-c", probe)
    assert done.returncode == 0, done.stderr
    import json

    found = json.loads(done.stdout)
    assert found["file"].startswith(str(light_env))  # the installed copy, not the worktree
    assert found["server"] == []  # none of the server's packages is installed


def test_the_cli_client_commands_run_in_the_light_install(light_env: Path) -> None:
    cli = str(light_env / "bin" / "neurectomy")
    done = _run(light_env, cli, "models", "--base-url", "http://127.0.0.1:9")
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot reach http://127.0.0.1:9" in lines[0], done.stderr
    assert "Traceback" not in done.stderr + done.stdout

"""The call path's modules compiled by mypyc, loaded only while they match their sources.

The hop of a call (caller, bus, agent runner, answer) is Python function calls of our own modules for most of
its instructions (docs/collective.md, rounds 7-11). ``make setup`` compiles :data:`MODULES` with mypyc (the
compiler shipped with mypy, pinned in ``constraints.txt``) into ``build/compiled-<cache tag>/`` of the
checkout (``deploy/compile_hot_path.py``); the modules' sources stay as they are, each also runs as Python.

:func:`install` (run by ``agents/__init__.py`` and ``orchestrator/__init__.py``, so before any of these
modules is imported) puts a finder first on ``sys.meta_path`` that loads them from that directory, but only
if its ``manifest.json`` names this interpreter and every source file it lists has the digest it was built
from: the compiled modules and the project modules they import. One stale file and none is loaded (mypyc's
modules of one build call each other directly, so mixing is not safe); the modules then run as Python and
:func:`status` says why. ``NEURECTOMY_COMPILED=0`` turns it off.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = (
    "MODULES",
    "CompiledStatus",
    "build_dir",
    "build_problem",
    "digest",
    "install",
    "manifest_path",
    "read_manifest",
    "status",
)

MODULES: tuple[str, ...] = (
    "agents._attachment",
    "agents.natsheaders",
    "agents._natsfast",
    "agents._message",
    "agents.deadlines",
    "agents.scopes",
    "agents._trace_context",
    "agents._accept",
    "agents._worker",
    "agents.actor",
    "agents._call",
    "agents._inbox",
    "agents._localinbox",
    "agents._localrequest",
    "agents.mailbox",
    "agents.natsdelivery",
    "agents.messaging",
    "orchestrator._call_context",
    "orchestrator._load",
    "orchestrator._reliability",
    "orchestrator._dispatch",
    "orchestrator._route",
)
"""The modules compiled: those a call runs through, by the count of ``benchmarks/hop_instructions.py``."""

ROOT = Path(__file__).resolve().parent.parent
"""The checkout (or site-packages) holding the project's packages."""

_OFF = ("0", "false", "no", "off")
log = logging.getLogger("neurectomy.compiled")


def build_dir(root: Path = ROOT) -> Path:
    """Where the build for this interpreter lives: ``<root>/build/compiled-<cache tag>`` (``cpython-311``)."""
    return root / "build" / f"compiled-{sys.implementation.cache_tag}"


def manifest_path(root: Path = ROOT) -> Path:
    """The build's ``manifest.json``."""
    return build_dir(root) / "manifest.json"


def digest(path: Path) -> str:
    """SHA-256 of a file's bytes, hex."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_manifest(root: Path = ROOT) -> dict[str, Any]:
    """The build's manifest (``interpreter``, ``sources``: path → SHA-256, ``modules``: name → file).

    Raises:
        OSError: No manifest (``FileNotFoundError``: not built) or it cannot be read.
        ValueError: It is not JSON.
    """
    manifest: dict[str, Any] = json.loads(manifest_path(root).read_text())
    return manifest


def build_problem(root: Path, manifest: Mapping[str, Any]) -> str:
    """Why the build ``manifest`` describes cannot serve ``root``'s sources, or ``""`` if it can.

    It must name this interpreter, every source it lists must still have its digest, and every module file
    it lists must be there. (Whether it lists every source the modules depend on today is the build
    script's concern: ``deploy/compile_hot_path.py``.)
    """
    if manifest.get("interpreter") != interpreter():
        return f"built for {manifest.get('interpreter')!r}, not this interpreter"
    for name, expected in manifest["sources"].items():
        try:
            found = digest(root / name)
        except OSError:
            found = "missing"
        if found != expected:
            return f"stale: {name} changed since the build (`make setup` rebuilds)"
    directory = build_dir(root)
    if not all((directory / file).is_file() for file in manifest["modules"].values()):
        return f"incomplete build in {directory}"
    return ""


def interpreter() -> str:
    """What a build must have been made for: implementation, version and platform (``sys.version``)."""
    return f"{sys.implementation.cache_tag} {sys.version} {sys.platform}"


@dataclass(frozen=True)
class CompiledStatus:
    """Whether the compiled modules are in use, and if not, why.

    Attributes:
        active: They load from the build (every one of :data:`MODULES` imported so far came from it).
        reason: Why not, or ``""``.
        modules: How many modules the build holds.
        directory: The build directory looked at.
    """

    active: bool
    reason: str
    modules: int
    directory: str


class _Finder(importlib.abc.MetaPathFinder):
    """Finds the build's extension modules (the compiled modules and mypyc's shared library)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.directory = build_dir(root)
        self.files: dict[str, Path] | None = None
        self.reason = ""
        self.manifest: dict[str, Any] | None = None
        self._unread = ""
        """Why there is no manifest (the reason :meth:`check` gives then)."""
        if not self.directory.is_dir():
            self._unread = f"not built ({self.directory} does not exist; `make setup` builds it)"
        else:
            try:
                self.manifest = read_manifest(root)
            except FileNotFoundError:
                self._unread = f"not built ({self.directory} has no manifest.json; `make setup` builds it)"
            except (OSError, ValueError) as exc:
                self._unread = f"unreadable manifest in {self.directory}: {exc}"
        shared = self.manifest["modules"] if self.manifest else {}
        self.names = frozenset(MODULES) | frozenset(name for name in shared if name.endswith("__mypyc"))
        """The names this finder may serve: :data:`MODULES` and mypyc's shared library modules."""

    def check(self) -> dict[str, Path]:
        """The build's module files by name if the build is usable, else ``{}`` (``reason`` says why)."""
        if self.files is not None:
            return self.files
        self.files = {}
        if os.environ.get("NEURECTOMY_COMPILED", "").strip().lower() in _OFF:
            self.reason = "turned off (NEURECTOMY_COMPILED=0)"
            return self.files
        if self.manifest is None:
            self.reason = self._unread
            return self.files
        problem = build_problem(self.root, self.manifest)
        if problem:
            self.reason = problem
            log.warning("compiled modules not used: %s; the call path runs as Python", problem)
            return self.files
        self.files = {name: self.directory / file for name, file in self.manifest["modules"].items()}
        return self.files

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        """The extension module's spec for a name the build holds, when the build is usable."""
        if fullname not in self.names:
            return None
        file = self.check().get(fullname)
        if file is None:
            return None
        loader = importlib.machinery.ExtensionFileLoader(fullname, str(file))
        return importlib.util.spec_from_file_location(fullname, file, loader=loader)


_finder: _Finder | None = None


def install(root: Path = ROOT) -> None:
    """Put the finder first on ``sys.meta_path``, once; the build is checked when a module is first asked for.

    Reads the build's manifest only; does nothing more when there is none for this interpreter (an installed
    wheel, no ``make setup``).
    """
    global _finder
    if _finder is not None:
        return
    finder = _finder = _Finder(root)
    if finder.manifest is not None:
        sys.meta_path.insert(0, finder)


def _loaded_from_build(name: str, directory: Path) -> bool:
    module = sys.modules.get(name)
    return module is None or Path(getattr(module, "__file__", "") or "").parent.is_relative_to(directory)


def status() -> CompiledStatus:
    """Whether the compiled modules are in use (checks the build if no module asked for it yet)."""
    finder = _finder
    if finder is None:
        return CompiledStatus(False, "not installed (agents was not imported)", 0, str(build_dir()))
    files = finder.check()
    active = bool(files) and all(_loaded_from_build(name, finder.directory) for name in MODULES)
    reason = finder.reason
    if files and not active:
        reason = "some modules were imported before the finder was installed"
    return CompiledStatus(active, reason, len(files), str(finder.directory))

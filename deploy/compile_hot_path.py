"""Compile the call path's modules with mypyc into ``build/compiled-<cache tag>/`` (run by ``make setup``).

What is compiled, where it goes and when it is loaded: :mod:`agents._compiled`. This script:

1. lists the sources a build depends on (the modules of :data:`agents._compiled.MODULES` and the project
   modules they import) and, if ``manifest.json`` already names this interpreter and their digests, stops
   ("up to date", well under a second);
2. otherwise copies the project's packages and ``pyproject.toml`` (its ``[tool.mypy]`` settings) to a
   temporary directory, runs ``python -m mypyc`` on those modules there (type-checks their import graph,
   writes C, compiles it: ~6 minutes on 2 cores; a line of progress every 30 s), and moves the extension
   modules and a new manifest into place (the old build is replaced only once the new one is complete);
3. keeps a copy under ``~/.cache/neurectomy/compiled/<key>`` (``NEURECTOMY_COMPILED_CACHE``), keyed by the
   interpreter, mypy's version and the sources' digests, so that a fresh clone of the same sources on
   this machine takes it instead of compiling again (as ``deploy/ensure_llama_cpp.sh`` does for llama.cpp).

Exit status 1, with the end of mypyc's output, when the build fails; the modules then run as Python.

    .venv/bin/python deploy/compile_hot_path.py [--force]
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agents._compiled import MODULES, build_dir, build_problem, digest, interpreter, read_manifest  # noqa: E402

PACKAGES = ("neurectomy", "api", "orchestrator", "agents", "bridges", "ryot", "sigmalang", "vault")
"""The project's packages (the import graph mypyc type-checks stays within them and installed libraries)."""


def module_file(root: Path, name: str) -> Path | None:
    """The source file of module ``name`` under ``root`` (``a/b.py`` or ``a/b/__init__.py``), if any."""
    base = root / name.replace(".", "/")
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def sources(root: Path) -> list[Path]:
    """The files a build depends on, sorted.

    Each compiled module, its packages' ``__init__.py``, and the project modules it imports (at any place
    in it, ``TYPE_CHECKING`` blocks included).
    """
    found: set[Path] = set()
    for name in MODULES:
        path = module_file(root, name)
        if path is None:
            raise FileNotFoundError(f"compiled module {name} has no source under {root}")
        found.add(path)
        parts = name.split(".")
        for i in range(1, len(parts)):
            init = module_file(root, ".".join(parts[:i]))
            if init is not None:
                found.add(init)
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            for imported in names:
                if imported.split(".")[0] in PACKAGES:
                    dep = module_file(root, imported)
                    if dep is not None:
                        found.add(dep)
    return sorted(found)


def source_digests(root: Path) -> dict[str, str]:
    """Each of :func:`sources`, by its path under ``root``: its SHA-256 (hex), as the manifest lists them."""
    return {str(path.relative_to(root)): digest(path) for path in sources(root)}


def cache_key(root: Path) -> str:
    """What a build is made of: interpreter, mypy's version, each source's path and digest (SHA-256, hex)."""
    import mypy.version

    parts = [interpreter(), mypy.version.__version__]
    parts += [f"{path} {sha}" for path, sha in source_digests(root).items()]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]


def cache_dir(root: Path) -> Path:
    """This machine's copy of the build of ``root``'s sources (it may not exist)."""
    base = os.environ.get("NEURECTOMY_COMPILED_CACHE") or Path.home() / ".cache" / "neurectomy" / "compiled"
    return Path(base) / cache_key(root)


def staging_dir(root: Path) -> Path:
    """An empty place (absent) beside ``root``'s build directory to assemble a build in."""
    staging = build_dir(root).with_name(build_dir(root).name + ".new")
    if staging.exists():
        shutil.rmtree(staging)
    return staging


def swap_in(staging: Path, root: Path) -> None:
    """Make the complete build in ``staging`` ``root``'s build directory (the old one removed first)."""
    final = build_dir(root)
    if final.exists():
        shutil.rmtree(final)
    staging.rename(final)


def put_in_place(source: Path, root: Path) -> None:
    """Copy a complete build directory to ``root``'s, replacing it once the copy is complete."""
    staging = staging_dir(root)
    shutil.copytree(source, staging)
    swap_in(staging, root)


def up_to_date(root: Path) -> bool:
    """Whether the build in place is current for ``root``.

    It serves ``root`` (:func:`agents._compiled.build_problem`), lists exactly the sources the modules depend
    on today, and holds every one of :data:`MODULES`.
    """
    try:
        manifest = read_manifest(root)
    except (OSError, ValueError):
        return False
    return (
        not build_problem(root, manifest)
        and set(manifest["sources"]) == {str(path.relative_to(root)) for path in sources(root)}
        and set(MODULES) <= set(manifest["modules"])
    )


def build(root: Path) -> float:
    """Compile into a fresh build directory and put it in place; the build's wall-clock seconds.

    Raises:
        RuntimeError: mypyc failed, or did not write an extension module for each of :data:`MODULES`.
    """
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="neurectomy-mypyc-") as tmp:
        work = Path(tmp) / "src"
        work.mkdir()
        skip = shutil.ignore_patterns("__pycache__", "*.so", "*.pyc")
        for package in PACKAGES:
            shutil.copytree(root / package, work / package, ignore=skip)
        shutil.copy2(root / "pyproject.toml", work / "pyproject.toml")
        files = [str(module_file(work, name).relative_to(work)) for name in MODULES]  # type: ignore[union-attr]
        log_path = Path(tmp) / "mypyc.log"
        print(
            f"compiling {len(files)} modules of the call path with mypyc (about 6 minutes on 2 cores)",
            flush=True,
        )
        with log_path.open("w") as out:
            proc = subprocess.Popen([sys.executable, "-m", "mypyc", *files], cwd=work, stdout=out, stderr=out)
            while True:
                try:
                    proc.wait(timeout=30)
                    break
                except subprocess.TimeoutExpired:
                    print(f"  mypyc: {time.monotonic() - started:.0f} s", flush=True)
        output = log_path.read_text()
        if proc.returncode != 0:
            raise RuntimeError(f"mypyc failed (exit {proc.returncode}):\n{output[-4000:]}")
        staging = staging_dir(root)
        staging.mkdir(parents=True)
        modules: dict[str, str] = {}
        for name in MODULES:
            base = name.replace(".", "/")
            built = sorted(work.glob(f"{base}.*.so"))
            if len(built) != 1:
                raise RuntimeError(
                    f"mypyc wrote {len(built)} extension modules for {name}:\n{output[-2000:]}"
                )
            dest = staging / built[0].relative_to(work)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(built[0], dest)
            modules[name] = str(dest.relative_to(staging))
        for shared in work.glob("*__mypyc.*.so"):
            shutil.copy2(shared, staging / shared.name)
            modules[shared.name.split(".", 1)[0]] = shared.name
        import mypy.version

        manifest = {
            "interpreter": interpreter(),
            "mypy": mypy.version.__version__,
            "sources": source_digests(work),
            "modules": modules,
        }
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        swap_in(staging, root)
    return time.monotonic() - started


def main() -> int:
    """Build unless up to date; 0 when a current build is in place, 1 when the build failed."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--force", action="store_true", help="build even when the build in place is up to date"
    )
    args = parser.parse_args()
    if not args.force and up_to_date(ROOT):
        print(f"compiled call path: up to date ({build_dir(ROOT)})")
        return 0
    cached = cache_dir(ROOT)
    if not args.force and (cached / "manifest.json").is_file():
        put_in_place(cached, ROOT)
        if up_to_date(ROOT):
            print(f"compiled call path: taken from {cached}")
            return 0
    try:
        seconds = build(ROOT)
    except (RuntimeError, OSError) as exc:
        print(f"compiled call path NOT built; its modules run as Python. {exc}", file=sys.stderr)
        return 1
    try:
        if cached.exists():
            shutil.rmtree(cached)
        shutil.copytree(build_dir(ROOT), cached)
    except OSError as exc:  # a full or read-only cache: the build in place is what counts
        print(f"(not cached: {exc})", file=sys.stderr)
    print(f"compiled call path: {len(MODULES)} modules built in {seconds:.0f} s ({build_dir(ROOT)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

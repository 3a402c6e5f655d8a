"""The hop with its hot-path modules compiled by mypyc: a compiled copy of a tree, then counted (not a test).

Issue 20 item 3 asks for ≥ 20,000 ``serve``-shape calls/s at 64 in flight, ~170k instructions per call;
the hop takes ~186k after round 10 (``benchmarks/hop_instructions.py``), most of it in Python function
calls of our own modules and the libraries they call (docs/collective.md, rounds 7-10). mypyc (shipped
with mypy, a dev dependency) compiles type-annotated modules to C extensions. This measures what that
would give, without changing the project:

1. copies ``--source`` twice (``--plain``, ``--compiled``; ``.git``, ``.venv``, caches, build output and
   extension modules left out);
2. applies to the compiled copy only the small source changes mypyc needs (:data:`PATCHES`; each keeps
   the plain-Python behaviour; printed with its reason);
3. compiles ``--modules`` there with the ``mypyc`` CLI (the project's ``[tool.mypy]`` settings from its
   ``pyproject.toml``; mypyc type-checks the whole import graph first, so the build takes minutes) and
   prints the build time and, from a fresh interpreter, which file each module is imported from;
4. with ``--measure``, runs ``benchmarks/hop_instructions.py --trees plain compiled plain compiled``.

Wall-clock calls/s: run ``benchmarks/orchestrator.py --runs 3 --no-embedder --hop-only`` from each copy
with ``PYTHONPATH`` set to it, alternated (A B B A). Tests: ``PYTHONPATH=<compiled> pytest tests/agents``
from the compiled copy.

mypyc cannot compile a module with an async generator (``@asynccontextmanager`` methods included) or a
``break``/``continue`` inside ``try``/``finally``, and a compiled class cannot be subclassed by Python code
unless it says so: what each module of the hot path needed is in :data:`PATCHES`, async generators are left
to an interpreted copy of their module (:func:`split_async_generators`). Measured (docs/collective.md,
"Round 10b"): on main after round 10, 186.2k → 158.9k instructions per call (medians of four; build 349 s);
on the tree before round 10, 210.6k → ~180k.

    .venv/bin/python benchmarks/compiled_hop.py --plain /tmp/hopc-plain --compiled /tmp/hopc-comp --measure
"""

from __future__ import annotations

import argparse
import ast
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple


class Patch(NamedTuple):
    """One source change in the compiled copy: ``old`` (found exactly once) becomes ``new``."""

    old: str
    new: str
    why: str


_TRAIT = "from mypy_extensions import trait\n\n"

PATCHES: dict[str, tuple[Patch, ...]] = {
    "agents/_message.py": (
        Patch(
            "    message: Message = _new(Message)\n    _SET_SUBJECT(message, subject)\n"
            "    _SET_DATA(message, data)\n    _SET_HEADERS(message, headers)\n"
            "    _SET_REPLY(message, reply)\n    return message\n",
            "    return Message(subject, data, headers, reply)\n",
            "object.__new__(Message) is refused for a native class ('not safe'): the constructor",
        ),
        Patch(
            "    message: Message = _new(Message)\n    _SET_SUBJECT(message, msg.subject)\n"
            "    _SET_DATA(message, msg.data)\n    _SET_HEADERS(message, msg.headers or {})\n"
            '    _SET_REPLY(message, msg.reply or "")\n    return message\n',
            '    return Message(msg.subject, msg.data, msg.headers or {}, msg.reply or "")\n',
            "the same in to_message",
        ),
        Patch(
            "    message: LocalRequest = _new(LocalRequest)\n    _SET_SUBJECT(message, subject)\n"
            "    _SET_DATA(message, data)\n    _SET_HEADERS(message, headers)\n"
            "    _SET_REPLY(message, reply)\n    _SET_DEADLINE(message, deadline)\n"
            "    _SET_REPLY_TO(message, reply_to)\n    return message\n",
            "    return LocalRequest(subject, data, headers, reply, deadline, reply_to)\n",
            "the same in new_local_request (round 10)",
        ),
        Patch(
            "_new = object.__new__\n_SET_SUBJECT, _SET_DATA, _SET_HEADERS, _SET_REPLY = (\n"
            '    vars(Message)[name].__set__ for name in ("subject", "data", "headers", "reply")\n)\n'
            "_SET_DEADLINE, _SET_REPLY_TO = (vars(LocalRequest)[name].__set__"
            ' for name in ("deadline", "reply_to"))\n',
            "",
            "the slots' setters (vars(Message)[...].__set__, vars(LocalRequest)[...]) are no longer used",
        ),
    ),
    "agents/_accept.py": (
        Patch(
            "\n\nclass AcceptPath:\n",
            f"\n\n{_TRAIT}@trait\nclass AcceptPath:\n",
            "a mixin of AgentRunner: native classes have one base unless the others are @trait",
        ),
        Patch(
            "    _accepted_reply: tuple[str, bytes]\n",
            "    _accepted_reply: Any\n",
            "mypyc 2.4.1 writes C that does not compile for a trait's tuple-typed attribute set in a method"
            " ('request for member f0 in something not a structure': a missing parenthesis): boxed",
        ),
        Patch(
            "from typing import TYPE_CHECKING\n",
            "from typing import TYPE_CHECKING, Any\n",
            "(Any for that)",
        ),
    ),
    "agents/_worker.py": (
        Patch(
            "\n\nclass WorkerPool:\n",
            f"\n\n{_TRAIT}@trait\nclass WorkerPool:\n",
            "a mixin of AgentRunner (@trait, as AcceptPath)",
        ),
        Patch(
            "    _call_log: Any = log\n",
            "    _call_log: Any\n",
            "a trait's attributes take no class-level default: AgentRunner.__init__ sets it",
        ),
        Patch(
            "    _log_done: bool = True\n",
            "    _log_done: bool\n",
            "the same",
        ),
    ),
    "agents/actor.py": (
        Patch(
            "\n\nclass Agent(ABC):\n",
            "\n\nfrom mypy_extensions import mypyc_attr\n\n\n"
            "@mypyc_attr(allow_interpreted_subclasses=True)\nclass Agent(ABC):\n",
            "the 40 agents (and the tests' agents) subclass it in Python",
        ),
        Patch(
            "        self._accepts_due: anyio.Event | None = None\n",
            "        self._accepts_due: anyio.Event | None = None\n"
            "        self._call_log: Any = log\n        self._log_done = True\n",
            "WorkerPool's two class-level defaults, set per instance",
        ),
        Patch(
            '        self._accepted_reply: tuple[str, bytes] = ("", b"")\n',
            '        self._accepted_reply: Any = ("", b"")\n',
            "an attribute's type must be the trait's (AcceptPath._accepted_reply: Any, above)",
        ),
    ),
    "agents/_inbox.py": (
        Patch("from typing import Protocol\n", "from typing import Protocol, cast\n", "(cast for the next)"),
        Patch(
            "        msg, self._reply = self._reply, None\n",
            '        msg = cast("Msg | Message", getattr(self, "_reply"))\n        self._reply = None\n',
            "Inbox.request: mypy narrows self._reply to None (set so before the publish; the reply is"
            " stored by a callback meanwhile) and mypyc checks it: 'None object expected; got Msg'",
        ),
        Patch(
            "        if self._reply is None:\n            deadline = time.monotonic() + timeout_s\n"
            "            while self._reply is None:\n",
            '        if getattr(self, "_reply") is None:\n'
            "            deadline = time.monotonic() + timeout_s\n"
            '            while getattr(self, "_reply") is None:\n',
            "the same narrowing in the waiting loop's two reads",
        ),
    ),
    "agents/messaging.py": (
        Patch(
            "\nclass Bus:\n",
            "\nfrom mypy_extensions import mypyc_attr\n\n\n@mypyc_attr(native_class=False)\nclass Bus:\n",
            "_heartbeats keeps a WeakKeyDictionary by Bus: native classes take no weak reference;"
            " a Python class with compiled methods",
        ),
    ),
    "orchestrator/_call_context.py": (
        Patch(
            "\n@dataclass(frozen=True, slots=True)\nclass CallContext:\n",
            "\nfrom mypy_extensions import mypyc_attr\n\n\n@mypyc_attr(native_class=False)\n"
            "@dataclass(frozen=True, slots=True)\nclass CallContext:\n",
            "with_timeout and attempt build it through object.__new__ and the slots' setters"
            " ('not safe' for a native class): a Python class with compiled methods",
        ),
    ),
    "orchestrator/_route.py": (
        Patch(
            "                        try:\n                            output = await call_for_output(\n",
            "                        refused = False\n"
            "                        try:\n                            output = await call_for_output(\n",
            "Router.invoke: 'continue inside try/finally is unimplemented':"
            " a flag, continue after the finally",
        ),
        Patch(
            "                                self.monitor.forget(inst)\n"
            "                            continue\n"
            "                        finally:\n                            self.monitor.done(inst)\n",
            "                                self.monitor.forget(inst)\n"
            "                            refused = True\n"
            "                        finally:\n                            self.monitor.done(inst)\n"
            "                        if refused:\n                            continue\n",
            "the same",
        ),
        Patch(
            "                verdict, full_budget = False, False\n",
            "                verdict, full_budget = False, False\n                failed = False\n",
            "Router.invoke: 'break inside try/finally is unimplemented': a flag, break after the finally",
        ),
        Patch(
            "                    break  # a failure, not a refusal: back off before the next round\n"
            "                finally:\n                    if not verdict:\n"
            "                        breaker.release()\n",
            "                    failed = True\n"
            "                finally:\n                    if not verdict:\n"
            "                        breaker.release()\n"
            "                if failed:\n                    break\n",
            "the same",
        ),
    ),
}
"""Source changes mypyc needs, by module (applied to the compiled copy only)."""

MODULES: tuple[str, ...] = (
    "agents/_message.py",
    "agents/_accept.py",
    "agents/_worker.py",
    "agents/actor.py",
    "agents/_call.py",
    "agents/_inbox.py",
    "agents/_localinbox.py",
    "agents/_localrequest.py",
    "agents/mailbox.py",
    "agents/natsdelivery.py",
    "orchestrator/_call_context.py",
    "orchestrator/_load.py",
    "orchestrator/_reliability.py",
    "agents/messaging.py",
    "orchestrator/_dispatch.py",
    "orchestrator/_route.py",
)
"""The hot path's modules compiled by default."""

MOVED_OUT: tuple[str, ...] = ("agents/messaging.py", "orchestrator/_dispatch.py", "orchestrator/_route.py")
"""Modules with async generators ('async generators are unimplemented' in mypyc): Bus._subject_inbox and
Bus.subscription (``@asynccontextmanager``), ``call_agent``, Router.stream. Compiled when listed in
``--modules``, with those functions left to an interpreted copy of the module
(:func:`split_async_generators`).
"""

_SKIP = shutil.ignore_patterns(
    ".git", ".venv", "build", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache", "*.so"
)


def copy_tree(source: Path, dest: Path) -> None:
    """Copy ``source`` to ``dest`` (replaced), without VCS, caches, build output or extension modules."""
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(source, dest, ignore=_SKIP)


def apply_patches(tree: Path, modules: tuple[str, ...]) -> list[str]:
    """Apply :data:`PATCHES` of ``modules`` in ``tree``; one line per change.

    Raises:
        ValueError: A patch's text is not found exactly once (the source changed: update the patch).
    """
    done = []
    for module in modules:
        for patch in PATCHES.get(module, ()):
            path = tree / module
            text = path.read_text()
            if text.count(patch.old) != 1:
                raise ValueError(f"{module}: patch text found {text.count(patch.old)} times: {patch.old!r}")
            path.write_text(text.replace(patch.old, patch.new))
            done.append(f"{module}: {patch.why}")
    return done


def _yields(fn: ast.AsyncFunctionDef) -> bool:
    return any(isinstance(node, (ast.Yield, ast.YieldFrom)) for node in ast.walk(fn))


def split_async_generators(tree: Path, module: str) -> list[str]:
    """Leave ``module``'s async generators to an interpreted copy of it; one line per function moved.

    The copy, ``<module>_agen.py``, is the module's source as it is (so every name the generators use
    resolves as before); in the module, each async generator (top level or a method) becomes a plain
    function of the same name that imports the copy on first use and returns the copy's generator or
    async context manager (a method calls the copy's class's function with ``self``). The interpreted
    copy's own classes serve those paths (streams, subscriptions), not the hop measured here.
    """
    path = tree / module
    source = path.read_text()
    helper = path.with_name(path.stem + "_agen.py")
    helper.write_text(source)
    package, helper_name = module.rsplit("/", 1)[0].replace("/", "."), helper.stem
    found: list[tuple[str | None, ast.AsyncFunctionDef]] = []
    for node in ast.parse(source).body:
        if isinstance(node, ast.AsyncFunctionDef) and _yields(node):
            found.append((None, node))
        elif isinstance(node, ast.ClassDef):
            found += [(node.name, f) for f in node.body if isinstance(f, ast.AsyncFunctionDef) and _yields(f)]
    lines = source.splitlines(keepends=True)
    moved = []
    for owner, fn in sorted(found, key=lambda item: -item[1].lineno):
        assert fn.returns is not None and fn.end_lineno is not None
        returns = ast.get_source_segment(source, fn.returns)
        if any(ast.unparse(d).endswith("asynccontextmanager") for d in fn.decorator_list):
            inner = (
                ast.get_source_segment(source, fn.returns.slice)
                if isinstance(fn.returns, ast.Subscript)
                else None
            )
            returns = f"_contextlib.AbstractAsyncContextManager[{inner}]"
        pad = " " * fn.col_offset
        first = min([fn.lineno, *(d.lineno for d in fn.decorator_list)])
        self_ = "self, " if owner else ""
        target = f"{owner}.{fn.name}" if owner else fn.name
        stub = (
            f"{pad}def {fn.name}({self_}*args: _Any, **kwargs: _Any) -> {returns}:\n"
            f"{pad}    from {package} import {helper_name} as _agen\n\n"
            f"{pad}    result: {returns} = _cast(_Any, _agen).{target}({self_}*args, **kwargs)\n"
            f"{pad}    return result\n"
        )
        lines[first - 1 : fn.end_lineno] = [stub]
        moved.append(f"{module}: {target} (async generator) left to interpreted {helper.name}")
    text = "".join(lines)
    future = "from __future__ import annotations\n"
    header = (
        "import contextlib as _contextlib\nfrom typing import Any as _Any\nfrom typing import cast as _cast\n"
    )
    path.write_text(text.replace(future, future + header, 1))
    return moved


def compile_modules(tree: Path, modules: tuple[str, ...]) -> float:
    """Compile ``modules`` in ``tree`` in place with the ``mypyc`` CLI; the build's wall-clock seconds.

    Raises:
        RuntimeError: mypyc failed (its output's tail is in the message; the full log is
            ``tree/mypyc.log``).
    """
    mypyc = Path(sys.executable).with_name("mypyc")
    started = time.perf_counter()
    done = subprocess.run([str(mypyc), *modules], cwd=tree, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    (tree / "mypyc.log").write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        raise RuntimeError(f"mypyc failed (exit {done.returncode}):\n{(done.stdout + done.stderr)[-4000:]}")
    return seconds


def imported_from(tree: Path, modules: tuple[str, ...]) -> dict[str, str]:
    """Module name → the file a fresh interpreter with ``PYTHONPATH=tree`` imports it from."""
    names = [m.removesuffix(".py").replace("/", ".") for m in modules]
    code = "import importlib, sys\nfor n in sys.argv[1:]:\n    print(n, importlib.import_module(n).__file__)"
    done = subprocess.run(
        [sys.executable, "-c", code, *names],
        cwd=tree,
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(line.split(" ", 1) for line in done.stdout.splitlines())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--source", type=Path, default=Path("."), help="the tree to copy")
    parser.add_argument("--plain", type=Path, default=Path("/tmp/compiled-hop-plain"))
    parser.add_argument("--compiled", type=Path, default=Path("/tmp/compiled-hop-compiled"))
    parser.add_argument("--modules", nargs="+", default=list(MODULES), help="files to compile")
    parser.add_argument("--measure", action="store_true", help="then count instructions per call")
    parser.add_argument("--calls", type=int, default=5000, help="passed to hop_instructions.py")
    args = parser.parse_args()
    modules = tuple(args.modules)
    source = args.source.resolve()
    copy_tree(source, args.plain)
    copy_tree(source, args.compiled)
    for line in apply_patches(args.compiled, modules):
        print(f"patched {line}")
    for module in MOVED_OUT:
        if module in modules:
            for line in split_async_generators(args.compiled, module):
                print(f"patched {line}")
    seconds = compile_modules(args.compiled, modules)
    print(f"mypyc: {len(modules)} modules in {seconds:.0f} s (log: {args.compiled / 'mypyc.log'})")
    for name, file in imported_from(args.compiled, modules).items():
        kind = "compiled" if file.endswith(".so") else "NOT compiled"
        print(f"{kind:12s} {name}  {file}")
    if args.measure:
        script = source / "benchmarks" / "hop_instructions.py"
        trees = [str(args.plain), str(args.compiled)] * 2
        argv = [sys.executable, str(script), "--trees", *trees, "--calls", str(args.calls)]
        subprocess.run(argv, check=True)


if __name__ == "__main__":
    main()

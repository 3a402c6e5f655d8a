"""A third session corpus, of another shape: coding agents reading and editing installed packages' source.

Written to check ΣLANG on traffic its anchors, chunking and base logic were not tuned on (both other
generators carry prose: docstrings, README text, comment blocks). Here most bytes are **code**, and
the requests differ from the other generators in every place they are regular:

- **the repository** of a tenant is one installed third-party package (the project's own excluded):
  its ``.py``, ``.pyi``, ``.c``/``.h``, ``.json``, ``.toml`` and ``.cfg`` files are what the agent reads;
- **tool calls with JSON arguments and JSON results**: ``read_file`` (a window of 30-140 lines of a
  real file, returned as ``{"path", "start_line", "end_line", "content"}``), ``grep`` (real matches of a
  real identifier over the package, ``path:line:text``), ``list_dir`` (a real directory listing),
  ``edit_file`` (``old``/``new`` strings: a real line and an edited copy), ``run_tests`` (a test log
  naming the package's real functions);
- **three request envelopes**, one per tenant: *Ollama* ``/api/chat`` (``tools`` as functions,
  ``tool_calls`` with argument *objects*, tool results as ``role: tool`` strings, ``options``;
  pretty-printed with ``indent=2``); *Anthropic* Messages (``system`` as a list of text blocks with
  ``cache_control``, ``tool_use``/``tool_result`` blocks; compact and with **sorted keys**); *OpenAI*
  chat completions whose tool-call arguments and results are **JSON strings inside JSON** (code is
  escaped twice: ``\\n`` becomes ``\\\\n``; ``ensure_ascii`` on, so non-ASCII is ``\\uXXXX``);
- **history compacted at the front**: a session keeps its whole history until it passes a byte
  budget or every few turns, then the older exchanges are replaced by one summary message (a
  "conversation so far" of the earlier answers' first sentences) and only the last 1-2 exchanges
  stay, as coding agents that summarise or truncate their context do; a turn's previous message is
  then no prefix of it;
- **non-English text**: one tenant in three writes its questions and the assistant's prose in German,
  French, Russian, Japanese or Chinese (`faker`'s word lists, which ship in that package);
- turn counts, tenants and sessions per tenant are parameters (defaults 4-12 turns, 4 × 6).

Deterministic for a given seed, Python version and set of installed packages.
"""

from __future__ import annotations

import json
import random
import re
import sysconfig
from pathlib import Path

from benchmarks.sigma_corpus import Session

__all__ = ("build_coding_sessions", "repositories")

_PROJECT = frozenset({"neurectomy", "api", "agents", "bridges", "ryot", "sigmalang", "vault", "orchestrator"})
_SUFFIXES = frozenset({".py", ".pyi", ".c", ".h", ".json", ".toml", ".cfg"})
_MAX_FILE_BYTES = 200_000
_IDENT = re.compile(r"\b(?:def|class)\s+([A-Za-z_][A-Za-z0-9_]{3,40})")
_LOCALES = ("de_DE", "fr_FR", "ru_RU", "ja_JP", "zh_CN")
_ROLES = (
    "You are a coding agent working in the repository below. Read before you edit, keep changes minimal, "
    "and run the tests after every edit.",
    "You are a senior reviewer. Explain what the code does, point at risky lines, and propose patches "
    "as edit_file calls.",
    "You are a maintenance bot: fix the reported bug, add a regression test, and summarise the change.",
)
_TOOLS: tuple[tuple[str, str, dict[str, str]], ...] = (
    ("read_file", "Read lines of a file of the repository.", {"path": "string", "start_line": "integer"}),
    ("grep", "Search the repository for a regular expression.", {"pattern": "string", "glob": "string"}),
    ("list_dir", "List a directory of the repository.", {"path": "string"}),
    ("edit_file", "Replace an exact string in a file.", {"path": "string", "old": "string", "new": "string"}),
    ("run_tests", "Run the test suite, or the tests matching -k.", {"k": "string", "verbose": "boolean"}),
)


class _Repo:
    """One package's readable files (text, decoded) and the names defined in them."""

    def __init__(self, name: str, root: Path, files: list[Path]) -> None:
        self.name = name
        self.root = root
        self.paths = files
        self._text: dict[Path, list[str]] = {}

    def lines(self, path: Path) -> list[str]:
        if path not in self._text:
            try:
                self._text[path] = path.read_text(encoding="utf-8").splitlines()
            except (UnicodeDecodeError, OSError):
                self._text[path] = []
        return self._text[path]

    def rel(self, path: Path) -> str:
        return str(path.relative_to(self.root.parent))


def repositories(min_files: int = 6) -> list[tuple[str, Path]]:
    """The installed third-party packages usable as repositories: ``(name, directory)``, sorted by name.

    Args:
        min_files: Packages with fewer top-level entries are skipped (single modules, data-only).
    """
    purelib = Path(sysconfig.get_paths()["purelib"])
    out = []
    for entry in sorted(purelib.iterdir()):
        if not entry.is_dir() or entry.name in _PROJECT or "." in entry.name or entry.name.startswith("_"):
            continue
        if sum(1 for _ in entry.iterdir()) >= min_files:
            out.append((entry.name, entry))
    return out


def _load_repo(name: str, root: Path, max_files: int = 400) -> _Repo | None:
    files = [
        p
        for p in sorted(root.rglob("*"))
        if p.suffix in _SUFFIXES
        and "__pycache__" not in p.parts
        and p.is_file()
        and 400 <= p.stat().st_size <= _MAX_FILE_BYTES
    ][:max_files]
    return _Repo(name, root, files) if len(files) >= 8 else None


def _prose(rng: random.Random, faker: object | None, repo: _Repo, n: int) -> str:
    """``n`` sentences: in the tenant's language (faker), else comments and docstring lines of the repo."""
    if faker is not None:
        return str(faker.paragraph(nb_sentences=n))  # type: ignore[attr-defined]
    out: list[str] = []
    for _ in range(n * 4):
        lines = repo.lines(rng.choice(repo.paths))
        if not lines:
            continue
        line = rng.choice(lines).strip().lstrip("#*/ ").strip()
        if len(line) > 30 and not line.startswith(("def ", "class ", "import ", "from ")):
            out.append(line.rstrip(".") + ".")
        if len(out) >= n:
            break
    return " ".join(out) or "No notes."


def _tool_result(rng: random.Random, repo: _Repo, tool: str) -> tuple[dict[str, object], object]:
    """A tool call's arguments and its result, from the repo's real files."""
    path = rng.choice(repo.paths)
    lines = repo.lines(path) or [""]
    if tool == "read_file":
        start = rng.randrange(max(1, len(lines) - 20))
        end = min(len(lines), start + rng.randint(30, 140))
        args: dict[str, object] = {"path": repo.rel(path), "start_line": start + 1}
        return args, {
            "path": repo.rel(path),
            "start_line": start + 1,
            "end_line": end,
            "content": "\n".join(lines[start:end]),
        }
    if tool == "grep":
        names = _IDENT.findall("\n".join(lines)) or [path.stem]
        pattern = rng.choice(names)
        matches = []
        for p in rng.sample(repo.paths, min(len(repo.paths), 60)):
            for i, line in enumerate(repo.lines(p)):
                if pattern in line:
                    matches.append({"path": repo.rel(p), "line": i + 1, "text": line.strip()[:200]})
            if len(matches) >= 25:
                break
        return {"pattern": pattern, "glob": "**/*"}, {"pattern": pattern, "matches": matches[:25]}
    if tool == "list_dir":
        d = path.parent
        entries = sorted(
            (f"{c.name}/" if c.is_dir() else c.name) for c in d.iterdir() if c.name != "__pycache__"
        )
        return {"path": repo.rel(d)}, {"path": repo.rel(d), "entries": entries[:80]}
    if tool == "edit_file":
        candidates = [ln for ln in lines if len(ln.strip()) > 12] or ["pass"]
        old = rng.choice(candidates)
        new = old.replace("(", "(\n    ", 1) if "(" in old else old + "  # checked"
        return {"path": repo.rel(path), "old": old, "new": new}, {
            "ok": True,
            "path": repo.rel(path),
            "replaced": 1,
        }
    names = _IDENT.findall("\n".join(lines)) or [path.stem]
    tests = [f"tests/test_{path.stem}.py::test_{n.lower()}" for n in rng.sample(names, min(len(names), 12))]
    failed = rng.randrange(len(tests) + 1) if rng.random() < 0.4 else -1
    log = "\n".join(f"{t} {'FAILED' if i == failed else 'PASSED'}" for i, t in enumerate(tests))
    summary = f"{len(tests) - (failed >= 0)} passed, {int(failed >= 0)} failed in {rng.uniform(0.2, 9):.2f}s"
    return {"k": path.stem, "verbose": True}, f"{log}\n{'=' * 20} {summary} {'=' * 20}"


def _schema(name: str, description: str, params: dict[str, str]) -> dict[str, object]:
    return {
        "type": "object",
        "properties": {k: {"type": v, "description": f"{k} of {name}"} for k, v in params.items()},
        "required": list(params)[:1],
        "description": description,
    }


def _envelope(
    style: str, system: str, tools: list[str], history: list[dict[str, object]], model: str
) -> bytes:
    """One request in the tenant's style from the style-neutral history (see the module docstring)."""
    specs = [t for t in _TOOLS if t[0] in tools]
    if style == "ollama":
        messages: list[dict[str, object]] = [{"role": "system", "content": system}]
        for m in history:
            if m["kind"] == "call":
                messages.append(
                    {
                        "role": "assistant",
                        "content": m["text"],
                        "tool_calls": [{"function": {"name": m["tool"], "arguments": m["args"]}}],
                    }
                )
            elif m["kind"] == "result":
                res = m["result"]
                messages.append({"role": "tool", "content": res if isinstance(res, str) else json.dumps(res)})
            else:
                messages.append({"role": m["role"], "content": m["text"]})
        request: dict[str, object] = {
            "model": model,
            "messages": messages,
            "tools": [{"type": "function", "function": {"name": n, **_schema(n, d, p)}} for n, d, p in specs],
            "options": {"temperature": 0.2, "num_ctx": 32768},
            "stream": False,
        }
        return json.dumps(request, indent=2, ensure_ascii=False).encode()
    if style == "anthropic":
        blocks: list[dict[str, object]] = []
        for m in history:
            if m["kind"] == "call":
                content = [
                    {"type": "text", "text": m["text"]},
                    {"type": "tool_use", "id": m["id"], "name": m["tool"], "input": m["args"]},
                ]
                blocks.append({"role": "assistant", "content": content})
            elif m["kind"] == "result":
                res = m["result"]
                text = res if isinstance(res, str) else json.dumps(res, ensure_ascii=False)
                blocks.append(
                    {
                        "role": "user",
                        "content": [{"type": "tool_result", "tool_use_id": m["id"], "content": text}],
                    }
                )
            else:
                blocks.append({"role": m["role"], "content": [{"type": "text", "text": m["text"]}]})
        request = {
            "model": model,
            "max_tokens": 4096,
            "system": [{"type": "text", "text": system, "cache_control": {"type": "ephemeral"}}],
            "tools": [{"name": n, "description": d, "input_schema": _schema(n, d, p)} for n, d, p in specs],
            "messages": blocks,
        }
        return json.dumps(request, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()
    messages = [{"role": "system", "content": system}]
    for m in history:
        if m["kind"] == "call":
            call = {
                "id": m["id"],
                "type": "function",
                "function": {"name": m["tool"], "arguments": json.dumps(m["args"])},
            }
            messages.append({"role": "assistant", "content": m["text"], "tool_calls": [call]})
        elif m["kind"] == "result":
            res = m["result"]
            messages.append(
                {
                    "role": "tool",
                    "tool_call_id": m["id"],
                    "content": res if isinstance(res, str) else json.dumps(res),
                }
            )
        else:
            messages.append({"role": m["role"], "content": m["text"]})
    request = {
        "model": model,
        "messages": messages,
        "tools": [
            {"type": "function", "function": {"name": n, "parameters": _schema(n, d, p)}} for n, d, p in specs
        ],
        "temperature": 0,
        "parallel_tool_calls": False,
    }
    return json.dumps(request).encode()


def build_coding_sessions(
    seed: int,
    *,
    tenants: int = 4,
    sessions_per_tenant: int = 6,
    turns: tuple[int, int] = (4, 12),
    budget_bytes: int = 48_000,
) -> list[Session]:
    """Build the sessions (see the module docstring), tenant by tenant.

    Args:
        seed: Random seed.
        tenants: Number of tenants (each gets one package as its repository and one envelope style).
        sessions_per_tenant: Sessions each.
        turns: Inclusive range of turns (requests) per session.
        budget_bytes: A history above this many bytes (JSON of its messages) is compacted before the
            next turn; it is also compacted every 3-6 turns.

    Raises:
        RuntimeError: Fewer than two usable packages are installed.
    """
    from faker import Faker

    rng = random.Random(seed)
    candidates = repositories()
    if len(candidates) < 2:
        raise RuntimeError(f"need at least 2 installed packages with source files, found {len(candidates)}")
    out: list[Session] = []
    for t in range(tenants):
        repo = None
        while repo is None:
            repo = _load_repo(*rng.choice(candidates))
        style = ("ollama", "anthropic", "openai")[t % 3]
        faker = None
        if rng.random() < 1 / 3:
            faker = Faker(rng.choice(_LOCALES))
            faker.seed_instance(rng.getrandbits(32))
        tenant = f"coding-{seed}-{t}"
        model = rng.choice(("qwen2.5-coder:7b", "claude-sonnet-4", "gpt-4.1", "llama3.1:8b"))
        system = (
            f"{rng.choice(_ROLES)}\n\nRepository: {repo.name} ({len(repo.paths)} files)\n"
            f"Conventions:\n{_prose(rng, faker, repo, 6)}\n\nFiles:\n"
            + "\n".join(repo.rel(p) for p in repo.paths[:40])
        )
        for s in range(sessions_per_tenant):
            tools = sorted(rng.sample([n for n, _, _ in _TOOLS], rng.randint(3, 5)))
            history: list[dict[str, object]] = []
            requests: list[bytes] = []
            compact_every = rng.randint(3, 6)
            for turn in range(rng.randint(*turns)):
                if turn and (turn % compact_every == 0 or len(json.dumps(history)) > budget_bytes):
                    said = [
                        str(m["text"]).split(". ")[0]
                        for m in history
                        if m.get("role") == "assistant" and m["text"]
                    ]
                    keep = rng.randint(1, 2) * 3
                    summary = "Summary of the conversation so far:\n- " + "\n- ".join(
                        said[-8:] or ["nothing yet"]
                    )
                    history = [{"kind": "text", "role": "user", "text": summary}, *history[-keep:]]
                task = _prose(rng, faker, repo, rng.randint(1, 3))
                history.append({"kind": "text", "role": "user", "text": task})
                for _ in range(rng.randint(1, 3)):
                    tool = rng.choice(tools)
                    args, result = _tool_result(rng, repo, tool)
                    call_id = f"call_{rng.getrandbits(64):016x}"
                    text = _prose(rng, faker, repo, 1) if rng.random() < 0.5 else ""
                    history.append({"kind": "call", "text": text, "tool": tool, "args": args, "id": call_id})
                    history.append({"kind": "result", "id": call_id, "result": result})
                requests.append(_envelope(style, system, tools, history, model))
                answer = _prose(rng, faker, repo, rng.randint(2, 5))
                if rng.random() < 0.4:
                    path = rng.choice(repo.paths)
                    lines = repo.lines(path)
                    start = rng.randrange(max(1, len(lines) - 10))
                    answer += "\n\n```\n" + "\n".join(lines[start : start + rng.randint(5, 25)]) + "\n```"
                history.append({"kind": "text", "role": "assistant", "text": answer})
            out.append(Session(tenant, f"{tenant}/session-{s}", tuple(requests)))
    return out

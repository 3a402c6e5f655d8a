"""Multi-turn RAG agent sessions built from real text that ships with Python (nothing downloaded).

Sources (all read from the running interpreter's standard library, so any machine has them):

- **retrieved documents**: passages (300-2,000 characters) of the docstrings of standard-library
  modules, classes and functions (``ast.get_docstring``), grouped by module (a module is a *topic*);
- **tool schemas**: OpenAI ``tools`` entries for public standard-library functions: the name, the
  first paragraph of the docstring, parameters from the function's signature;
- **system prompts**: the reference text of ``pydoc_data.topics`` (the language reference sections
  ``help()`` shows), behind a one-line role statement;
- **user turns** ask about a sentence of a passage; **assistant turns** answer with sentences of other
  passages and sometimes a few lines of the module's source code.

Every turn is one OpenAI chat-completions request that re-sends the system prompt, the session's tool
schemas and the whole history; the retrieved passages arrive either inside the user turn
(``Context: [1] ...``) or as a ``tool`` message answering an assistant ``tool_calls`` (half of the
sessions each). Sessions belong to tenants; a tenant's sessions share a few system prompts and tool
sets, as one application's users do. Deterministic for a given seed and Python version.
"""

from __future__ import annotations

import ast
import json
import pydoc_data.topics
import random
import re
import sysconfig
from dataclasses import dataclass
from pathlib import Path

__all__ = ("Session", "build_sessions", "corpus_sources")

_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")


@dataclass(frozen=True, slots=True)
class Session:
    """One conversation: its tenant, id and the request bytes of each turn, in order."""

    tenant: str
    session_id: str
    turns: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class _Module:
    name: str
    passages: tuple[str, ...]
    tools: tuple[dict[str, object], ...]
    code: tuple[str, ...]


def _passages(doc: str) -> list[str]:
    out: list[str] = []
    current = ""
    for para in re.split(r"\n\s*\n", doc.strip()):
        para = para.strip()
        if not para:
            continue
        if current and len(current) + len(para) > 2000:
            out.append(current)
            current = ""
        current = f"{current}\n\n{para}" if current else para
    if current:
        out.append(current)
    return [p for p in out if len(p) >= 300]


def _tool(module: str, node: ast.FunctionDef) -> dict[str, object] | None:
    doc = ast.get_docstring(node)
    if not doc or node.name.startswith("_"):
        return None
    args = [a.arg for a in node.args.args + node.args.kwonlyargs if a.arg not in ("self", "cls")]
    if not args:
        return None
    props: dict[str, object] = {}
    for a in node.args.args + node.args.kwonlyargs:
        if a.arg in ("self", "cls"):
            continue
        kind = "string"
        if isinstance(a.annotation, ast.Name) and a.annotation.id in ("int", "float", "bool"):
            kind = {"int": "integer", "float": "number", "bool": "boolean"}[a.annotation.id]
        props[a.arg] = {
            "type": kind,
            "description": f"The {a.arg.replace('_', ' ')} argument of {node.name}.",
        }
    return {
        "type": "function",
        "function": {
            "name": f"{module.replace('.', '_')}_{node.name}"[:64],
            "description": doc.split("\n\n")[0].replace("\n", " ").strip()[:600],
            "parameters": {"type": "object", "properties": props, "required": args[:1]},
        },
    }


def _module(path: Path, name: str) -> _Module | None:
    try:
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source)
    except (SyntaxError, UnicodeDecodeError, ValueError):
        return None
    passages: list[str] = []
    tools: list[dict[str, object]] = []
    code: list[str] = []
    lines = source.splitlines()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            doc = ast.get_docstring(node)
            if doc:
                passages.extend(_passages(doc))
        if isinstance(node, ast.FunctionDef):
            tool = _tool(name, node)
            if tool is not None:
                tools.append(tool)
            end = node.end_lineno or node.lineno
            if 4 <= end - node.lineno <= 30:
                code.append("\n".join(lines[node.lineno - 1 : end]))
    if len(passages) < 4:
        return None
    return _Module(name, tuple(passages), tuple(tools), tuple(code))


_PROJECT = frozenset({"neurectomy", "api", "agents", "bridges", "ryot", "sigmalang", "vault", "orchestrator"})


def corpus_sources(max_modules: int = 400, source: str = "stdlib") -> list[_Module]:
    """Modules with at least four docstring passages, sorted by name.

    Args:
        max_modules: Most modules returned.
        source: ``"stdlib"``: the standard library's top-level modules and packages; ``"packages"``:
            the modules of the third-party distributions installed next to the interpreter
            (``purelib``, the project's own packages excluded): an independent text source.
    """
    if source == "stdlib":
        root = Path(sysconfig.get_paths()["stdlib"])
        paths = sorted(root.glob("*.py")) + sorted(root.glob("*/__init__.py"))
    elif source == "packages":
        root = Path(sysconfig.get_paths()["purelib"])
        paths = [p for p in sorted(root.glob("*/*.py")) if p.parent.name.isidentifier()]
    else:
        raise ValueError(f"source must be 'stdlib' or 'packages', got {source!r}")
    modules: list[_Module] = []
    for path in paths:
        name = path.stem if path.name != "__init__.py" else path.parent.name
        if source == "packages":
            if path.parent.name in _PROJECT or path.parent.name.startswith("_"):
                continue
            name = f"{path.parent.name}.{path.stem}" if path.name != "__init__.py" else path.parent.name
        if path.stem.startswith("test") or name.startswith(("_", "test")):
            continue
        found = _module(path, name)
        if found is not None:
            modules.append(found)
        if len(modules) >= max_modules:
            break
    return modules


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.split(text.replace("\n", " ")) if len(s.strip()) > 20]


def build_sessions(
    seed: int,
    *,
    tenants: int = 4,
    sessions_per_tenant: int = 8,
    turns: tuple[int, int] = (4, 14),
    source: str = "stdlib",
) -> list[Session]:
    """Build the sessions of `tenants` tenants (see the module docstring).

    Args:
        seed: Random seed; the same seed gives the same bytes on the same Python version.
        tenants: Number of tenants.
        sessions_per_tenant: Sessions each.
        turns: Inclusive range of turns per session.
        source: Where documents come from (`corpus_sources`); with ``"packages"`` the system prompts
            are module documentation of installed packages too (not ``pydoc_data.topics``).

    Returns:
        Sessions in the order a service would see their first turns (tenant by tenant).
    """
    rng = random.Random(seed)
    modules = corpus_sources(source=source)
    all_tools = [t for m in modules for t in m.tools]
    topics = sorted(pydoc_data.topics.topics)
    out: list[Session] = []
    for t in range(tenants):
        tenant = f"tenant-{seed}-{t}"
        role = rng.choice(
            [
                "You are a careful assistant for Python developers. Answer from the context only.",
                "You are a documentation agent. Cite passages by number; say when you do not know.",
                "You are a code-review agent. Use tools when needed and keep answers short.",
            ]
        )
        if source == "stdlib":
            references = [pydoc_data.topics.topics[k] for k in rng.sample(topics, 3)]
        else:
            references = ["\n\n".join(rng.choice(modules).passages[:4]) for _ in range(3)]
        systems = [f"{role}\n\nReference:\n{ref}"[:6000] for ref in references]
        toolsets = [rng.sample(all_tools, rng.randint(6, 16)) for _ in range(2)]
        tenant_modules = rng.sample(modules, 12)
        for s in range(sessions_per_tenant):
            system = rng.choice(systems)
            tools = rng.choice(toolsets)
            inline = rng.random() < 0.5
            mod = rng.choice(tenant_modules)
            history: list[dict[str, object]] = [{"role": "system", "content": system}]
            requests: list[bytes] = []
            for turn in range(rng.randint(*turns)):
                if rng.random() < 0.25:
                    mod = rng.choice(tenant_modules)
                picked = rng.sample(mod.passages, min(len(mod.passages), rng.randint(2, 4)))
                question_src = _sentences(rng.choice(picked)) or [picked[0][:200]]
                question = f"About {mod.name}: {rng.choice(question_src)} Can you explain this?"
                context = "\n\n".join(f"[{i + 1}] {p}" for i, p in enumerate(picked))
                if inline:
                    history.append(
                        {"role": "user", "content": f"Context:\n{context}\n\nQuestion: {question}"}
                    )
                else:
                    call_id = f"call_{seed}_{t}_{s}_{turn}"
                    history.append({"role": "user", "content": question})
                    history.append(
                        {
                            "role": "assistant",
                            "content": None,
                            "tool_calls": [
                                {
                                    "id": call_id,
                                    "type": "function",
                                    "function": {
                                        "name": "search_docs",
                                        "arguments": json.dumps({"query": question[:120], "k": len(picked)}),
                                    },
                                }
                            ],
                        }
                    )
                    history.append({"role": "tool", "tool_call_id": call_id, "content": context})
                request = {
                    "model": "gemma-3-270m",
                    "messages": history,
                    "tools": tools,
                    "temperature": 0.2,
                    "max_tokens": 512,
                    "user": f"{tenant}/session-{s}",
                }
                requests.append(json.dumps(request).encode())
                answer = " ".join(rng.sample(_sentences(" ".join(picked)) or [picked[0]], 1) + [])
                other = rng.choice(mod.passages)
                answer += " " + " ".join(_sentences(other)[: rng.randint(1, 3)])
                if mod.code and rng.random() < 0.3:
                    answer += f"\n\n```python\n{rng.choice(mod.code)}\n```"
                history.append({"role": "assistant", "content": answer})
            out.append(Session(tenant, f"{tenant}/session-{s}", tuple(requests)))
    return out

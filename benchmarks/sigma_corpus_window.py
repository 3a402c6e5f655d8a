"""A second, independent session corpus: Messages-API agents with a sliding history window.

Written to check that what ΣLANG gains on `benchmarks.sigma_corpus` is not an artefact of that
generator; the codec was not tuned on it. It differs in every place the first one is regular:

- **documents** are *comment blocks* of Python source (runs of at least three ``#`` lines, 200 bytes
  or more), from the standard library and the installed third-party packages (the project's own
  excluded): prose written next to code, neither docstrings (the first corpus) nor README text (what
  the generic dictionary was trained on);
- **request shape**: Anthropic Messages style (``system`` as a top-level string, ``tools`` with
  ``input_schema``, content blocks ``text`` / ``tool_use`` / ``tool_result``), serialised compactly
  (no spaces after separators) and with non-ASCII characters kept as UTF-8;
- **history**: a sliding window: the request re-sends the system prompt, the tools and only the last
  `window` exchanges (older ones fall out, as agents that truncate their context do), so a turn's
  previous message is not a prefix of it; every system prompt starts with a per-turn header (turn
  number, a clock time and a request id), so even the first bytes change on every turn;
- **retrieval**: 1-5 documents per turn from a per-tenant pool drawn from several modules, returned
  as ``tool_result`` blocks; tool inputs and ids are random per call;
- turn counts, tenants and sessions per tenant are parameters (defaults 3-9 turns, 5 × 5).

Deterministic for a given seed, Python version and set of installed packages.
"""

from __future__ import annotations

import json
import random
import re
import sysconfig
from pathlib import Path

from benchmarks.sigma_corpus import Session

__all__ = ("build_window_sessions", "comment_documents")

_COMMENT_RUN = re.compile(r"(?:^[ \t]*#[^\n]*\n){3,}", re.MULTILINE)
_PROJECT = frozenset({"neurectomy", "api", "agents", "bridges", "ryot", "sigmalang", "vault", "orchestrator"})
_ROLES = (
    "You are an operations agent for a software team. Use the tools; quote the sources you used.",
    "You are a support engineer's assistant. Answer briefly and say which snippet supports the answer.",
    "You are a migration planner. Read the retrieved notes, list risks, and propose concrete steps.",
    "Du bist ein technischer Assistent. Antworte knapp, auf Deutsch, und nenne die Quelle (Ausschnitt).",
)
_TOOL_NAMES = (
    "search_notes",
    "open_file",
    "grep_repo",
    "run_tests",
    "list_tickets",
    "fetch_url",
    "create_branch",
    "comment_on_ticket",
    "query_metrics",
    "page_oncall",
)


def _comment_blocks(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return []
    out = []
    for m in _COMMENT_RUN.finditer(text):
        lines = [ln.strip().lstrip("#").strip() for ln in m.group(0).splitlines()]
        block = "\n".join(ln for ln in lines if ln and not set(ln) <= set("-=*#~"))
        if len(block) >= 200 and not block.startswith(("!", "-*-", "type:")):
            out.append(block[:2400])
    return out


def comment_documents(max_files: int = 4000) -> list[tuple[str, list[str]]]:
    """Comment blocks of Python files: ``(module path, blocks)`` for files with at least two blocks.

    Args:
        max_files: Most files read (standard library first, then the installed packages), in path order.
    """
    roots = [Path(sysconfig.get_paths()["stdlib"]), Path(sysconfig.get_paths()["purelib"])]
    found: list[tuple[str, list[str]]] = []
    read = 0
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            rel = path.relative_to(root)
            top = rel.parts[0]
            if top in _PROJECT or "test" in str(rel).lower() or top in ("site-packages", "__pycache__"):
                continue
            read += 1
            blocks = _comment_blocks(path)
            if len(blocks) >= 2:
                found.append((str(rel), blocks))
            if read >= max_files:
                return found
    return found


def _sentence(rng: random.Random, pool: list[str]) -> str:
    return " ".join(rng.choice(pool).split(". ")[0].split())[:300]


def _tool(rng: random.Random, name: str, words: list[str], pool: list[str]) -> dict[str, object]:
    props = {
        w: {
            "type": rng.choice(["string", "integer", "boolean", "array"]),
            "description": _sentence(rng, pool),
        }
        for w in rng.sample(words, rng.randint(2, 6))
    }
    return {
        "name": name,
        "description": _sentence(rng, pool),
        "input_schema": {"type": "object", "properties": props, "required": list(props)[:1]},
    }


def build_window_sessions(
    seed: int,
    *,
    tenants: int = 5,
    sessions_per_tenant: int = 5,
    turns: tuple[int, int] = (3, 9),
    window: int = 3,
) -> list[Session]:
    """Build the sessions (see the module docstring), tenant by tenant.

    Args:
        seed: Random seed.
        tenants: Number of tenants.
        sessions_per_tenant: Sessions each.
        turns: Inclusive range of turns (requests) per session.
        window: Exchanges (user turn, assistant turn, tool results) a request re-sends.
    """
    rng = random.Random(seed)
    files = comment_documents()
    words = sorted(
        {w for _, blocks in files[:200] for b in blocks for w in re.findall(r"\b[a-z][a-z_]{3,13}\b", b)}
    )
    out: list[Session] = []
    for t in range(tenants):
        tenant = f"window-{seed}-{t}"
        pool = [b for _, blocks in rng.sample(files, 10) for b in blocks][:60]
        systems = [
            f"{rng.choice(_ROLES)}\n\nHouse rules:\n" + "\n\n".join(rng.sample(pool, min(len(pool), 2)))
            for _ in range(2)
        ]
        toolsets = [
            [_tool(rng, n, words, pool) for n in rng.sample(_TOOL_NAMES, rng.randint(3, 8))] for _ in range(2)
        ]
        for s in range(sessions_per_tenant):
            system, tools = rng.choice(systems), rng.choice(toolsets)
            exchanges: list[list[dict[str, object]]] = []
            requests: list[bytes] = []
            clock = rng.randint(0, 80_000)
            for turn in range(rng.randint(*turns)):
                clock += rng.randint(5, 400)
                docs = rng.sample(pool, min(len(pool), rng.randint(1, 5)))
                question = f"{rng.choice(docs).split('.')[0][:160]}: what does this mean for us?"
                call = f"toolu_{rng.getrandbits(64):016x}"
                tool = str(rng.choice(tools)["name"])
                exchange: list[dict[str, object]] = [
                    {"role": "user", "content": [{"type": "text", "text": question}]},
                    {
                        "role": "assistant",
                        "content": [
                            {"type": "text", "text": "Let me look that up."},
                            {"type": "tool_use", "id": call, "name": tool, "input": {"query": question[:80]}},
                        ],
                    },
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "tool_result",
                                "tool_use_id": call,
                                "content": [{"type": "text", "text": d} for d in docs],
                            }
                        ],
                    },
                ]
                exchanges.append(exchange)
                header = (
                    f"[turn {turn + 1}] {clock // 3600:02d}:{clock // 60 % 60:02d}:{clock % 60:02d} UTC "
                    f"request {rng.getrandbits(48):012x}"
                )
                request = {
                    "model": "gemma-3-270m",
                    "max_tokens": rng.choice([256, 1024]),
                    "system": f"{header}\n{system}",
                    "tools": tools,
                    "messages": [m for ex in exchanges[-window:] for m in ex],
                    "metadata": {"user_id": f"{tenant}/s{s}"},
                }
                requests.append(json.dumps(request, separators=(",", ":"), ensure_ascii=False).encode())
                answer = " ".join(d.split("\n")[0] for d in docs[:2])
                exchange.append({"role": "assistant", "content": [{"type": "text", "text": answer}]})
            out.append(Session(tenant, f"{tenant}/session-{s}", tuple(requests)))
    return out

"""A fourth session generator, written apart from the other three: RAG help desks over package documentation.

Each tenant is one application with its own documents, system prompt, tools and request envelope:

- **text**: prose that the project's installed distributions ship besides their code and that no other
  generator (nor the generic dictionary, trained on ``METADATA`` descriptions) uses: model-card and
  dataset-card templates (sentence-transformers, huggingface_hub), the packaged MiniLM and Gemma READMEs,
  scikit-learn's dataset descriptions (reStructuredText), licence texts (Apache-2.0, GPL/LGPL/MPL, BSD,
  numpy's and scipy's bundled licences), pyphen's hyphenation READMEs (Portuguese, Icelandic, Estonian,
  Bulgarian, ...), numpy's masked-array guide, OpenTelemetry's IEEE 754 note, the OpenAI SDK's API
  reference pages and Typer's skill file (`APPS`; files located through `importlib.metadata`, so the
  same ones after ``make setup``: every distribution named is in the ``server`` or ``dev`` extra or a
  dependency of one);
- **envelope** (`sigma_prose_envelopes`): OpenAI chat completions (Python ``json.dumps``: ``\\uXXXX``
  escapes), Anthropic Messages (compact, raw UTF-8, system blocks with ``cache_control``) or Ollama
  ``/api/chat`` as a Go client sends it (compact, raw UTF-8, ``<``, ``>``, ``&`` escaped);
- **retrieval**: passages returned by a search tool (a tool call, then a tool result carrying a JSON
  list: JSON inside JSON) or pasted into the user message as a numbered context block;
- **sessions** of ``turns`` requests, each re-sending the system prompt, tools and the whole history
  (a question answered through the tool is two requests: the question, then the tool result);
  answers recombine sentences of the retrieved passages (clauses cut, citations, bullet lists, code
  blocks from the passage, follow-ups answered without retrieval).

Deterministic per seed (`random.Random` only; no clock, no hash of ``str``).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from benchmarks.sigma_corpus import Session
from benchmarks.sigma_prose_apps import APPS, App, source_texts
from benchmarks.sigma_prose_envelopes import ENVELOPES, Exchange, render

__all__ = ("Passage", "build_prose_sessions")

_HEADING = re.compile(r"^(#{1,4} .+|[^\n]+\n[=\-~^]{4,})$", re.MULTILINE)
_SENTENCE = re.compile(r"(?<=[.!?:])\s+(?=[A-Z0-9`*\[(ÀÁÂÉÍÓÚÞÆÖА-Я])")


@dataclass(frozen=True, slots=True)
class Passage:
    """One retrievable passage: id, source file, section title, text (300-1,400 characters)."""

    doc_id: str
    source: str
    title: str
    text: str


def _passages(name: str, text: str) -> list[Passage]:
    out: list[Passage] = []
    title, current = name, ""
    for block in re.split(r"\n\s*\n", text.replace("\r\n", "\n")):
        block = block.strip("\n")
        if not block.strip():
            continue
        if _HEADING.match(block.strip()) and len(block) < 200:
            title = block.strip().splitlines()[0].lstrip("# ").strip() or title
        if current and len(current) + len(block) > 1400:
            if len(current) >= 300:
                out.append(Passage(f"{name}#{len(out)}", name, title, current))
            current = ""
        current = f"{current}\n\n{block}" if current else block
    if len(current) >= 300:
        out.append(Passage(f"{name}#{len(out)}", name, title, current))
    return out


def _sentences(text: str) -> list[str]:
    flat = " ".join(
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("    ")
    )
    return [s for s in _SENTENCE.split(flat) if 25 <= len(s) <= 400]


_OPENERS = (
    "",
    "Short answer: ",
    "According to the retrieved documentation, ",
    "From {source}: ",
    "Yes. ",
    "",
)
_CLOSERS = (
    "",
    "\n\nLet me know if you want the full section.",
    "\n\nSources: {cites}.",
    "\n\nIf this does not answer it, try narrowing the question to one document.",
)
_QUESTIONS = (
    "What does {source} say about {term}?",
    "How should I handle {term}? Keep it short.",
    "Can you summarise the part on {title}?",
    "Is there anything about {term} in the docs? I need it for a review.",
    "Explain {term} with an example, please.",
    "Where is {title} described, and what are the key points?",
)
_FOLLOW_UPS = (
    "Can you make that shorter?",
    "Thanks. Put that as a bullet list.",
    "And in one sentence?",
    "ok, and the source again?",
)


def _term(rng: random.Random, passage: Passage) -> str:
    words = [w.strip(".,;:()`*[]\"'") for w in passage.text.split()]
    long = [w for w in words if len(w) >= 7 and w.isalpha()]
    return rng.choice(long) if long else passage.title


def _clause(sentence: str) -> str:
    head = sentence.split(", ")[0].rstrip(".")
    return head if len(head) >= 25 else sentence.rstrip(".")


def _answer(rng: random.Random, hits: list[Passage], question: str) -> str:
    sentences = [(i, s) for i, p in enumerate(hits, 1) for s in _sentences(p.text)]
    parts: list[str] = [rng.choice(_OPENERS).format(source=hits[0].source)]
    chosen = rng.sample(sentences, min(len(sentences), rng.randint(2, 5))) if sentences else []
    if chosen and rng.random() < 0.35:  # a bullet list of first clauses
        parts = ["The relevant points:\n", "\n".join(f"- {_clause(s).rstrip('.')} [{i}]" for i, s in chosen)]
    else:
        for i, s in chosen:
            if rng.random() < 0.5:  # keep a clause, drop the rest
                s = _clause(s) + rng.choice((".", " (see the passage for details).", ", among others."))
            parts.append(f"{s} [{i}] ")
    code = [p for p in hits if "```" in p.text or "::\n" in p.text]
    if code and rng.random() < 0.6:
        block = re.search(r"```[a-z]*\n(.*?)```|::\n\n((?:    .*\n?)+)", code[0].text, re.DOTALL)
        if block:
            body = (block.group(1) or block.group(2) or "").rstrip()
            parts.append(f"\n\nFor example:\n\n```python\n{body}\n```")
    if not chosen:
        parts.append(f"The retrieved passages do not answer \u201c{question}\u201d directly.")
    cites = ", ".join(f"[{i}] {p.source}" for i, p in enumerate(hits, 1))
    return "".join(parts).strip() + rng.choice(_CLOSERS).format(cites=cites)


def _session(
    rng: random.Random, app: App, envelope: str, passages: list[Passage], sid: str, n: int
) -> Session:
    user = rng.choice(
        ("ana.souza", "jon.karlsson", "mari.tamm", "p.ivanova", "l.martin", "k.weber", "dev-bot")
    )
    system = (
        f"{app.persona}\n\nRules:\n1. Cite passages as [n].\n2. If unsure, say so.\n3. Never invent "
        f"file names.\n\nToday is 2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}. User: {user}."
    )
    history: list[Exchange] = []
    turns: list[bytes] = []
    last: list[Passage] = []
    while len(turns) < n:
        if last and rng.random() < 0.2:  # a follow-up answered from what is already there
            question = rng.choice(_FOLLOW_UPS)
            history.append(Exchange(question, None, [], ""))
            turns.append(render(envelope, app, system, history, sid))
            history[-1] = Exchange(question, None, [], _answer(rng, last[:1], question))
            continue
        focus = rng.choice(last) if last and rng.random() < 0.4 else rng.choice(passages)
        near = [p for p in passages if p.source == focus.source and p is not focus]
        hits = [focus, *rng.sample(near, min(len(near), rng.randint(1, 2))), rng.choice(passages)]
        hits = list(dict.fromkeys(hits))[: rng.randint(2, 4)]
        question = rng.choice(_QUESTIONS).format(
            source=focus.source, term=_term(rng, focus), title=focus.title
        )
        query = (
            _term(rng, focus) if focus.title == focus.source else f"{_term(rng, focus)} {focus.title}"[:80]
        )
        if app.inline:
            history.append(Exchange(question, None, hits, ""))
        else:
            history.append(Exchange(question, query, [], ""))
            turns.append(render(envelope, app, system, history, sid))
            history[-1] = Exchange(question, query, hits, "")
        if len(turns) < n:
            turns.append(render(envelope, app, system, history, sid))
        history[-1] = Exchange(history[-1].question, history[-1].query, hits, _answer(rng, hits, question))
        last = hits
    return Session(tenant=app.name, session_id=sid, turns=tuple(turns[:n]))


def build_prose_sessions(
    seed: int, *, tenants: int = 4, sessions_per_tenant: int = 8, turns: tuple[int, int] = (2, 12)
) -> list[Session]:
    """Sessions of ``tenants`` applications (`APPS`, drawn without repeats while they last), in tenant order.

    Args:
        seed: Everything is drawn from ``random.Random(seed)``.
        tenants: Applications; tenant ``i`` is named ``<app>-<i>`` and has one envelope (the three in turn).
        sessions_per_tenant: Sessions of each tenant.
        turns: ``(min, max)`` requests per session, inclusive.

    Raises:
        ValueError: ``turns`` is not ``1 <= min <= max``.
    """
    if not 1 <= turns[0] <= turns[1]:
        raise ValueError(f"turns must be 1 <= min <= max, got {turns}")
    rng = random.Random(seed)
    apps = rng.sample(APPS, len(APPS))
    envelopes = rng.sample(ENVELOPES, len(ENVELOPES))
    sessions: list[Session] = []
    for t in range(tenants):
        app = apps[t % len(apps)]
        passages = [p for name, _, text in source_texts(app.name) for p in _passages(name, text)]
        tenant = App(f"{app.name}-{t}", app.persona, app.sources, app.tools, app.inline)
        for s in range(sessions_per_tenant):
            sid = f"{tenant.name}/s{s}-{rng.getrandbits(32):08x}"
            n = rng.randint(*turns)
            sessions.append(_session(rng, tenant, envelopes[t % len(envelopes)], passages, sid, n))
    return sessions

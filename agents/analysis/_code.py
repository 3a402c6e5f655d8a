"""The ``code-analyzer`` agent: metrics and structure of Python source, with radon and ``ast``.

* Cyclomatic complexity per function, method and closure (T. J. McCabe, "A Complexity Measure", IEEE
  TSE 1976), ranked A (1-5, simple) … F (41+, error-prone) as radon ranks it.
* Maintainability index, 0-100 (radon's variant of Oman & Hagemeister 1992 / Coleman et al. 1994:
  ``max(0, (171 - 5.2 ln V - 0.23 G - 16.2 ln L + 50 sin(sqrt(2.4 C))) * 100 / 171)`` with Halstead volume
  V (Halstead 1977), complexity G, source lines L and comment share C), ranked A (> 19), B (10-19), C (≤ 9).
* Raw line counts: LOC, logical lines, source lines, comments, docstrings, blanks.
* From ``ast``: classes with their bases and methods, functions with their arguments, every import.

Only Python is analysed; other languages are refused naming the ``language`` field.

The analysis (:func:`analyse_code`) runs in the team's worker process: on 200,000 characters of source,
``ast.parse`` is one C call of ~0.1 s holding the GIL (radon parses the source again), and the objects it
makes trigger full garbage collections of the process's heap; in a thread that stalled the agents' event
loop (and the API beside it) for ~0.3 s (``benchmarks/analysis_stalls.py``).
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field
from radon.complexity import cc_rank, cc_visit
from radon.metrics import mi_rank, mi_visit
from radon.raw import analyze
from radon.visitors import Class, Function

from agents.actor import Call
from agents.analysis._base import MAX_LISTED, AnalysisAgent, AnalysisInput, AnalysisOutput, check_chars
from agents.errors import BadInputError

__all__ = (
    "PYTHON_NAMES",
    "ClassInfo",
    "CodeAnalyzerAgent",
    "CodeInput",
    "CodeOutput",
    "FunctionInfo",
    "ImportInfo",
    "analyse_code",
    "analyse_python",
)

PYTHON_NAMES = frozenset({"python", "python3", "py"})
"""Values of ``language`` taken to mean Python (case-insensitive)."""

Kind = Literal["function", "method", "closure"]


class CodeInput(AnalysisInput):
    """Input of ``code-analyzer``."""

    code: str = Field(min_length=1, description="Source code, at most 200,000 characters.")
    language: str = Field(default="python", description="Only 'python' is supported.")


class FunctionInfo(AnalysisOutput):
    """One function, method or closure."""

    name: str
    qualname: str = Field(description="``Class.method`` for methods, ``outer.inner`` for closures.")
    kind: Kind
    lineno: int
    endline: int
    complexity: int = Field(description="McCabe cyclomatic complexity (decision points + 1).")
    rank: str = Field(description="A (1-5) B (6-10) C (11-20) D (21-30) E (31-40) F (41+).")
    is_async: bool
    args: list[str]
    has_docstring: bool


class ClassInfo(AnalysisOutput):
    """One class."""

    name: str
    lineno: int
    endline: int
    bases: list[str]
    methods: list[str]
    complexity: int = Field(description="radon's class complexity: mean of its methods' plus one.")
    rank: str


class ImportInfo(AnalysisOutput):
    """One ``import`` or ``from … import`` statement."""

    module: str = Field(description="Module imported (``.pkg`` style for relative imports).")
    names: list[str] = Field(description="Names imported from it (empty for ``import module``).")
    lineno: int


class CodeOutput(AnalysisOutput):
    """Output of ``code-analyzer``."""

    language: Literal["python"]
    functions: list[FunctionInfo] = Field(description=f"At most {MAX_LISTED}, by line.")
    classes: list[ClassInfo]
    imports: list[ImportInfo]
    average_complexity: float | None
    max_complexity: int | None
    maintainability_index: float = Field(description="0-100; higher is easier to maintain.")
    maintainability_rank: str = Field(description="A (> 19), B (10-19), C (≤ 9).")
    raw: dict[str, int] = Field(description="loc, lloc, sloc, comments, multi, blank, single_comments.")
    summary: str


def _args(node: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    a = node.args
    names = [x.arg for x in (*a.posonlyargs, *a.args)]
    names += [f"*{a.vararg.arg}"] if a.vararg else []
    names += [x.arg for x in a.kwonlyargs]
    names += [f"**{a.kwarg.arg}"] if a.kwarg else []
    return names


def _flatten(blocks: list[Function | Class]) -> list[tuple[Function, str, Kind]]:
    """Every function block with its qualified name and kind (methods and closures included)."""
    out: list[tuple[Function, str, Kind]] = []

    def visit(fn: Function, prefix: str, kind: Kind) -> None:
        qual = f"{prefix}{fn.name}"
        out.append((fn, qual, kind))
        for inner in fn.closures:
            visit(inner, f"{qual}.", "closure")

    for block in blocks:
        if isinstance(block, Function) and not block.is_method:
            visit(block, "", "function")
        elif isinstance(block, Class):
            for method in block.methods:
                visit(method, f"{block.name}.", "method")
            for inner in block.inner_classes:
                for method in inner.methods:
                    visit(method, f"{block.name}.{inner.name}.", "method")
    return sorted(out, key=lambda t: t[0].lineno)


def _functions(tree: ast.Module, blocks: list[Function | Class]) -> list[FunctionInfo]:
    defs = {
        (n.lineno, n.name): n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    functions: list[FunctionInfo] = []
    for fn, qual, kind in _flatten(blocks):
        node = defs.get((fn.lineno, fn.name))
        functions.append(
            FunctionInfo(
                name=fn.name,
                qualname=qual,
                kind=kind,
                lineno=fn.lineno,
                endline=fn.endline,
                complexity=fn.complexity,
                rank=cc_rank(fn.complexity),
                is_async=isinstance(node, ast.AsyncFunctionDef),
                args=_args(node) if node else [],
                has_docstring=bool(node and ast.get_docstring(node)),
            )
        )
    return functions


def _classes(tree: ast.Module, blocks: list[Function | Class]) -> list[ClassInfo]:
    radon_classes = {(c.lineno, c.name): c for c in blocks if isinstance(c, Class)}
    classes: list[ClassInfo] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.ClassDef):
            continue
        block = radon_classes.get((node.lineno, node.name))
        complexity = int(block.complexity) if block else 1
        classes.append(
            ClassInfo(
                name=node.name,
                lineno=node.lineno,
                endline=node.end_lineno or node.lineno,
                bases=[ast.unparse(b) for b in node.bases],
                methods=[n.name for n in node.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)],
                complexity=complexity,
                rank=cc_rank(complexity),
            )
        )
    return sorted(classes, key=lambda c: c.lineno)


def _imports(tree: ast.Module) -> list[ImportInfo]:
    imports: list[ImportInfo] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imports += [ImportInfo(module=a.name, names=[], lineno=node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            imports.append(ImportInfo(module=module, names=[a.name for a in node.names], lineno=node.lineno))
    return sorted(imports, key=lambda i: i.lineno)


def analyse_python(code: str, tree: ast.Module) -> CodeOutput:
    """Metrics and structure of ``code`` (parsed as ``tree``); blocking."""
    blocks = cc_visit(code)
    functions = _functions(tree, blocks)
    classes = _classes(tree, blocks)
    imports = _imports(tree)
    mi = float(mi_visit(code, multi=True))
    raw = analyze(code)
    complexities = [f.complexity for f in functions]
    worst = max(functions, key=lambda f: f.complexity, default=None)
    summary = (
        f"{len(functions)} functions, {len(classes)} classes, {raw.sloc} SLOC, MI {mi:.1f} ({mi_rank(mi)})"
    )
    if worst is not None:
        summary += f"; most complex: {worst.qualname} ({worst.complexity}, {worst.rank})"
    return CodeOutput(
        language="python",
        functions=functions[:MAX_LISTED],
        classes=classes[:MAX_LISTED],
        imports=imports[:MAX_LISTED],
        average_complexity=sum(complexities) / len(complexities) if complexities else None,
        max_complexity=max(complexities, default=None),
        maintainability_index=mi,
        maintainability_rank=mi_rank(mi),
        raw={
            k: int(getattr(raw, k))
            for k in ("loc", "lloc", "sloc", "comments", "multi", "blank", "single_comments")
        },
        summary=summary,
    )


def parse_python(code: str) -> ast.Module:
    """Parse ``code``.

    Raises:
        BadInputError: On ``code``, with the line (and column) of the syntax error.
    """
    try:
        return ast.parse(code)
    except SyntaxError as exc:
        where = f"line {exc.lineno}" + (f", column {exc.offset}" if exc.offset else "")
        raise BadInputError(f"Python syntax error at {where}: {exc.msg}", field="code") from None
    except ValueError as exc:  # null bytes (Python 3.11)
        raise BadInputError(f"not parseable Python: {exc}", field="code") from None


def analyse_code(code: str) -> CodeOutput:
    """Parse ``code`` and measure it: :func:`parse_python` then :func:`analyse_python` (blocking).

    Run in the team's worker process (see the module docstring); ``code`` and the result travel pickled.

    Raises:
        BadInputError: On ``code``, with the line (and column) of the syntax error.
    """
    return analyse_python(code, parse_python(code))


class CodeAnalyzerAgent(AnalysisAgent):
    """Measures Python source: complexity per function, maintainability, line counts and structure."""

    name = "code-analyzer"
    description = (
        "Analyses Python source code: cyclomatic complexity per function with A-F ranks, maintainability "
        "index, line counts, and the lists of functions, classes and imports."
    )
    capabilities = ("code", "complexity", "metrics", "maintainability", "lint", "python", "review")
    input_model: ClassVar[type[BaseModel]] = CodeInput
    output_model: ClassVar[type[BaseModel]] = CodeOutput
    text_input: ClassVar[str | None] = "code"

    async def handle(self, call: Call) -> Mapping[str, Any]:
        """Analyse ``code`` (a :class:`CodeInput`); return a :class:`CodeOutput` as JSON.

        Raises:
            BadInputError: ``language`` is not Python, or ``code`` does not parse (line and column named).
            TooLargeError: ``code`` is longer than 200,000 characters.
        """
        inp: CodeInput = call.input
        if inp.language.strip().lower() not in PYTHON_NAMES:
            raise BadInputError(f"only Python can be analysed, not {inp.language!r}", field="language")
        check_chars("code", inp.code)
        # ast.parse of a long source is one C call holding the GIL: a thread would stall the event loop.
        out = await self.in_process(analyse_code, inp.code)
        return out.model_dump()

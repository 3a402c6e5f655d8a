"""Pathological input is refused with its limit or handled in linear time (no timing asserted: the old
cubic/exponential code did not finish these inputs within the suite's per-test timeout)."""

from __future__ import annotations

import pytest

from agents.analysis._entity_rules import find_urls
from agents.errors import ForbiddenError
from agents.plans import MAX_PLAN_TEXT_BYTES, MAX_YAML_NODES, PlanError, parse_plan, resolve
from agents.scopes import OperationScopes, check_scope
from ryot.errors import InvalidRequestError
from ryot.grammar import MAX_REPETITION, grammar_from_json_schema

N = 200_000


def plan_with(text: str) -> dict[str, object]:
    return {"steps": [{"id": "a", "agent": "generator", "input": {"prompt": text}}]}


@pytest.mark.parametrize(
    "text", ["${" + " " * N, "${" * N, "${ " * N + "}", "$" * N + "{", "x ${input.q" + " " * N + "}"]
)
def test_plan_references_in_pathological_text_parse_in_linear_time(text: str) -> None:
    try:
        plan = parse_plan(plan_with(text))
    except PlanError as exc:  # a reference that names no input or step
        assert exc.field is not None and "steps" in exc.field
        return
    assert plan.steps[0].input["prompt"] == text


def test_references_resolve_as_before() -> None:
    inputs = {"q": "why", "xs": ["a", "b"], "n": 3}
    assert resolve("${input.q}", inputs, {}) == "why"
    assert resolve("  ${ input.xs }  ", inputs, {}) == ["a", "b"]
    assert resolve("Q: ${input.q}; n=${input.n}; ${}", inputs, {}) == "Q: why; n=3; ${}"
    assert resolve("${input.xs[*]} and ${input.xs[1]}", inputs, {}) == "a\n\nb and b"
    with pytest.raises(PlanError, match="no key"):
        resolve("${input.missing}", inputs, {})


def test_yaml_aliases_are_refused_and_nodes_capped() -> None:
    laughs = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n" for i in range(20)
    )
    with pytest.raises(PlanError, match="aliases") as aliased:
        parse_plan(laughs)
    assert aliased.value.field == "plan"
    many = "steps: [" + ", ".join("1" for _ in range(MAX_YAML_NODES + 10)) + "]"
    with pytest.raises(PlanError, match=f"at most {MAX_YAML_NODES} YAML nodes"):
        parse_plan(many)
    with pytest.raises(PlanError, match=f"at most {MAX_PLAN_TEXT_BYTES} bytes"):
        parse_plan("#" * (MAX_PLAN_TEXT_BYTES + 1))
    with pytest.raises(PlanError, match="nested too deeply"):
        parse_plan("[" * 50_000)
    plan = parse_plan("steps:\n  - {id: a, agent: generator, input: {prompt: hi}}\n")
    assert plan.steps[0].agent == "generator"


def test_url_finding_is_linear_on_dotted_runs_and_keeps_its_answers() -> None:
    assert find_urls("1." * N + "%") == []
    assert find_urls("a." * N) == []
    text = "See https://example.com/pricing: or www.a.org, a.org/x?y=1. mail ada@example.org (https://b.io/c)"
    assert [(u.text, u.value) for u in find_urls(text)] == [
        ("https://example.com/pricing", "https://example.com/pricing"),
        ("www.a.org", "http://www.a.org"),
        ("a.org/x?y=1", "http://a.org/x?y=1"),
        ("https://b.io/c", "https://b.io/c"),
    ]
    assert all(text[u.start : u.end] == u.text for u in find_urls(text))


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ({"type": "array", "items": {"type": "string"}, "minItems": 10**6}, "minItems"),
        ({"type": "string", "pattern": "a{100000}"}, "repeats"),
        ({"type": "string", "pattern": "a" * (MAX_REPETITION + 1)}, "pattern"),
        ({"enum": list(range(5000))}, "values"),
    ],
)
def test_json_schemas_beyond_the_limits_are_refused(schema: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidRequestError, match=message) as refused:
        grammar_from_json_schema(schema)
    assert refused.value.field == "json_schema"


def test_deep_json_schemas_are_refused() -> None:
    schema: dict[str, object] = {"type": "string"}
    for _ in range(100):
        schema = {"type": "object", "properties": {"x": schema}}
    with pytest.raises(InvalidRequestError, match="nested deeper"):
        grammar_from_json_schema(schema)
    assert "root" in grammar_from_json_schema({"type": "object", "properties": {"a": {"type": "integer"}}})


def test_operation_scopes() -> None:
    indexer = OperationScopes(default="admin", op_field="op", by_value={"compact": "admin", "status": "read"})
    assert indexer.needed({"op": "status"}) == "read"
    assert indexer.needed({}) == "admin"
    assert indexer.needed({"op": "${input.op}"}) == "admin"  # not known yet: the strictest
    check_scope("indexer", indexer, {"op": "status"}, {"read"})
    with pytest.raises(ForbiddenError, match="indexer op='compact' needs the 'admin' scope; .* read,write"):
        check_scope("indexer", indexer, {"op": "compact"}, {"write", "read"})

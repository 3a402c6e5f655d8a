"""Authorisation by operation: the scope each agent operation needs, and the check every hop makes.

Scopes are those of API keys and JWTs (``read``, ``write``, ``admin``; none implies another). An agent
declares what its calls need (:class:`OperationScopes`): one scope for every call, or a scope per value
of one input field (``snapshotter``: every ``op`` is ``admin``; ``indexer``: ``compact`` is ``admin``,
``status`` is ``read``). The roster carries the declaration (``AgentSpec.scopes``), so the router, the
plan runner (at submit and at each step) and the agent itself (from the ``Neurectomy-Scopes`` header)
all apply the same rule, before the input is validated: a ``write`` credential gets ``forbidden`` (403)
whichever path it takes.

This module is a leaf: it imports nothing of the project but the errors.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from agents.errors import ForbiddenError

__all__ = (
    "ALL_SCOPES",
    "OperationScopes",
    "Scope",
    "check_scope",
    "format_scopes",
    "parse_scopes_header",
)

Scope = Literal["read", "write", "admin"]
ALL_SCOPES: frozenset[str] = frozenset({"read", "write", "admin"})
"""What a trusted in-process caller (and a service with auth off) holds."""
_ORDER = ("read", "write", "admin")


@dataclass(frozen=True, slots=True)
class OperationScopes:
    """The scope an agent's calls need.

    Attributes:
        default: Scope of a call whose ``op_field`` is absent or has a value not in ``by_value``.
        op_field: Input field naming the operation (``op``, ``action``), or ``None``.
        by_value: Operation name → scope.
    """

    default: Scope = "write"
    op_field: str | None = None
    by_value: Mapping[str, Scope] = field(default_factory=dict)

    def needed(self, payload: Any) -> Scope:
        """The scope a call with input ``payload`` needs (a non-literal operation needs the strictest)."""
        if self.op_field is None or not isinstance(payload, Mapping) or self.op_field not in payload:
            return self.default
        value = payload[self.op_field]
        if isinstance(value, str) and value in self.by_value:
            return self.by_value[value]
        return self.strictest()

    def strictest(self) -> Scope:
        """The strictest scope any call of the agent may need (for a step whose input is not known yet)."""
        scopes = {self.default, *self.by_value.values()}
        return max(scopes, key=_ORDER.index)


def check_scope(agent: str, needs: OperationScopes, payload: Any, held: Iterable[str]) -> None:
    """Raise unless ``held`` contains the scope a call of ``agent`` with ``payload`` needs.

    Raises:
        ForbiddenError: The scope is missing (the message names the agent, the operation and the scope).
    """
    needed = needs.needed(payload)
    held = frozenset(held)
    if needed in held:
        return
    op = ""
    if needs.op_field is not None and isinstance(payload, Mapping) and needs.op_field in payload:
        op = f" {needs.op_field}={payload[needs.op_field]!r}"
    have = format_scopes(held) or "none"
    raise ForbiddenError(f"{agent}{op} needs the '{needed}' scope; this credential has: {have}")


def format_scopes(scopes: Iterable[str]) -> str:
    """Scopes as the ``Neurectomy-Scopes`` header carries them: comma-separated, in a fixed order."""
    if isinstance(scopes, frozenset):
        return _format_set(scopes)
    held = set(scopes)
    return ",".join(s for s in _ORDER if s in held)


@functools.cache  # a few distinct sets: subsets of ALL_SCOPES (every call formats its caller's)
def _format_set(scopes: frozenset[str]) -> str:
    return ",".join(s for s in _ORDER if s in scopes)


@functools.lru_cache(maxsize=64)  # every call parses one; the header comes from the wire, so bounded
def parse_scopes_header(value: str | None) -> frozenset[str]:
    """The scopes of a ``Neurectomy-Scopes`` header (none when it is absent)."""
    if not value:
        return frozenset()
    return frozenset(s for s in (p.strip() for p in value.split(",")) if s in ALL_SCOPES)

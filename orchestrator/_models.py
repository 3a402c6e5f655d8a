"""The models the collective serves, read from the agents' ``$SRV.STATS`` answers.

Two sources, merged by model name:

* Ryot model pools: every Inference agent reports its pool in its stats data (``models``: one dict per
  configured model, see ``ryot.ModelStatus``). Agents of one process share one pool (same ``pool`` id),
  so each pool counts once; pools of several processes (replicas) are summed: the model is ``loaded`` if
  any replica has it loaded, and ``active``, ``queue_depth`` and ``memory_bytes`` add up.
* Any other agent whose metadata names a ``model`` (the embedder, similarity): served and loaded; the
  facts about it (parameter count, files) come from its stats data's ``model_facts`` when it gives them.

What a model *is* (architecture, parameter count, quantisation, trained context, files: the ``_FACTS``)
is the same in every replica; a replica that does not know them yet (a packaged model it has not
loaded) leaves them to one that does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

__all__ = ("ModelInfo", "models_from_stats")

_RANK = {"loaded": 3, "loading": 2, "failed": 1, "unloaded": 0}


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """A served model, as the agents report it.

    Attributes:
        id: The model's name (what requests pass as ``model``).
        agent: The agent that reported it first (``generator`` for Ryot models).
        status: ``loaded``, ``loading``, ``failed`` or ``unloaded`` (best over the replicas).
        default: Requests that name no model get this one.
        kind: ``generation`` (a Ryot model) or ``embedding``.
        n_ctx: Context window of one request, in tokens (Ryot models).
        parallel: Requests decoded together per replica (Ryot models).
        memory_bytes: Approximate memory of the loaded copies, summed over replicas (Ryot models).
        active: Requests being decoded, summed over replicas.
        queue_depth: Requests waiting for a free sequence, summed over replicas.
        loaded_at: Earliest load time of a loaded copy (Unix time, seconds).
        last_used_at: Latest use by any replica (Unix time, seconds).
        idle_unload_s: Seconds without use after which a replica frees the model (``None``: never).
        replicas: Processes (model pools) that serve the model.
        loaded_replicas: Of those, the ones that have it loaded now.
        error: The last load failure reported, if the model failed.

        The facts about the model itself (``architecture`` to ``file_mtime``, ``metadata``, and
        ``file_sha256``: the SHA-256 of its file, once a replica has hashed it) come from whichever
        replica knows them; ``path`` is the model file's path on the host of such a replica.
    """

    id: str
    agent: str
    status: str
    default: bool = False
    kind: str = "generation"
    n_ctx: int | None = None
    parallel: int | None = None
    memory_bytes: int | None = None
    active: int = 0
    queue_depth: int = 0
    loaded_at: float | None = None
    last_used_at: float | None = None
    idle_unload_s: float | None = None
    replicas: int = 1
    loaded_replicas: int = 1
    error: str | None = None
    architecture: str | None = None
    parameter_count: int | None = None
    quantization: str | None = None
    context_length_trained: int | None = None
    embedding_length: int | None = None
    file_size: int | None = None
    file_mtime: float | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    file_sha256: str | None = None
    path: str | None = None


_FACTS: dict[str, type] = {
    "architecture": str,
    "parameter_count": int,
    "quantization": str,
    "context_length_trained": int,
    "embedding_length": int,
    "file_size": int,
    "file_mtime": float,
    "file_sha256": str,
    "path": str,
}
"""The fields that describe the model itself (not its state), and their types."""


def _facts(s: Mapping[str, Any]) -> dict[str, Any]:
    """The :data:`_FACTS` (and ``metadata``) that ``s`` gives."""
    out: dict[str, Any] = {k: t(s[k]) for k, t in _FACTS.items() if s.get(k) is not None}
    if isinstance(s.get("metadata"), Mapping) and s["metadata"]:
        out["metadata"] = dict(s["metadata"])
    return out


def _with_facts(a: ModelInfo, s: Mapping[str, Any]) -> ModelInfo:
    """``a``, with what ``s`` tells about the model where ``a`` does not know it."""
    known = {k: v for k, v in _facts(s).items() if not getattr(a, k)}
    return replace(a, **known) if known else a


def _merge(a: ModelInfo, s: Mapping[str, Any]) -> ModelInfo:
    """``a`` with one more pool's status ``s`` of the same model added."""
    state = str(s.get("state", "unloaded"))
    loaded = state == "loaded"
    loaded_at = s.get("loaded_at") if loaded else None
    used = s.get("last_used_at")
    merged = replace(
        a,
        status=state if _RANK.get(state, 0) > _RANK.get(a.status, 0) else a.status,
        default=a.default or bool(s.get("default")),
        memory_bytes=(a.memory_bytes or 0) + int(s.get("memory_bytes") or 0),
        active=a.active + int(s.get("active") or 0),
        queue_depth=a.queue_depth + int(s.get("queue_depth") or 0),
        loaded_at=min((t for t in (a.loaded_at, loaded_at) if t is not None), default=None),
        last_used_at=max((t for t in (a.last_used_at, used) if t is not None), default=None),
        replicas=a.replicas + 1,
        loaded_replicas=a.loaded_replicas + int(loaded),
        error=a.error or (str(s["error"]) if state == "failed" and s.get("error") else None),
    )
    return _with_facts(merged, s)


def _first(agent: str, s: Mapping[str, Any]) -> ModelInfo:
    state = str(s.get("state", "unloaded"))
    loaded = state == "loaded"
    return ModelInfo(
        id=str(s["name"]),
        agent=agent,
        status=state,
        default=bool(s.get("default")),
        n_ctx=int(s["n_ctx"]) if s.get("n_ctx") is not None else None,
        parallel=int(s["parallel"]) if s.get("parallel") is not None else None,
        memory_bytes=int(s.get("memory_bytes") or 0),
        active=int(s.get("active") or 0),
        queue_depth=int(s.get("queue_depth") or 0),
        loaded_at=s.get("loaded_at") if loaded else None,
        last_used_at=s.get("last_used_at"),
        idle_unload_s=s.get("idle_unload_s"),
        replicas=1,
        loaded_replicas=int(loaded),
        error=str(s["error"]) if state == "failed" and s.get("error") else None,
        **_facts(s),
    )


def models_from_stats(answers: Iterable[Mapping[str, Any]]) -> list[ModelInfo]:
    """The served models in ``$SRV.STATS`` answers (merged as the module docstring says).

    Ryot pool models come first, in configuration order, then the other agents' models.
    """
    pooled: dict[str, ModelInfo] = {}
    others: dict[str, ModelInfo] = {}
    seen: set[tuple[str, str]] = set()
    for answer in answers:
        meta = answer.get("metadata") or {}
        if "team" not in meta:
            continue  # another micro service on the same NATS
        agent = str(answer.get("name", ""))
        endpoints = answer.get("endpoints") or [{}]
        data = endpoints[0].get("data") or {}
        statuses = data.get("models")
        if isinstance(statuses, list):
            for s in statuses:
                if not isinstance(s, Mapping) or "name" not in s:
                    continue
                key = (str(s.get("pool", "")), str(s["name"]))
                if key in seen:
                    continue  # another agent of the same process: the same pool
                seen.add(key)
                name = key[1]
                pooled[name] = _merge(pooled[name], s) if name in pooled else _first(agent, s)
        elif meta.get("model"):
            name = str(meta["model"])
            facts = data.get("model_facts")
            info = others.setdefault(name, ModelInfo(id=name, agent=agent, status="loaded", kind="embedding"))
            if isinstance(facts, Mapping):
                others[name] = _with_facts(info, facts)
    return [*pooled.values(), *(m for name, m in others.items() if name not in pooled)]

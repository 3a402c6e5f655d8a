"""The orchestrator: selects agents, routes calls with failover and retries, runs plans over NATS.

The names below load on first use (as pydantic's do), so importing one leaf module of the package
(as the SDK does) loads nothing else.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from agents._compiled import install

install()  # the call path's compiled modules, when built and current (agents._compiled)

if TYPE_CHECKING:
    from orchestrator._call_context import CallContext, new_id
    from orchestrator._collective import OrchestratorCollective
    from orchestrator._dispatch import call_agent
    from orchestrator._load import LoadMonitor
    from orchestrator._models import ModelInfo
    from orchestrator._observe import CallObserver
    from orchestrator._orchestrator import AgentInfo, Orchestrator
    from orchestrator._plans import ProgressFn
    from orchestrator._reliability import CircuitBreaker, RetryBudget
    from orchestrator._route import Invocation
    from orchestrator._select import Selection
    from orchestrator._streams import GenerationStream, TextDelta
    from orchestrator._task_exec import task_executor
    from orchestrator._task_reconcile import TaskReconciler
    from orchestrator._task_seal import Sealer
    from orchestrator._task_store import TaskConfig, TaskQueue, TaskRecord, TaskRequest, TaskStatus
    from orchestrator._task_worker import TaskWorker
    from orchestrator.config import OrchestratorConfig

__all__ = (
    "AgentInfo",
    "CallContext",
    "CallObserver",
    "CircuitBreaker",
    "GenerationStream",
    "Invocation",
    "LoadMonitor",
    "ModelInfo",
    "Orchestrator",
    "OrchestratorCollective",
    "OrchestratorConfig",
    "ProgressFn",
    "RetryBudget",
    "Sealer",
    "Selection",
    "TaskConfig",
    "TaskQueue",
    "TaskReconciler",
    "TaskRecord",
    "TaskRequest",
    "TaskStatus",
    "TaskWorker",
    "TextDelta",
    "call_agent",
    "new_id",
    "task_executor",
)

_MODULE_OF = {
    "OrchestratorCollective": "orchestrator._collective",
    "CallContext": "orchestrator._call_context",
    "new_id": "orchestrator._call_context",
    "call_agent": "orchestrator._dispatch",
    "LoadMonitor": "orchestrator._load",
    "ModelInfo": "orchestrator._models",
    "CallObserver": "orchestrator._observe",
    "AgentInfo": "orchestrator._orchestrator",
    "Orchestrator": "orchestrator._orchestrator",
    "TextDelta": "orchestrator._streams",
    "GenerationStream": "orchestrator._streams",
    "ProgressFn": "orchestrator._plans",
    "CircuitBreaker": "orchestrator._reliability",
    "RetryBudget": "orchestrator._reliability",
    "Invocation": "orchestrator._route",
    "Selection": "orchestrator._select",
    "task_executor": "orchestrator._task_exec",
    "TaskReconciler": "orchestrator._task_reconcile",
    "Sealer": "orchestrator._task_seal",
    "TaskConfig": "orchestrator._task_store",
    "TaskQueue": "orchestrator._task_store",
    "TaskRecord": "orchestrator._task_store",
    "TaskRequest": "orchestrator._task_store",
    "TaskStatus": "orchestrator._task_store",
    "TaskWorker": "orchestrator._task_worker",
    "OrchestratorConfig": "orchestrator.config",
}


def __getattr__(name: str) -> object:
    """Load a public name from its module on first use."""
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'orchestrator' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The module's names, with the public ones not loaded yet."""
    return [*globals(), *__all__]

"""The orchestrator: selects agents, routes calls with failover and retries, runs plans over NATS."""

from orchestrator._collective import OrchestratorCollective
from orchestrator._dispatch import CallContext, call_agent
from orchestrator._load import LoadMonitor
from orchestrator._models import ModelInfo
from orchestrator._observe import CallObserver
from orchestrator._orchestrator import AgentInfo, Orchestrator, TextDelta
from orchestrator._plans import ProgressFn
from orchestrator._reliability import CircuitBreaker, RetryBudget
from orchestrator._route import Invocation
from orchestrator._select import Selection
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
    "task_executor",
)

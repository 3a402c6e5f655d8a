"""Running ΣVAULT calls off the event loop: bounded threads, read timeouts, write deadlines, counters.

Part of `bridges.vault`: the base of :class:`bridges.vault.VaultBridge`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import anyio
import anyio.to_thread

from bridges._vault_metrics import VaultBridgeMetrics
from bridges.errors import BridgeTimeoutError
from vault import Vault, VaultDeadlineError

T = TypeVar("T")


class _VaultOffload:
    """Runs calls on one vault in worker threads (see :class:`bridges.vault.VaultBridge`).

    The bridge sets these attributes in its ``__init__``.
    """

    vault: Vault
    timeout_s: float
    metrics: VaultBridgeMetrics
    _limiter: anyio.CapacityLimiter

    # ----------------------------------------------------------------- plumbing
    @property
    def dim(self) -> int:
        """Vector dimension the vault expects (384 with all-MiniLM-L6-v2)."""
        return self.vault.dim

    @property
    def data_dir(self) -> Path:
        """The vault's data directory."""
        return self.vault.data_dir

    async def _run(self, op: str, fn: Callable[[], T], timeout_s: float | None) -> T:
        limit = self.timeout_s if timeout_s is None else min(timeout_s, self.timeout_s)
        stats = self.metrics.op(op)
        stats.calls += 1
        started = time.perf_counter()
        try:
            with anyio.fail_after(max(limit, 0.0)):
                return await anyio.to_thread.run_sync(fn, abandon_on_cancel=True, limiter=self._limiter)
        except TimeoutError:
            stats.failures += 1
            stats.timeouts += 1
            raise BridgeTimeoutError(f"vault {op}", limit) from None
        except Exception:
            stats.failures += 1
            raise
        finally:
            stats.seconds_total += time.perf_counter() - started

    async def _write(self, op: str, fn: Callable[[float], T], timeout_s: float | None) -> T:
        """Run a mutation with its deadline and wait for it (it commits before the deadline or never)."""
        limit = self.timeout_s if timeout_s is None else min(timeout_s, self.timeout_s)
        stats = self.metrics.op(op)
        stats.calls += 1
        started = time.perf_counter()
        deadline = time.time() + max(limit, 0.0)
        try:
            return await anyio.to_thread.run_sync(fn, deadline, limiter=self._limiter)
        except VaultDeadlineError:
            stats.failures += 1
            stats.timeouts += 1
            raise
        except Exception:
            stats.failures += 1
            raise
        finally:
            stats.seconds_total += time.perf_counter() - started

    async def offload(self, op: str, fn: Callable[[], T], *, timeout_s: float | None = None) -> T:
        """Run ``fn``, a call into the vault (e.g. a :class:`vault.LogReplica` method), in a worker thread.

        Counted in :attr:`metrics` as ``op``; bounded by ``timeout_s`` (the bridge's default when ``None``).

        Raises:
            BridgeTimeoutError: The call exceeded its timeout.
        """
        return await self._run(op, fn, timeout_s)

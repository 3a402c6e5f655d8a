"""Counters of a :class:`bridges.vault.VaultBridge`: per-operation calls, failures, timeouts and time.

Part of `bridges.vault`; reported as ``$SRV.STATS`` data by the storage agents.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ("OpStats", "VaultBridgeMetrics")


@dataclass(slots=True)
class OpStats:
    """Counters of one vault operation.

    Attributes:
        calls: Calls started.
        failures: Calls that raised (vault errors and timeouts).
        timeouts: Calls that exceeded their timeout.
        seconds_total: Wall time spent in calls, in seconds (timeouts count their limit).
    """

    calls: int = 0
    failures: int = 0
    timeouts: int = 0
    seconds_total: float = 0.0


@dataclass(slots=True)
class VaultBridgeMetrics:
    """Per-operation counters of one bridge since start, plus records written and hits returned.

    Attributes:
        ops: Operation name (``put_many``, ``search``, ``get``, ...) → its counters.
        records_written: Records stored by successful ``put_many`` calls.
        hits_returned: Search hits returned by successful ``search`` calls.
    """

    ops: dict[str, OpStats] = field(default_factory=dict)
    records_written: int = 0
    hits_returned: int = 0

    def op(self, name: str) -> OpStats:
        """The counters of operation ``name`` (created at zero on first use)."""
        return self.ops.setdefault(name, OpStats())

    def as_dict(self, ops: Sequence[str] | None = None) -> dict[str, float]:
        """Flat counters for ``$SRV.STATS`` data, e.g. ``{"search_calls": 3, "search_seconds_total": ...}``.

        Args:
            ops: Only these operations (all that ran when ``None``); missing ones report zeros.
        """
        names = sorted(self.ops) if ops is None else list(ops)
        out: dict[str, float] = {}
        for name in names:
            s = self.ops.get(name, OpStats())
            out[f"{name}_calls"] = s.calls
            out[f"{name}_failures"] = s.failures
            out[f"{name}_timeouts"] = s.timeouts
            out[f"{name}_seconds_total"] = round(s.seconds_total, 6)
        out["records_written"] = self.records_written
        out["hits_returned"] = self.hits_returned
        return out

"""What the compression agents share: the bridge, the error mapping and the report layout."""

from __future__ import annotations

from typing import Any, ClassVar

from agents.actor import Agent
from agents.errors import (
    AgentBusyError,
    AgentError,
    AgentFailedError,
    BadInputError,
    DeadlineExceededError,
    NotFoundError,
    TooLargeError,
)
from bridges.errors import BridgeTimeoutError
from bridges.sigma import SigmaBridge, TokenCounter
from sigmalang import (
    BudgetUnreachableError,
    CompressionReport,
    FrameError,
    MissingDictionaryError,
    MissingRSUError,
    OutputTooLargeError,
    RSUStoreError,
)

__all__ = ("CompressionAgent", "compression_report", "sigma_error")


def sigma_error(exc: Exception, *, field: str | None = None) -> AgentError:
    """The wire error for a ΣLANG or bridge exception (the one place this mapping lives).

    Args:
        exc: What the bridge raised.
        field: The input field the failure is about (e.g. ``frame``), named in the error.
    """
    if isinstance(exc, OutputTooLargeError):
        return TooLargeError(
            f"the frame decodes to {exc.size} bytes; the limit is {exc.limit} bytes", field=field
        )
    if isinstance(exc, FrameError):
        return BadInputError(str(exc), field=field)
    if isinstance(exc, MissingRSUError | MissingDictionaryError):
        return NotFoundError(str(exc), field=field)
    if isinstance(exc, BudgetUnreachableError):
        return BadInputError(str(exc), field="budget_tokens")
    if isinstance(exc, RSUStoreError):
        if "reference count is 0" in exc.reason:  # a frame released twice: the caller's mistake
            return BadInputError(f"the frame was already released ({exc.reason})", field=field)
        if "closed" in exc.reason:
            return AgentBusyError(str(exc))
        return AgentFailedError(str(exc))
    if isinstance(exc, BridgeTimeoutError):
        return DeadlineExceededError(str(exc))
    return AgentFailedError(f"{type(exc).__name__}: {exc}")


def _ratio(numerator: int | None, denominator: int | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def compression_report(report: CompressionReport, token_counter: TokenCounter) -> dict[str, Any]:
    """A :class:`sigmalang.CompressionReport` as JSON: sizes, tokens and where the saving came from.

    ``ratio`` is ``bytes_in / bytes_out``; ``token_ratio`` is ``tokens_in / tokens_out`` (None when
    ``tokens_out`` is 0); ``shares`` divides the gross saving between RSU dedup, the trained dictionary
    and entropy coding (see `sigmalang.report`).
    """
    shares = report.shares
    return {
        "bytes_in": report.bytes_in,
        "bytes_out": report.bytes_out,
        "ratio": _ratio(report.bytes_in, report.bytes_out),
        "tokens_in": report.tokens_in,
        "tokens_out": report.tokens_out,
        "token_ratio": _ratio(report.tokens_in, report.tokens_out),
        "token_counter": token_counter,
        "referenced_bytes": report.referenced_bytes,
        "literal_bytes": report.literal_bytes,
        "glyphs": report.glyphs,
        "new_rsus": report.new_rsus,
        "dedup_saved": report.dedup_saved,
        "dictionary_saved": report.dictionary_saved,
        "entropy_saved": report.entropy_saved,
        "framing": report.framing,
        "dict_id": report.dict_id,
        "level": report.level,
        "shares": {"dedup": shares.dedup, "dictionary": shares.dictionary, "entropy": shares.entropy},
    }


class CompressionAgent(Agent):
    """Base of the compression team: every agent works through one shared :class:`SigmaBridge`."""

    team: ClassVar[str] = "compression"
    bridges: ClassVar[tuple[str, ...]] = ("sigma",)
    text_input: ClassVar[str | None] = None  # frames and data travel as base64
    text_output: ClassVar[str | None] = None

    def __init__(self, bridge: SigmaBridge) -> None:
        self.bridge = bridge

    def metadata(self) -> dict[str, str]:
        """Which token counter this instance uses."""
        return {"token_counter": self.bridge.token_counter}

    def stats(self) -> dict[str, Any]:
        """The bridge's counters (shared by the team's agents in this process)."""
        return self.bridge.metrics.as_dict()

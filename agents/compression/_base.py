"""The base of the Compression team's agents and the one mapping from ΣLANG exceptions to wire errors."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

import pydantic_core
from pydantic import BaseModel

from agents.actor import Agent, Call
from agents.compression._wire import ENVELOPE_RESERVE_BYTES, NATS_MAX_PAYLOAD_BYTES, check_size
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
from bridges.sigma import SigmaBridge
from sigmalang import (
    BudgetUnreachableError,
    FrameAuthenticationError,
    FrameError,
    MissingDictionaryError,
    MissingRSUError,
    OutputTooLargeError,
    RSUStoreError,
    SigmaError,
)

__all__ = ("CompressionAgent", "sigma_error")


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
    if isinstance(exc, FrameAuthenticationError):
        return BadInputError(f"{exc} (frames decode only for the tenant that made them)", field=field)
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


def _size(value: object) -> int:
    if isinstance(value, bytes | str):
        return len(value)
    if isinstance(value, list):
        return sum(_size(v) for v in value)
    return 0


class CompressionAgent(Agent):
    """Base of the compression team: one shared :class:`SigmaBridge`, sizes and errors handled once.

    Subclasses set ``output_model`` (required: it is the agent's published output schema) and
    implement :meth:`work`. :meth:`handle` refuses inputs above their limits (``size_limits``), maps
    ΣLANG and bridge exceptions with :func:`sigma_error` naming ``error_field``, and refuses an output
    that would not fit in one NATS message.

    Args:
        bridge: The ΣLANG bridge (shared by the team's agents in a process).
        max_payload_bytes: Largest NATS message, in bytes (``Bus.max_payload``).
    """

    team: ClassVar[str] = "compression"
    bridges: ClassVar[tuple[str, ...]] = ("sigma",)
    text_input: ClassVar[str | None] = None  # frames and data travel as base64
    text_output: ClassVar[str | None] = None
    output_model: ClassVar[type[BaseModel] | None] = None
    size_limits: ClassVar[tuple[tuple[str, int, str], ...]] = ()
    """``(input field, limit, unit)`` checked before :meth:`work` (bytes of binary data, summed over a
    list; characters of text)."""
    error_field: ClassVar[str | None] = None
    """The input field ΣLANG errors are about (e.g. ``frame``)."""
    attachment_field: ClassVar[str] = "input"
    """What a binary attachment holds (e.g. ``messages``): named when it is over `MAX_DATA_BYTES`."""
    max_input_bytes: ClassVar[int] = NATS_MAX_PAYLOAD_BYTES
    """Base64 data and frames in the JSON may fill a NATS message (`MAX_DATA_BYTES` is that much)."""

    def __init__(self, bridge: SigmaBridge, *, max_payload_bytes: int = NATS_MAX_PAYLOAD_BYTES) -> None:
        if self.output_model is None:
            raise TypeError(f"{type(self).__name__} declares no output_model")
        self.bridge = bridge
        self.max_payload_bytes = max_payload_bytes

    def metadata(self) -> dict[str, str]:
        """Which token counter this instance uses."""
        return {"token_counter": self.bridge.token_counter}

    def stats(self) -> dict[str, Any]:
        """The bridge's counters (shared by the team's agents in this process)."""
        return self.bridge.metrics.as_dict()

    def field_for(self, call: Call) -> str | None:
        """The input field an engine error of this call is about (default ``error_field``)."""
        return self.error_field

    async def handle(self, call: Call) -> Mapping[str, Any]:
        """Check sizes, run :meth:`work`, map engine errors, check the output's size.

        Raises:
            AgentError: The mapped ΣLANG error, or :class:`TooLargeError` for an input or output over
                its limit.
        """
        for field, limit, unit in self.size_limits:
            check_size(field, _size(getattr(call.input, field, None)), limit, unit=unit)
        if call.attachment is not None:
            check_size(self.attachment_field, len(call.attachment))
        try:
            output = await self.work(call)
        except (SigmaError, BridgeTimeoutError) as exc:
            raise sigma_error(exc, field=self.field_for(call)) from exc
        dumped = output.model_dump(mode="json")
        size = len(pydantic_core.to_json(dumped))
        if call.reply_attachment is not None:
            size += len(call.reply_attachment)
        if size > self.max_payload_bytes - ENVELOPE_RESERVE_BYTES:
            raise TooLargeError(
                f"the result is {size} bytes, over the NATS max payload of "
                f"{self.max_payload_bytes} bytes; send less per call"
            )
        return dumped

    @abstractmethod
    async def work(self, call: Call) -> BaseModel:
        """Do the agent's work for ``call`` (input validated, sizes checked); return its output model.

        Raises:
            AgentError: A failure of the input the engine was not asked about.
            SigmaError: Anything ΣLANG refused (mapped by :meth:`handle`).
        """

"""Errors of the messaging layer and the agents, and their wire codes.

::

    AgentError
    ├── BadInputError(AgentError, ValueError)        code "bad_request": the agent cannot use the input
    │   └── ContextLengthExceededError               code "context_length_exceeded": prompt + max_tokens
    │                                                exceed the model's context window
    ├── ForbiddenError(AgentError, PermissionError)  code "forbidden": the credential lacks the scope
    ├── NotFoundError(AgentError, LookupError)       code "not_found": the named thing does not exist
    ├── TooLargeError(AgentError, ValueError)        code "too_large": the input exceeds a size limit
    ├── AgentBusyError(AgentError, RuntimeError)     code "busy": mailbox or engine queue full
    ├── NoRespondersError(AgentError, LookupError)   code "no_responders": nobody listens on the subject
    ├── DeadlineExceededError(AgentError, TimeoutError)  code "timeout": the deadline passed
    ├── CancelledByCallerError(AgentError)           code "cancelled"
    ├── StreamBrokenError(AgentError, ConnectionError)   code "stream_broken": chunks lost or out of order
    │   └── InstanceLostError                        the instance handling the call stopped heartbeating
    ├── InsufficientStorageError(AgentError, OSError)  code "insufficient_storage": the disk is full
    └── AgentFailedError(AgentError, RuntimeError)   code "internal": the agent raised unexpectedly

:func:`error_from_wire` is the one place that turns a wire code back into an exception. This module is a
leaf: it imports nothing from the project.
"""

from __future__ import annotations

from typing import ClassVar


class AgentError(Exception):
    """Root of the messaging and agent errors.

    Attributes:
        code: The wire code of this error class.
        message: Human-readable description.
        field: The input field at fault, when there is one.
    """

    code: ClassVar[str] = "internal"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        self.message = message
        self.field = field
        super().__init__(f"{field}: {message}" if field else message)


class BadInputError(AgentError, ValueError):
    """The agent cannot use the input it was given."""

    code = "bad_request"


class ForbiddenError(AgentError, PermissionError):
    """The caller's credential lacks the scope the operation needs."""

    code = "forbidden"


class ContextLengthExceededError(BadInputError):
    """The prompt and the completion's ``max_tokens`` do not fit the model's context window."""

    code = "context_length_exceeded"


class NotFoundError(AgentError, LookupError):
    """The thing the input names (a record, a tenant, a dictionary, ...) does not exist."""

    code = "not_found"


class TooLargeError(AgentError, ValueError):
    """The input exceeds a size limit (the message states the limit)."""

    code = "too_large"


class AgentBusyError(AgentError, RuntimeError):
    """The agent's mailbox or its engine's queue is full; try another replica or later."""

    code = "busy"


class NoRespondersError(AgentError, LookupError):
    """No agent instance is subscribed to the subject (NATS status 503)."""

    code = "no_responders"


class DeadlineExceededError(AgentError, TimeoutError):
    """The request's deadline passed before the agent finished."""

    code = "timeout"


class CancelledByCallerError(AgentError):
    """The caller cancelled the request."""

    code = "cancelled"


class StreamBrokenError(AgentError, ConnectionError):
    """Stream chunks arrived out of order or went missing."""

    code = "stream_broken"


class InstanceLostError(StreamBrokenError):
    """The agent instance that accepted a call stopped sending heartbeats (crashed or cut off)."""


class AgentFailedError(AgentError, RuntimeError):
    """The agent failed unexpectedly."""

    code = "internal"


class InsufficientStorageError(AgentError, OSError):
    """The agent's storage is full: nothing of the call was written; reads keep working."""

    code = "insufficient_storage"


_BY_CODE: dict[str, type[AgentError]] = {
    cls.code: cls
    for cls in (
        BadInputError,
        ForbiddenError,
        ContextLengthExceededError,
        NotFoundError,
        TooLargeError,
        AgentBusyError,
        NoRespondersError,
        DeadlineExceededError,
        CancelledByCallerError,
        StreamBrokenError,
        AgentFailedError,
        InsufficientStorageError,
    )
}


def error_from_wire(code: str, message: str, field: str | None = None) -> AgentError:
    """The exception for a wire error ``code`` (unknown codes become :class:`AgentFailedError`)."""
    return _BY_CODE.get(code, AgentFailedError)(message, field=field)

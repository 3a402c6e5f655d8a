"""Errors raised by the Python SDK.

::

    NeurectomyError
    ├── APIError                          the server answered with an error status
    │   ├── BadRequestError(APIError, ValueError)    400: the body is invalid (``field`` names it)
    │   ├── AuthenticationError(APIError, PermissionError)  401: missing, wrong, expired or revoked key
    │   ├── ForbiddenError(APIError, PermissionError)       403: the credential lacks a scope or tenant
    │   ├── NotFoundError(APIError, LookupError)     404: the named record/tenant/... does not exist
    │   ├── TooLargeError(APIError, ValueError)      413: the body or an item exceeds a size limit
    │   ├── BusyError(APIError)                      429: queue full, retry after ``retry_after_s``
    │   ├── UnavailableError(APIError)               503: no agent can serve the request
    │   └── DeadlineError(APIError, TimeoutError)    504: the request's deadline passed
    ├── StreamError                       an ``error`` event arrived in the middle of a stream
    └── APIConnectionError(NeurectomyError, ConnectionError)  no answer: refused, reset, DNS, TLS, ...
        └── APITimeoutError(APIConnectionError, TimeoutError) no answer within the client's timeout

This module is a leaf: it imports nothing from the project.
"""

from __future__ import annotations


class NeurectomyError(Exception):
    """Root of the SDK errors."""


class APIError(NeurectomyError):
    """The server answered with an error status.

    Attributes:
        status_code: HTTP status.
        code: Error code from the body (``bad_request``, ``busy``, ``no_responders``, ...).
        message: Human-readable description from the server.
        field: The request field at fault, if any.
        request_id: The server's id of the request (for its logs).
    """

    def __init__(
        self,
        status_code: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        request_id: str | None = None,
    ) -> None:
        self.status_code = status_code
        self.code = code
        self.message = message
        self.field = field
        self.request_id = request_id
        where = f"{field}: " if field and field not in message else ""
        super().__init__(f"{status_code} {code}: {where}{message}")


class BadRequestError(APIError, ValueError):
    """400: the request body is invalid."""


class NotFoundError(APIError, LookupError):
    """404: the named thing does not exist."""


class AuthenticationError(APIError, PermissionError):
    """401: no credential, or a wrong, expired or revoked one."""


class ForbiddenError(APIError, PermissionError):
    """403: the credential is valid but lacks the scope (or names another tenant)."""


class TooLargeError(APIError, ValueError):
    """413: the request or one of its items exceeds a size limit."""


class BusyError(APIError):
    """429: the service is busy; retry after ``retry_after_s`` seconds."""

    retry_after_s: float | None = None


class UnavailableError(APIError):
    """503: no agent instance can serve the request right now."""


class DeadlineError(APIError, TimeoutError):
    """504: the deadline of the request passed."""


class StreamError(NeurectomyError):
    """The stream ended with an ``error`` event.

    Attributes:
        code: Error code (e.g. ``timeout``).
        message: Human-readable description.
    """

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


class APIConnectionError(NeurectomyError, ConnectionError):
    """The server could not be reached or dropped the connection (no HTTP answer).

    Attributes:
        url: The URL of the request.
        reason: What the transport reported.
    """

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"cannot reach {url}: {reason}")


class APITimeoutError(APIConnectionError, TimeoutError):
    """No answer within the client's timeout (``timeout_s``, or the call's ``timeout``)."""

    def __init__(self, url: str, reason: str = "timed out") -> None:
        super().__init__(url, reason)


_BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: ForbiddenError,
    404: NotFoundError,
    413: TooLargeError,
    429: BusyError,
    503: UnavailableError,
    504: DeadlineError,
}


def api_error(
    status_code: int,
    code: str,
    message: str,
    *,
    field: str | None,
    request_id: str | None,
    retry_after: str | None,
) -> APIError:
    """The exception for an error response (the one place statuses map to SDK exceptions)."""
    cls = _BY_STATUS.get(status_code, APIError)
    err = cls(status_code, code, message, field=field, request_id=request_id)
    if isinstance(err, BusyError) and retry_after:
        try:
            err.retry_after_s = float(retry_after)
        except ValueError:
            err.retry_after_s = None
    return err

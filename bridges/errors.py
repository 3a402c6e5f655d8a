"""Errors raised by the bridges themselves (engine errors pass through unchanged).

::

    BridgeError
    └── BridgeTimeoutError(BridgeError, TimeoutError)   the engine call exceeded its timeout

This module is a leaf: it imports nothing from the project.
"""

from __future__ import annotations


class BridgeError(Exception):
    """Root of the bridge errors."""


class BridgeTimeoutError(BridgeError, TimeoutError):
    """An engine call took longer than allowed.

    Attributes:
        operation: What was being done (e.g. ``generate``).
        timeout_s: The limit that was exceeded, in seconds.
    """

    def __init__(self, operation: str, timeout_s: float) -> None:
        self.operation = operation
        self.timeout_s = timeout_s
        super().__init__(f"{operation} did not finish within {timeout_s:.3f} s")

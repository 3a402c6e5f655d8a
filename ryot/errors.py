"""Errors raised by the Ryot engine.

Every error derives from :class:`RyotError` and also from the builtin that matches its meaning::

    RyotError
    ├── ModelLoadError(RyotError, OSError)          the GGUF file is missing or llama.cpp rejected it
    ├── UnknownModelError(RyotError, LookupError)   a model pool has no model of that name
    ├── EngineClosedError(RyotError, RuntimeError)  the engine was closed before or during the request
    ├── EngineBusyError(RyotError, RuntimeError)    the request queue is full (backpressure)
    ├── PromptTooLongError(RyotError, ValueError)   prompt + max_tokens exceed the context window
    ├── InvalidRequestError(RyotError, ValueError)  a parameter is out of range (names the field)
    └── GenerationCancelledError(RyotError)         the caller cancelled the request

This module is a leaf: it imports nothing from the project.
"""

from __future__ import annotations


class RyotError(Exception):
    """Root of all Ryot errors."""


class ModelLoadError(RyotError, OSError):
    """The model file could not be loaded.

    Attributes:
        path: The GGUF path that failed to load.
        reason: What went wrong.
        model: The model's configured name, when it was loaded by name from a model pool.
    """

    def __init__(self, path: str, reason: str, *, model: str | None = None) -> None:
        self.path = path
        self.reason = reason
        self.model = model
        where = f"{model!r} ({path})" if model is not None else repr(path)
        super().__init__(f"cannot load model {where}: {reason}")


class UnknownModelError(RyotError, LookupError):
    """A model pool was asked for a name it does not have.

    Attributes:
        name: The name asked for.
        available: The configured model names.
    """

    def __init__(self, name: str, available: tuple[str, ...]) -> None:
        self.name = name
        self.available = available
        super().__init__(f"unknown model {name!r}; configured models: {', '.join(available)}")


class EngineClosedError(RyotError, RuntimeError):
    """The engine is closed; no request can be served."""

    def __init__(self) -> None:
        super().__init__("the Ryot engine is closed")


class EngineBusyError(RyotError, RuntimeError):
    """The bounded request queue is full.

    Attributes:
        queue_size: The number of requests that may wait (the bound that was hit).
    """

    def __init__(self, queue_size: int) -> None:
        self.queue_size = queue_size
        super().__init__(f"the Ryot engine is busy: {queue_size} requests already waiting")


class PromptTooLongError(RyotError, ValueError):
    """The prompt and the requested completion do not fit in the context window.

    Attributes:
        prompt_tokens: Tokens in the prompt.
        max_tokens: Tokens requested for the completion.
        n_ctx: The context window in tokens.
    """

    def __init__(self, prompt_tokens: int, max_tokens: int, n_ctx: int) -> None:
        self.prompt_tokens = prompt_tokens
        self.max_tokens = max_tokens
        self.n_ctx = n_ctx
        super().__init__(
            f"prompt of {prompt_tokens} tokens + max_tokens {max_tokens} exceeds the context window "
            f"of {n_ctx} tokens"
        )


class InvalidRequestError(RyotError, ValueError):
    """A generation parameter is invalid.

    Attributes:
        field: The name of the offending parameter.
        reason: Why it is invalid.
    """

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class GenerationCancelledError(RyotError):
    """The request was cancelled before it finished."""

    def __init__(self) -> None:
        super().__init__("generation cancelled")

"""Rendering chat messages into a prompt.

Order of preference:

1. ``RyotConfig.chat_template`` when set: a llama.cpp built-in template name (``gemma``, ``chatml``,
   ``llama3``, ... as listed by ``llama_chat_builtin_templates``) or a Jinja template string.
2. The GGUF's own ``tokenizer.chat_template`` (Jinja, rendered as Hugging Face transformers does, with
   llama-cpp-python's ``Jinja2ChatFormatter``).
3. llama.cpp's built-in template for the model's architecture (the packaged Gemma 3 270M GGUF carries
   no template, so ``gemma3`` maps to llama.cpp's ``gemma`` template:
   ``<start_of_turn>user⏎…<end_of_turn>⏎<start_of_turn>model⏎``, ⏎ being a newline).
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Sequence
from typing import Any

import llama_cpp
from llama_cpp.llama_chat_format import Jinja2ChatFormatter

from ryot.errors import InvalidRequestError
from ryot.types import ChatMessage

_ARCH_TEMPLATES = {
    "gemma": "gemma",
    "gemma2": "gemma",
    "gemma3": "gemma",
    "llama": "llama3",
    "qwen2": "chatml",
    "qwen3": "chatml",
    "phi3": "phi3",
}

Renderer = Callable[[Sequence[ChatMessage]], str]


def builtin_templates() -> list[str]:
    """Names of the chat templates built into llama.cpp."""
    n = llama_cpp.llama_chat_builtin_templates(None, 0)
    names = (ctypes.c_char_p * n)()
    llama_cpp.llama_chat_builtin_templates(names, n)
    return [name.decode() for name in names if name]


def _builtin_renderer(name: str) -> Renderer:
    encoded = name.encode()

    def render(messages: Sequence[ChatMessage]) -> str:
        chat = (llama_cpp.llama_chat_message * len(messages))(
            *(llama_cpp.llama_chat_message(m.role.encode(), m.content.encode()) for m in messages)
        )
        size = 256 + 2 * sum(len(m.content.encode()) + 16 for m in messages)
        for _ in range(2):
            buf = ctypes.create_string_buffer(size)
            n = llama_cpp.llama_chat_apply_template(encoded, chat, len(messages), True, buf, size)
            if n < 0:
                raise InvalidRequestError("messages", f"llama.cpp cannot apply chat template {name!r}")
            if n <= size:
                return buf.raw[:n].decode("utf-8", errors="replace")
            size = n
        raise InvalidRequestError("messages", "chat template output kept growing")  # pragma: no cover

    return render


def _jinja_renderer(template: str, bos_token: str, eos_token: str) -> Renderer:
    formatter = Jinja2ChatFormatter(template=template, eos_token=eos_token, bos_token=bos_token)

    def render(messages: Sequence[ChatMessage]) -> str:
        try:
            payload: list[Any] = [{"role": m.role, "content": m.content} for m in messages]
            rendered = formatter(messages=payload)
        except Exception as exc:  # templates call raise_exception() on e.g. a wrong role order
            raise InvalidRequestError("messages", f"rejected by the chat template: {exc}") from exc
        return str(rendered.prompt)

    return render


class ChatTemplate:
    """Renders chat messages to prompt text for one model.

    Attributes:
        source: Where the template came from (``config``, ``gguf`` or ``builtin:<name>``).
        includes_bos: Whether rendered text already starts with the BOS token text (Jinja templates
            usually write it; llama.cpp's built-ins do not).
    """

    def __init__(
        self, *, override: str | None, gguf_template: str | None, architecture: str, bos: str, eos: str
    ) -> None:
        builtins = set(builtin_templates())
        if override and override in builtins:
            self._render, self.source, self.includes_bos = (
                _builtin_renderer(override),
                f"builtin:{override}",
                False,
            )
        elif override:
            self._render, self.source, self.includes_bos = _jinja_renderer(override, bos, eos), "config", True
        elif gguf_template:
            self._render, self.source, self.includes_bos = (
                _jinja_renderer(gguf_template, bos, eos),
                "gguf",
                True,
            )
        elif (name := _ARCH_TEMPLATES.get(architecture)) and name in builtins:
            self._render, self.source, self.includes_bos = _builtin_renderer(name), f"builtin:{name}", False
        else:
            self._render, self.source, self.includes_bos = _no_template(architecture), "none", False

    def render(self, messages: Sequence[ChatMessage]) -> str:
        """Prompt text for ``messages``, ending where the assistant's reply begins.

        Raises:
            InvalidRequestError: No messages, or the template rejects them (field ``messages``).
        """
        if not messages:
            raise InvalidRequestError("messages", "at least one message is required")
        return self._render(messages)


def _no_template(architecture: str) -> Renderer:
    def render(messages: Sequence[ChatMessage]) -> str:
        raise InvalidRequestError(
            "messages",
            f"the model (architecture {architecture!r}) has no chat template; set ryot.chat_template "
            "or send a prompt",
        )

    return render

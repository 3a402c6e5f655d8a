"""A model's tokenizer on its own: loads only the vocabulary of a GGUF (no weights, no context)."""

from __future__ import annotations

from pathlib import Path

from ryot._llama import Model
from ryot.models import resolve_model_path


class Tokenizer:
    """Tokenizes exactly as :class:`ryot.RyotEngine` does for the same GGUF, at a fraction of the memory.

    Thread safe. Use as a context manager or call :meth:`close`.

    Args:
        model_path: GGUF file; ``None`` is the packaged Gemma 3 270M.

    Raises:
        ModelLoadError: The file is missing or not a GGUF llama.cpp can read.
    """

    def __init__(self, model_path: Path | None = None) -> None:
        self.model_path = resolve_model_path(model_path)
        self._model = Model(self.model_path, repack=False, vocab_only=True)

    def tokenize(self, text: str, *, add_bos: bool = True, special: bool = False) -> list[int]:
        """Token ids of ``text`` (see :meth:`ryot.RyotEngine.tokenize`)."""
        return self._model.tokenize(text.encode("utf-8"), add_special=add_bos, parse_special=special)

    def count(self, text: str) -> int:
        """Number of tokens of ``text``, BOS included (as ``usage.prompt_tokens`` counts them)."""
        return len(self.tokenize(text))

    def close(self) -> None:
        """Free the vocabulary. Idempotent."""
        self._model.close()

    def __enter__(self) -> Tokenizer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

"""Turning sampled tokens into text: incremental UTF-8 decoding and stop strings."""

from __future__ import annotations

import codecs
from collections.abc import Sequence


class StopMatcher:
    """Finds stop strings in streamed text and holds back text that may begin one."""

    __slots__ = ("_stops", "_pending")

    def __init__(self, stops: Sequence[str]) -> None:
        self._stops = tuple(s for s in stops if s)
        self._pending = ""

    def feed(self, text: str) -> tuple[str, bool]:
        """Add decoded text; return (text safe to emit, whether a stop string was reached)."""
        if not self._stops:
            return text, False
        self._pending += text
        cut = min((i for i in (self._pending.find(s) for s in self._stops) if i >= 0), default=-1)
        if cut >= 0:
            out, self._pending = self._pending[:cut], ""
            return out, True
        hold = 0
        for stop in self._stops:
            for n in range(min(len(stop) - 1, len(self._pending)), hold, -1):
                if self._pending.endswith(stop[:n]):
                    hold = n
                    break
        out = self._pending[: len(self._pending) - hold]
        self._pending = self._pending[len(self._pending) - hold :]
        return out, False

    def flush(self) -> str:
        """Text still held back when generation ends without a stop string."""
        out, self._pending = self._pending, ""
        return out


class TextAssembler:
    """Bytes of sampled tokens → complete UTF-8 text, with stop strings applied.

    Attributes:
        parts: The text emitted so far, in pieces.
        hit_stop: Whether a stop string ended the text.
    """

    __slots__ = ("_decoder", "_stopper", "parts", "hit_stop")

    def __init__(self, stops: Sequence[str]) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._stopper = StopMatcher(stops)
        self.parts: list[str] = []
        self.hit_stop = False

    def feed(self, data: bytes) -> str:
        """Add a token's bytes; return the text that may be emitted now (possibly empty)."""
        text, stopped = self._stopper.feed(self._decoder.decode(data))
        if stopped:
            self.hit_stop = True
        if text:
            self.parts.append(text)
        return text

    def finish(self) -> str:
        """Text held back at the end (nothing when a stop string ended the text)."""
        if self.hit_stop:
            return ""
        tail = self._stopper.flush() + self._decoder.decode(b"", final=True)
        if tail:
            self.parts.append(tail)
        return tail

    @property
    def text(self) -> str:
        """All text emitted."""
        return "".join(self.parts)

"""Out-of-range sampling values taken as llama.cpp's samplers (and Ollama) take them, not refused.

Ollama's and llama-server's clients may send any number: Ollama's sampler (``sample/samplers.go``,
``NewSampler``) clamps ``temperature`` below 0 to 0, ``top_p`` and ``min_p`` into [0, 1], takes
``repeat_penalty`` ≤ 0 as 1 (off), and uses the rest as given: its top-k keeps every token for
``top_k`` ≤ 0 or at least the vocabulary's size, and its penalties (``sample/transforms.go``,
``applyPenalty``) divide a repeated token's positive logit by ``repeat_penalty`` (multiply a negative one)
and subtract ``frequency_penalty`` × count and ``presence_penalty``, whatever their size. llama.cpp's
samplers (``src/llama-sampler.cpp``) do the same in effect (``temp`` ≤ 0: the most likely token;
``top_k`` ≤ 0: no-op, k clamped to the candidates; ``top_p`` ≥ 1: no-op, ``top_p`` 0 keeps ``min_keep`` = 1
token; the penalties sampler applies any value). ``temperature`` above 2 is used as given (the
generator's wire takes any finite value ≥ 0; the OpenAI routes keep OpenAI's 0..2, and -2..2 for the
presence and frequency penalties).
"""

from __future__ import annotations

from typing import Final

from pydantic import BaseModel, Field

from agents.protocol import TOP_K_MAX

__all__ = ("TOP_P_MIN", "LenientSampling", "lenient_sampling")

TOP_P_MIN: Final = 1e-9
"""What ``top_p`` at or below 0 becomes: the smallest nucleus, the most likely token alone (our samplers
refuse 0 itself; any value below the top token's probability keeps that token alone)."""


def lenient_sampling(
    *, temperature: float | None, top_k: int | None, top_p: float | None, min_p: float | None
) -> dict[str, float | int | None]:
    """The four values mapped into the generator's ranges with the same effect (``None`` stays ``None``).

    Returns:
        ``temperature`` (≥ 0), ``top_k`` (in [0, 2**31 - 1], 0: off; a larger k keeps every token, as
        2**31 - 1 does), ``top_p`` (in [1e-9, 1]), ``min_p`` (in [0, 1]).
    """
    return {
        "temperature": None if temperature is None else max(temperature, 0.0),
        "top_k": None if top_k is None else min(max(top_k, 0), TOP_K_MAX),
        "top_p": None if top_p is None else min(max(top_p, TOP_P_MIN), 1.0),
        "min_p": None if min_p is None else min(max(min_p, 0.0), 1.0),
    }


class LenientSampling(BaseModel):
    """The sampling fields Ollama's ``options`` and llama-server's ``/completion`` body share.

    Every value is taken as Ollama takes it (`lenient_sampling`; ``repeat_penalty`` ≤ 0 is 1, off);
    only non-finite numbers are refused, with the field's name.
    """

    temperature: float | None = Field(default=None, allow_inf_nan=False)
    top_k: int | None = None
    top_p: float | None = Field(default=None, allow_inf_nan=False)
    min_p: float | None = Field(default=None, allow_inf_nan=False)
    repeat_penalty: float | None = Field(default=None, allow_inf_nan=False)
    presence_penalty: float | None = Field(default=None, allow_inf_nan=False)
    frequency_penalty: float | None = Field(default=None, allow_inf_nan=False)

    def sampling(self) -> dict[str, float | int | None]:
        """The seven values in the generator's ranges (`GenerateInput`'s names; ``None``: not given)."""
        repeat = self.repeat_penalty
        return {
            **lenient_sampling(
                temperature=self.temperature, top_k=self.top_k, top_p=self.top_p, min_p=self.min_p
            ),
            "repeat_penalty": None if repeat is None else (repeat if repeat > 0.0 else 1.0),
            "presence_penalty": self.presence_penalty,
            "frequency_penalty": self.frequency_penalty,
        }

"""Out-of-range sampling values taken as llama.cpp's samplers (and Ollama's) take them, not refused.

Ollama's and llama-server's clients may send any number: Ollama's sampler (``sample/samplers.go``,
``NewSampler``) clamps ``temperature`` below 0 to 0, ``top_p`` and ``min_p`` into [0, 1], and its top-k
treats ``top_k`` ≤ 0 as off; llama.cpp's samplers (``src/llama-sampler.cpp``) do the same in effect
(``temp`` ≤ 0: the most likely token; ``top_k`` ≤ 0: no-op; ``top_p`` ≥ 1: no-op, ``top_p`` 0 keeps
``min_keep`` = 1 token). ``temperature`` above 2 is used as given (the generator's wire takes any finite
value ≥ 0; the OpenAI routes keep OpenAI's 0..2).
"""

from __future__ import annotations

from typing import Final

__all__ = ("TOP_P_MIN", "lenient_sampling")

TOP_P_MIN: Final = 1e-9
"""What ``top_p`` at or below 0 becomes: the smallest nucleus, the most likely token alone (our samplers
refuse 0 itself; any value below the top token's probability keeps that token alone)."""


def lenient_sampling(
    *, temperature: float | None, top_k: int | None, top_p: float | None, min_p: float | None
) -> dict[str, float | int | None]:
    """The four values mapped into the generator's ranges with the same effect (``None`` stays ``None``).

    Returns:
        ``temperature`` (≥ 0), ``top_k`` (≥ 0, 0: off), ``top_p`` (in [1e-9, 1]), ``min_p`` (in [0, 1]).
    """
    return {
        "temperature": None if temperature is None else max(temperature, 0.0),
        "top_k": None if top_k is None else max(top_k, 0),
        "top_p": None if top_p is None else min(max(top_p, TOP_P_MIN), 1.0),
        "min_p": None if min_p is None else min(max(min_p, 0.0), 1.0),
    }

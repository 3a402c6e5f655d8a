"""The ``statistician`` agent: descriptive statistics of a list of numbers, or of the numbers in a text.

Definitions (all with numpy, in float64):

* ``variance`` and ``stdev`` are the sample ones (divisor n - 1; None when n < 2); ``pvariance`` and
  ``pstdev`` the population ones (divisor n).
* Percentiles use linear interpolation between closest ranks (Hyndman & Fan 1996, definition 7; numpy's
  and Excel's ``PERCENTILE.INC`` default).
* Outliers follow Tukey's fences (J. W. Tukey, "Exploratory Data Analysis", 1977): values below
  ``p25 - 1.5 IQR`` or above ``p75 + 1.5 IQR``.
* The trend is the ordinary least-squares line through ``(index, value)``: ``slope`` is the change per
  position, ``r`` Pearson's correlation of value with position (None when either is constant).

Cheap by design (a list of 1,000 numbers takes well under a millisecond); it serves as the workload of
the durability tests.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, Field

from agents.actor import Call
from agents.analysis._base import MAX_LISTED, AnalysisAgent, AnalysisInput, AnalysisOutput, check_chars
from agents.errors import BadInputError, TooLargeError
from agents.limits import ENVELOPE_RESERVE_BYTES

__all__ = (
    "MAX_VALUES",
    "THREAD_MIN_CHARS",
    "THREAD_MIN_VALUES",
    "Outlier",
    "StatisticianAgent",
    "StatsInput",
    "StatsOutput",
    "Trend",
    "describe",
    "numbers_in",
)

MAX_VALUES = 200_000
"""Most numbers one call describes (count)."""
THREAD_MIN_VALUES = 20_000
"""From this many numbers on, the computation runs in a worker thread (below, inline: it is cheaper
than the hand-off)."""
THREAD_MIN_CHARS = 20_000
"""From this many characters of ``text`` on, its numbers are read in a worker thread (200,000 characters
of ``"1 "`` take ~60 ms: on the event loop that stalled every coroutine of the process as long)."""

_NUMBER = re.compile(
    r"(?<![\w.])[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w])|(?<![\w.])[-+]?\.\d+"
)

FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]


def numbers_in(text: str) -> list[float]:
    """The numbers written in ``text``: integers, decimals, ``1,234.5`` thousands groups, ``1e-3``."""
    return [float(m.group().replace(",", "")) for m in _NUMBER.finditer(text)]


def _finite_numbers_in(text: str) -> list[float]:
    return [v for v in numbers_in(text) if math.isfinite(v)]


class StatsInput(AnalysisInput):
    """Input of ``statistician``: ``values``, or a ``text`` to take the numbers from."""

    values: list[FiniteFloat] | None = Field(
        default=None, description=f"The numbers (finite), at most {MAX_VALUES:,}."
    )
    text: str | None = Field(default=None, description="A text whose numbers are described instead.")


class Outlier(AnalysisOutput):
    """A value outside Tukey's fences."""

    index: int
    value: float
    side: Literal["low", "high"]


class Trend(AnalysisOutput):
    """Least-squares line ``value ≈ intercept + slope * index``."""

    slope: float = Field(description="Change per position.")
    intercept: float
    r: float | None = Field(description="Pearson correlation of value and position, in [-1, 1].")


class StatsOutput(AnalysisOutput):
    """Output of ``statistician``."""

    source: Literal["values", "text"]
    n: int
    sum: float
    mean: float
    median: float
    min: float
    max: float
    range: float
    variance: float | None
    stdev: float | None
    pvariance: float
    pstdev: float
    percentiles: dict[str, float] = Field(description="p5, p25, p50, p75, p95.")
    iqr: float
    outliers: list[Outlier] = Field(description=f"At most {MAX_LISTED}, by position.")
    outliers_total: int
    trend: Trend | None = Field(description="None when n < 2.")
    summary: str


def describe(values: list[float], source: Literal["values", "text"] = "values") -> StatsOutput:
    """Descriptive statistics of ``values`` (non-empty, finite).

    Raises:
        ValueError: ``values`` is empty.
    """
    if not values:
        raise ValueError("no values")
    x = np.asarray(values, dtype=np.float64)
    n = int(x.size)
    p5, p25, p50, p75, p95 = (float(p) for p in np.percentile(x, [5, 25, 50, 75, 95]))
    iqr = p75 - p25
    low, high = p25 - 1.5 * iqr, p75 + 1.5 * iqr
    outside = np.flatnonzero((x < low) | (x > high))
    outliers = [
        Outlier(index=int(i), value=float(x[i]), side="low" if x[i] < low else "high")
        for i in outside[:MAX_LISTED]
    ]
    mean = float(x.mean())
    trend = None
    if n >= 2:
        idx = np.arange(n, dtype=np.float64)
        dx, dy = idx - idx.mean(), x - mean
        sxx, syy = float(dx @ dx), float(dy @ dy)
        slope = float(dx @ dy) / sxx
        r = float(dx @ dy) / math.sqrt(sxx * syy) if syy > 0 else None
        trend = Trend(slope=slope, intercept=mean - slope * float(idx.mean()), r=r)
    variance = float(x.var(ddof=1)) if n >= 2 else None
    pvariance = float(x.var())
    summary = f"n={n}, mean={mean:.6g}, median={p50:.6g}"
    summary += f", stdev={math.sqrt(variance):.6g}" if variance is not None else ""
    summary += f", {len(outside)} outliers" if len(outside) else ""
    return StatsOutput(
        source=source,
        n=n,
        sum=float(x.sum()),
        mean=mean,
        median=p50,
        min=float(x.min()),
        max=float(x.max()),
        range=float(x.max() - x.min()),
        variance=variance,
        stdev=math.sqrt(variance) if variance is not None else None,
        pvariance=pvariance,
        pstdev=math.sqrt(pvariance),
        percentiles={"p5": p5, "p25": p25, "p50": p50, "p75": p75, "p95": p95},
        iqr=iqr,
        outliers=outliers,
        outliers_total=int(outside.size),
        trend=trend,
        summary=summary,
    )


class StatisticianAgent(AnalysisAgent):
    """Describes a sample of numbers: centre, spread, percentiles, Tukey outliers and linear trend."""

    name = "statistician"
    description = (
        "Computes descriptive statistics of a list of numbers or of the numbers in a text: count, mean, "
        "median, standard deviation, percentiles, outliers and linear trend."
    )
    capabilities = (
        "statistics",
        "stats",
        "mean",
        "median",
        "percentiles",
        "outliers",
        "trend",
        "numbers",
        "average",
        "avg",
    )
    input_model: ClassVar[type[BaseModel]] = StatsInput
    max_input_bytes = MAX_VALUES * 25 + ENVELOPE_RESERVE_BYTES
    """:data:`MAX_VALUES` numbers of up to 24 characters (``-2.2250738585072014e-308``) and a comma each."""
    output_model: ClassVar[type[BaseModel]] = StatsOutput

    async def handle(self, call: Call) -> Mapping[str, Any]:
        """Describe ``values`` or the numbers in ``text`` (a :class:`StatsInput`).

        Raises:
            BadInputError: Neither or both of ``values`` and ``text``; no numbers; a non-finite number.
            TooLargeError: More than 200,000 numbers, or ``text`` longer than 200,000 characters.
        """
        inp: StatsInput = call.input
        if (inp.values is None) == (inp.text is None):
            raise BadInputError("give exactly one of 'values' and 'text'", field="values")
        field: Literal["values", "text"] = "values" if inp.values is not None else "text"
        if inp.text is not None:
            check_chars("text", inp.text)
            if len(inp.text) < THREAD_MIN_CHARS:
                values = _finite_numbers_in(inp.text)
            else:
                values = await self.in_thread(_finite_numbers_in, inp.text)
        else:
            values = list(inp.values or [])
        if not values:
            raise BadInputError("holds no numbers" if field == "text" else "must not be empty", field=field)
        if len(values) > MAX_VALUES:
            raise TooLargeError(f"{len(values)} numbers; the limit is {MAX_VALUES}", field=field)
        if len(values) < THREAD_MIN_VALUES:
            out = describe(values, field)
        else:
            out = await self.in_thread(describe, values, field)
        return out.model_dump()

"""Which sequence a request takes, and how one step's tokens are laid out in the ``llama_batch``.

With one KV stream per sequence (``kv_unified`` off, so that a sequence attends only to its own tokens
and its numerics do not depend on where its cells lie), llama.cpp splits a batch into micro-batches
(``llama_batch_allocr::split_equal(n_ubatch, sequential=true)`` in ``src/llama-batch.cpp``): one
micro-batch takes the same number of tokens from each of a run of sequences whose ids are consecutive
and first appear in the batch in increasing order. Every micro-batch is one pass over the model's
weights (one graph computation), so a step whose sequences are 0, 1 and 3 costs two passes, and one
listing 3, 2, 1, 0 costs four. ``benchmarks/llm_path.py``'s batch ceiling never meets this (its
sequences are 0..n-1, in order); a service does, as requests arrive and leave at different times.

So the scheduler keeps the busy sequences consecutive and in order:

- :func:`choose_slot` gives a new request the free sequence that keeps the busy ones in the fewest runs
  of consecutive ids (a long enough cached prefix still wins, a short one only breaks ties);
- :func:`lay_out` orders a step's entries by sequence id and fills a hole of at most
  ``max_pad`` sequences left by a request that ended in the middle with one placeholder token per idle
  sequence (no logits; the engine removes its KV cell after the step), so that the step is one pass.

A prompt's rows are evaluated at least :data:`MIN_PROMPT_ROWS` at a time (:func:`prefill_piece`, and
the tokens a cached prefix leaves to evaluate), so that its logits do not depend on how it was cut.

Pure Python without llama.cpp: ``tests/ryot/test_schedule.py`` checks the layouts, and
``benchmarks/llm_path.py`` measures the passes they save.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ryot._llama import Sampler
from ryot._text import TextAssembler
from ryot.types import Event, SamplingParams

Sink = Callable[[Event], None]

MAX_PAD = 2
"""Longest hole (idle sequences between busy ones) filled with placeholder tokens. A placeholder costs
about one sequence's share of a step, a second pass over the weights more (measured with
``benchmarks/llm_path.py --sections holes``)."""

MIN_PROMPT_ROWS = 2
"""Fewest prompt tokens of one sequence evaluated in one ``llama_decode`` (unless the prompt is shorter).

llama.cpp computes a sequence's attention with other kernels, which round differently, when the
sequence has one query row in a micro-batch than when it has several; every row computed among two or
more gets the same bits whatever the cut (measured with Gemma 3 270M on an AVX2 EPYC, and in line with
earlier measurements on an AVX-512 Xeon: docs/ryot.md, "Batch invariance"). A prompt prefilled whole
computes its last token among its other rows, so a prompt served from a cached prefix evaluates its last
two tokens, not one, and a chunked prefill never leaves a piece of one token: the prompt then gets the
logits of its cold prefill. Decode steps give each sequence one row, and match each other whatever the
batch."""


@dataclass(slots=True)
class Job:
    """A submitted request: its prompt tokens, parameters and where its events go."""

    tokens: list[int]
    params: SamplingParams
    sink: Sink
    submitted_at: float
    cancelled: bool = False
    """Set (from any thread) to stop the request; the worker reads it between steps. A plain flag, not
    a ``threading.Event``: nothing waits on it, and an Event's lock and condition cost ~30 µs per
    request on the submitting event loop when they are out of the CPU caches."""


@dataclass(slots=True)
class Slot:
    """One sequence of the context: its cached tokens and, while busy, the request it serves."""

    seq: int
    cached: list[int] = field(default_factory=list)
    last_used: float = 0.0
    job: Job | None = None
    sampler: Sampler | None = None
    text: TextAssembler | None = None
    pending: list[int] = field(default_factory=list)
    next_token: int | None = None
    reused: int = 0
    n_sampled: int = 0
    admitted_at: float = 0.0
    first_at: float = 0.0
    last_at: float = 0.0
    shared: set[int] = field(default_factory=set)
    """Lengths of prefixes of ``cached`` that other requests shared: saved on their own when evicted."""
    saved: bool = False
    """Whether the prefix cache already holds (or was offered) the state of all of ``cached``."""
    namespace: str = ""
    """``prefix_namespace`` of the requests whose tokens ``cached`` holds (only those may reuse them)."""


@dataclass(slots=True)
class Fed:
    """Tokens one slot puts into a step's batch, and where to sample.

    ``outputs`` holds (batch index, offset in ``fed``) of each fed token whose logits are sampled: the
    last prompt token when a prefill completes, or the next token and every draft token when decoding.
    The batch indices are filled in by :meth:`ryot._llama.Batch` as the entries are added, in order.
    """

    slot: Slot
    fed: list[int]
    outputs: list[tuple[int, int]]
    draft: list[int]
    sampled: list[int] = field(default_factory=list)
    """Offsets in ``fed`` whose logits are wanted (``outputs`` before the batch indices are known)."""


def prefill_piece(pending: int, budget: int, *, full: int) -> int:
    """Prompt tokens of one sequence to evaluate in this step: pieces of at least :data:`MIN_PROMPT_ROWS`.

    All of ``pending`` if ``budget`` allows, else as much as leaves at least ``MIN_PROMPT_ROWS`` for later
    steps; 0 (wait for the next step's budget) when that piece would be shorter than ``MIN_PROMPT_ROWS``
    and ``budget`` is below ``full``. With a ``full`` budget too small for the rule, pieces are what it
    allows.

    Args:
        pending: Prompt tokens of the sequence not evaluated yet (at least 1).
        budget: Tokens this step can still take (at least 1).
        full: The step's whole prefill budget (``prefill_chunk`` while others decode, else ``n_batch``).
    """
    if pending <= budget:
        return pending
    piece = min(budget, pending - MIN_PROMPT_ROWS)
    if piece >= MIN_PROMPT_ROWS:
        return piece
    return 0 if budget < full else budget


def runs(seqs: Sequence[int]) -> int:
    """Number of maximal runs of consecutive ids in ``seqs`` (any order; duplicates count once)."""
    ordered = sorted(set(seqs))
    return sum(1 for i, s in enumerate(ordered) if i == 0 or s != ordered[i - 1] + 1)


def choose_slot(
    free: Sequence[Slot], busy: Sequence[int], prefix: Callable[[Slot], int], *, min_gain: int
) -> Slot:
    """The free slot a new request takes.

    In order of preference: a cached prefix of at least ``min_gain`` tokens (longest first), then
    the fewest runs of consecutive busy sequence ids once this one joins (see the module docstring),
    then any cached prefix longer than one token (BOS alone counts as none), then the least recently used.

    Args:
        free: Slots without a request (at least one).
        busy: Sequence ids of the slots serving requests.
        prefix: Tokens of the new prompt that a slot's cache holds (0 when another namespace's).
        min_gain: Shortest prefix worth a split of the busy sequences into more micro-batches.
    """

    def score(slot: Slot) -> tuple[int, int, int, float]:
        lcp = prefix(slot)
        return (
            lcp if lcp >= min_gain else 0,
            -runs([*busy, slot.seq]),
            lcp if lcp > 1 else 0,
            -slot.last_used,
        )

    return max(free, key=score)


def least_recently_used(free: Sequence[Slot], busy: Sequence[int]) -> Slot:
    """The free slot to overwrite (e.g. with a state from the prefix cache): fewest runs, then LRU."""
    return min(free, key=lambda s: (runs([*busy, s.seq]), s.last_used))


@dataclass(slots=True)
class Placeholder:
    """A token put into a step's batch only to keep its sequences consecutive (no logits)."""

    slot: Slot
    pos: int


def lay_out(
    fed: Sequence[Fed], idle: Sequence[Slot], *, room: int, n_ctx: int, max_pad: int
) -> list[Fed | Placeholder]:
    """A step's entries in increasing sequence order, with placeholders in holes of at most ``max_pad``.

    Args:
        fed: The step's entries (at most one per slot).
        idle: Slots without a request (candidates for placeholders).
        room: Batch capacity left after ``fed``'s tokens.
        n_ctx: Tokens one sequence can hold (a full sequence gets no placeholder).
        max_pad: Longest hole filled.
    """
    ordered = sorted(fed, key=lambda f: f.slot.seq)
    by_seq = {s.seq: s for s in idle}
    out: list[Fed | Placeholder] = []
    for i, entry in enumerate(ordered):
        if i:
            gap = range(ordered[i - 1].slot.seq + 1, entry.slot.seq)
            pads = [by_seq.get(s) for s in gap]
            if 0 < len(gap) <= min(max_pad, room) and all(
                p is not None and len(p.cached) < n_ctx for p in pads
            ):
                out.extend(Placeholder(p, len(p.cached)) for p in pads if p is not None)
                room -= len(gap)
        out.append(entry)
    return out

"""Slot choice and batch layout keep a step's sequences in one llama.cpp micro-batch (no model needed)."""

from __future__ import annotations

from ryot._schedule import MIN_PROMPT_ROWS, Fed, Placeholder, Slot, choose_slot, lay_out, prefill_piece, runs


def _fed(slot: Slot, n: int = 1) -> Fed:
    return Fed(slot, [7] * n, [], [], [n - 1])


def test_runs_counts_groups_of_consecutive_ids() -> None:
    assert runs([]) == 0
    assert runs([3, 2, 1, 0]) == 1
    assert runs([0, 1, 3]) == 2
    assert runs([0, 2, 4, 6]) == 4


def test_a_new_request_fills_the_hole_between_busy_sequences_not_the_least_recently_used_slot() -> None:
    slots = [Slot(seq=i, last_used=float(10 - i)) for i in range(8)]  # slot 7 is the least recently used
    free = [slots[2], *slots[4:]]
    chosen = choose_slot(free, busy=[0, 1, 3], prefix=lambda s: 0, min_gain=16)
    assert chosen.seq == 2
    # Next to the busy run, not the least recently used slot far away.
    chosen = choose_slot(slots[4:], busy=[0, 1, 2, 3], prefix=lambda s: 0, min_gain=16)
    assert chosen.seq == 4


def test_a_long_cached_prefix_still_wins_and_a_short_one_only_breaks_ties() -> None:
    slots = [Slot(seq=i) for i in range(6)]
    free = slots[3:]
    long = {5: 40}
    assert choose_slot(free, busy=[0, 1, 2], prefix=lambda s: long.get(s.seq, 0), min_gain=16).seq == 5
    short = {5: 4}
    assert choose_slot(free, busy=[0, 1, 2], prefix=lambda s: short.get(s.seq, 0), min_gain=16).seq == 3
    # With nothing busy every slot keeps one run, so even a short prefix decides.
    assert choose_slot(slots, busy=[], prefix=lambda s: short.get(s.seq, 0), min_gain=16).seq == 5


def test_lay_out_orders_by_sequence_and_pads_short_holes_only() -> None:
    slots = [Slot(seq=i, cached=[1] * 5) for i in range(8)]
    fed = [_fed(slots[3]), _fed(slots[0]), _fed(slots[1]), _fed(slots[7])]
    idle = [slots[2], slots[4], slots[5], slots[6]]
    layout = lay_out(fed, idle, room=100, n_ctx=64, max_pad=2)
    seqs = [e.slot.seq for e in layout]
    assert seqs == [0, 1, 2, 3, 7]  # hole 2 padded; the hole 4..6 is longer than max_pad
    pad = layout[2]
    assert isinstance(pad, Placeholder) and pad.pos == 5  # right after the idle slot's cached tokens


def test_no_placeholder_in_a_full_sequence_or_beyond_the_batch_capacity() -> None:
    slots = [Slot(seq=i, cached=[1] * 5) for i in range(3)]
    slots[1].cached = [1] * 64
    layout = lay_out([_fed(slots[0]), _fed(slots[2])], [slots[1]], room=10, n_ctx=64, max_pad=2)
    assert not any(isinstance(e, Placeholder) for e in layout)
    slots[1].cached = [1] * 5
    layout = lay_out([_fed(slots[0]), _fed(slots[2])], [slots[1]], room=0, n_ctx=64, max_pad=2)
    assert not any(isinstance(e, Placeholder) for e in layout)


def test_a_chunked_prefill_never_evaluates_a_piece_of_one_token() -> None:
    assert MIN_PROMPT_ROWS == 2
    assert prefill_piece(200, 256, full=256) == 200  # all that is left fits
    assert prefill_piece(1, 256, full=256) == 1  # a one-token prompt is one row however it is served
    assert prefill_piece(300, 256, full=256) == 256
    assert prefill_piece(257, 256, full=256) == 255  # leaves 2, not 1
    assert prefill_piece(513, 512, full=512) == 511  # a prompt one token longer than n_batch, alone
    assert prefill_piece(300, 1, full=256) == 0  # what other prompts left of this step: wait for the next
    assert prefill_piece(3, 2, full=256) == 0  # 2 would leave 1, 1 is a piece of one token: wait
    assert prefill_piece(3, 2, full=2) == 2  # a budget too small for the rule must not stall the prompt
    assert prefill_piece(5, 1, full=1) == 1

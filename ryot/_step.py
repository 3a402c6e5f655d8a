"""One decode step of the Ryot engine: chunked prefill, the batch layout, speculative verification.

Part of :mod:`ryot._engine`: a base of :class:`ryot._engine.RyotEngine`. Each step prefills a chunk of
each new prompt in its own ``llama_decode``, then evaluates the next token of every decoding slot (plus
any prompt-lookup draft tokens, :mod:`ryot._speculative`) in one ``llama_decode`` laid out as one
micro-batch (:mod:`ryot._schedule`), and samples each slot's next token with its own sampler chain.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ryot._delivery import _Delivery
from ryot._llama import Batch, SamplerSpec
from ryot._schedule import MAX_PAD, Fed, Placeholder, Slot, lay_out, prefill_piece
from ryot._speculative import prompt_lookup
from ryot.config import RyotConfig
from ryot.errors import RyotError
from ryot.types import SamplingParams


class _Decoding(_Delivery):
    """The decode step and its sampling (see :class:`ryot._engine.RyotEngine`).

    The attributes below are set by :meth:`ryot._engine.RyotEngine.__init__`.
    """

    config: RyotConfig
    _batch: Batch
    _slots: list[Slot]
    draft_tokens: int
    draft_accepted: int
    placeholders: int
    first_token_handoff_s: float

    if TYPE_CHECKING:

        @property
        def n_ctx(self) -> int:
            """Context window of one request (:attr:`ryot._engine.RyotEngine.n_ctx`)."""

    @staticmethod
    def _spec(p: SamplingParams, seed: int) -> SamplerSpec:
        return SamplerSpec(
            p.temperature,
            p.top_k,
            p.top_p,
            p.min_p,
            p.repeat_penalty,
            seed,
            p.grammar,
            presence_penalty=p.presence_penalty,
            frequency_penalty=p.frequency_penalty,
            logit_bias=p.logit_bias,
        )

    def _draft(self, slot: Slot) -> list[int]:
        """Prompt-lookup draft for a decoding slot, or nothing when speculation cannot help or apply."""
        job = slot.job
        assert job is not None and slot.next_token is not None
        p = job.params
        if not p.speculative or p.temperature > 0.0 or p.grammar is not None or p.logprobs is not None:
            return []
        if p.repeat_penalty != 1.0 or p.presence_penalty != 0.0 or p.frequency_penalty != 0.0 or p.logit_bias:
            return []  # greedy only: stateful samplers could not take back rejected draft tokens
        room = min(
            self.config.draft_max,
            p.max_tokens - slot.n_sampled - 1,
            self.n_ctx - len(slot.cached) - 2,
        )
        return prompt_lookup([*slot.cached, slot.next_token], draft_max=room)

    def _step(self, busy: list[Slot]) -> None:
        """One step: prefill chunks, each prompt in its own ``llama_decode``, then one for the rest.

        The second ``llama_decode`` holds the next token of every decoding sequence (those whose
        prefill just completed included); a prefill's first token is delivered before it (TTFT), and
        the worker then leaves the CPUs to that token's consumers for ``first_token_handoff_s`` before
        the second call, whose compute threads would otherwise hold every core while the first token
        travels to the client.

        A prompt is evaluated in its own call, as when it is served alone: llama.cpp splits a batch whose
        sequences bring different numbers of tokens into micro-batches anyway (see ryot._schedule), and
        where it cuts a prompt changes the rounding of its logits, so that a greedy text would depend
        on what else was admitted in the same step. While any sequence decodes, the prompts get at most
        ``prefill_chunk`` tokens per step (chunked prefill), in pieces of at least
        :data:`ryot._schedule.MIN_PROMPT_ROWS` tokens (a piece of one token would round differently).
        """
        for slot in busy:
            if slot.job is not None and slot.job.cancelled:
                self._finish(slot, "cancelled")
        busy = [slot for slot in busy if slot.job is not None]
        capacity = self._batch.capacity
        budget = capacity
        first_tokens = False
        if any(slot.next_token is not None for slot in busy):
            budget = min(budget, self.config.prefill_chunk)
        full = budget
        for slot in busy:
            if slot.job is None or slot.next_token is not None or not slot.pending or budget <= 0:
                continue
            n = prefill_piece(len(slot.pending), budget, full=full)
            if n == 0:
                continue  # its next piece waits for a step with room for MIN_PROMPT_ROWS tokens
            chunk = slot.pending[:n]
            done = len(chunk) == len(slot.pending)
            budget -= len(chunk)
            slot.pending = slot.pending[len(chunk) :]
            self._decode([Fed(slot, chunk, [], [], [len(chunk) - 1] if done else [])])
            first_tokens = first_tokens or done
        if first_tokens and self._outbox is not None:  # a first token goes out now, not one decode later
            self._flush_outbox()
            self._outbox = []
            if self.first_token_handoff_s > 0 and any(slot.next_token is not None for slot in busy):
                time.sleep(self.first_token_handoff_s)  # its hand-off runs on the cores, not the next step
        fed_list: list[Fed] = []
        room = capacity
        decoding = [slot for slot in busy if slot.job is not None and slot.next_token is not None]
        for slot in decoding:  # their next token, plus any draft tokens to verify
            assert slot.next_token is not None
            draft = self._draft(slot)[: max(room - len(decoding), 0)]
            fed = [slot.next_token, *draft]
            fed_list.append(Fed(slot, fed, [], draft, list(range(len(fed)))))
            room -= len(fed)
        if fed_list:
            self._decode(fed_list)

    def _decode(self, fed_list: list[Fed]) -> None:
        """Evaluate ``fed_list`` in one ``llama_decode`` and sample where asked.

        The entries go in sequence order, with placeholders in short holes, so that llama.cpp makes
        one micro-batch of them when they bring one token each (see ryot._schedule).
        """
        batch = self._batch
        idle = [slot for slot in self._slots if slot.job is None]
        room = batch.capacity - sum(len(f.fed) for f in fed_list)
        layout = lay_out(fed_list, idle, room=room, n_ctx=self.n_ctx, max_pad=MAX_PAD)
        batch.clear()
        pads: list[Placeholder] = []
        pad_token = max(self._model.bos, 0)
        for entry in layout:
            if isinstance(entry, Placeholder):
                batch.add(pad_token, entry.pos, entry.slot.seq, False)
                pads.append(entry)
                continue
            base = len(entry.slot.cached)
            seq = entry.slot.seq
            wanted = entry.sampled
            for i, token in enumerate(entry.fed):
                idx = batch.add(token, base + i, seq, i in wanted)
                if i in wanted:
                    entry.outputs.append((idx, i))
        self.placeholders += len(pads)
        rc = self._ctx.decode(batch)
        for pad in pads:
            self._ctx.seq_rm(pad.slot.seq, pad.pos, -1)
        if rc != 0:
            raise RyotError(f"llama_decode failed with code {rc} (KV cache full?)")
        for f in fed_list:
            self._verify(f)

    def _verify(self, f: Fed) -> None:
        """Sample after each fed token with logits; keep draft tokens while they match (greedy)."""
        slot = f.slot
        base = len(slot.cached)
        slot.cached.extend(f.fed)
        self.draft_tokens += len(f.draft)
        for i, (idx, offset) in enumerate(f.outputs):
            if slot.job is None or slot.sampler is None:
                break
            token = slot.sampler.sample(self._ctx, idx)
            top = slot.job.params.logprobs
            self._accept(slot, token, None if top is None else self._logprob(slot.sampler, idx, token, top))
            if i < len(f.draft) and token == f.draft[i] and slot.job is not None:
                self.draft_accepted += 1
                slot.next_token = None  # already fed (and in the KV cache) as part of the draft
                continue
            keep = base + offset + 1  # fed[: offset + 1] stays; rejected draft tokens leave the KV cache
            if len(slot.cached) > keep:
                self._ctx.seq_rm(slot.seq, keep, -1)
                del slot.cached[keep:]
            break

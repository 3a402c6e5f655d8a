"""A thin, typed layer over llama.cpp's C API (through llama-cpp-python's ctypes bindings).

Only what the batching scheduler needs: a model with its vocabulary and metadata, a context with
``n_seq_max`` sequences, a reusable batch, and per-sequence sampler chains. Every object frees its C
memory in ``close()``; none is thread safe (the engine's worker thread owns them).
"""

from __future__ import annotations

import ctypes
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import llama_cpp
import numpy as np

from ryot.errors import ModelLoadError

_backend_lock = threading.Lock()
_backend_ready = False


def _init_backend() -> None:
    global _backend_ready
    with _backend_lock:
        if not _backend_ready:
            # llama-cpp-python prints llama.cpp's log lines at or above this logger's level.
            logging.getLogger("llama-cpp-python").setLevel(logging.ERROR)
            llama_cpp.llama_backend_init()
            _backend_ready = True


class Model:
    """A GGUF model loaded with mmap; tokenization and metadata (thread safe: read-only).

    Raises:
        ModelLoadError: llama.cpp cannot load the file.
    """

    def __init__(self, path: Path, *, repack: bool = True, vocab_only: bool = False) -> None:
        _init_backend()
        params = llama_cpp.llama_model_default_params()
        params.use_extra_bufts = repack
        params.vocab_only = vocab_only
        self.path = path
        self.ptr = llama_cpp.llama_model_load_from_file(str(path).encode(), params)
        if not self.ptr:
            raise ModelLoadError(
                str(path), "llama.cpp could not load it (not a GGUF, or an unsupported model)"
            )
        self.vocab = llama_cpp.llama_model_get_vocab(self.ptr)
        self.n_vocab = int(llama_cpp.llama_vocab_n_tokens(self.vocab))
        self.bos = int(llama_cpp.llama_vocab_bos(self.vocab))
        self.eos = int(llama_cpp.llama_vocab_eos(self.vocab))
        self.add_bos = self.bos >= 0 and bool(llama_cpp.llama_vocab_get_add_bos(self.vocab))
        """Whether tokenizing a text prompt puts the BOS token first (so every text prompt shares it)."""
        self.size_bytes = int(llama_cpp.llama_model_size(self.ptr))
        self.n_swa = int(llama_cpp.llama_model_n_swa(self.ptr))
        """Sliding-window size of the model's windowed attention layers (0: none)."""
        self.recurrent = bool(
            llama_cpp.llama_model_is_recurrent(self.ptr) or llama_cpp.llama_model_is_hybrid(self.ptr)
        )
        """Whether the model keeps recurrent state (Mamba, RWKV, hybrids): not trimmable to a prefix."""
        self.metadata = self._metadata()

    def _metadata(self) -> dict[str, str]:
        out: dict[str, str] = {}
        buf = ctypes.create_string_buffer(1 << 16)
        for i in range(int(llama_cpp.llama_model_meta_count(self.ptr))):
            n = llama_cpp.llama_model_meta_key_by_index(self.ptr, i, buf, len(buf))
            key = buf.value.decode("utf-8", errors="replace") if n >= 0 else ""
            size = int(llama_cpp.llama_model_meta_val_str_by_index(self.ptr, i, None, 0))
            if not key or size < 0:
                continue
            val = ctypes.create_string_buffer(size + 1)
            llama_cpp.llama_model_meta_val_str_by_index(self.ptr, i, val, size + 1)
            out[key] = val.value.decode("utf-8", errors="replace")
        return out

    def token_text(self, token: int) -> str:
        """The vocabulary text of ``token`` (e.g. ``<bos>``)."""
        raw = llama_cpp.llama_vocab_get_text(self.vocab, token)
        return raw.decode("utf-8", errors="replace") if raw else ""

    def is_eog(self, token: int) -> bool:
        """Whether ``token`` ends generation (EOS, end-of-turn, ...)."""
        return bool(llama_cpp.llama_vocab_is_eog(self.vocab, token))

    def tokenize(self, data: bytes, *, add_special: bool, parse_special: bool) -> list[int]:
        """Token ids of UTF-8 ``data``.

        Raises:
            RuntimeError: The model was closed.
        """
        if not self.ptr:
            raise RuntimeError("the model is closed")
        n_max = len(data) + 8
        buf = (llama_cpp.llama_token * n_max)()
        n = llama_cpp.llama_tokenize(self.vocab, data, len(data), buf, n_max, add_special, parse_special)
        if n < 0:
            n_max = -n
            buf = (llama_cpp.llama_token * n_max)()
            n = llama_cpp.llama_tokenize(self.vocab, data, len(data), buf, n_max, add_special, parse_special)
        return list(buf[:n])

    def piece(self, token: int, buf: ctypes.Array[ctypes.c_char]) -> bytes:
        """The bytes ``token`` stands for (special tokens render as nothing)."""
        n = llama_cpp.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, False)
        if n < 0:
            bigger = ctypes.create_string_buffer(-n)
            n = llama_cpp.llama_token_to_piece(self.vocab, token, bigger, len(bigger), 0, False)
            return bigger.raw[:n]
        return buf.raw[:n]

    def close(self) -> None:
        """Free the model. Idempotent."""
        if self.ptr:
            llama_cpp.llama_model_free(self.ptr)
            self.ptr = None


class Context:
    """A llama.cpp context with ``n_seq`` independent sequences of ``n_ctx_seq`` tokens each."""

    def __init__(
        self,
        model: Model,
        *,
        n_ctx_seq: int,
        n_seq: int,
        n_batch: int,
        n_threads: int,
        swa_full: bool,
        flash_attn: bool = False,
        n_outputs_max: int = 0,
    ) -> None:
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = n_ctx_seq * n_seq
        params.n_batch = n_batch
        params.n_ubatch = n_batch
        params.n_seq_max = n_seq
        # Logits rows per step: one per sequence (plus draft tokens), not n_batch × n_vocab floats.
        params.n_outputs_max = n_outputs_max or n_seq
        params.n_threads = n_threads
        params.n_threads_batch = n_threads
        params.swa_full = swa_full
        params.kv_unified = False  # one KV stream per sequence: attention only over its own tokens
        params.no_perf = True
        params.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED if not flash_attn else 1
        self.ptr = llama_cpp.llama_init_from_model(model.ptr, params)
        if not self.ptr:
            raise ModelLoadError(str(model.path), "llama.cpp could not create a context (out of memory?)")
        self.n_seq = n_seq
        self.n_ctx_seq = int(llama_cpp.llama_n_ctx_seq(self.ptr))
        self.memory = llama_cpp.llama_get_memory(self.ptr)

    def seq_rm(self, seq: int, p0: int, p1: int = -1) -> bool:
        """Drop KV entries of ``seq`` at positions [p0, p1) (``p1 = -1``: to the end)."""
        return bool(llama_cpp.llama_memory_seq_rm(self.memory, seq, p0, p1))

    def seq_pos_min(self, seq: int) -> int:
        """Lowest position ``seq`` holds in every layer (-1 when empty).

        Above 0 only after restoring a sliding-window model's state (see :mod:`ryot._prefix_cache`).
        """
        return int(llama_cpp.llama_memory_seq_pos_min(self.memory, seq))

    def seq_state(self, seq: int) -> ctypes.Array[ctypes.c_uint8] | None:
        """A copy of the state (KV cells) of ``seq`` in host memory; ``None`` if it is empty."""
        size = int(llama_cpp.llama_state_seq_get_size(self.ptr, seq))
        if size <= 0:
            return None
        buf = (ctypes.c_uint8 * size)()
        written = int(llama_cpp.llama_state_seq_get_data(self.ptr, buf, size, seq))
        if written <= 0:
            return None
        if written < size:  # keep the byte count exact (llama.cpp writes what get_size announced)
            return (ctypes.c_uint8 * written).from_buffer_copy(buf)
        return buf

    def set_seq_state(self, state: ctypes.Array[ctypes.c_uint8], seq: int) -> bool:
        """Replace the contents of ``seq`` by a state from :meth:`seq_state`; whether llama.cpp took it."""
        return int(llama_cpp.llama_state_seq_set_data(self.ptr, state, len(state), seq)) > 0

    def decode(self, batch: Batch) -> int:
        """Evaluate ``batch``; 0 on success (llama.cpp's return code otherwise)."""
        return int(llama_cpp.llama_decode(self.ptr, batch.raw))

    def close(self) -> None:
        """Free the context. Idempotent."""
        if self.ptr:
            llama_cpp.llama_free(self.ptr)
            self.ptr = None


class Batch:
    """A reusable ``llama_batch`` of up to ``capacity`` tokens, one sequence id per token."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.raw = llama_cpp.llama_batch_init(capacity, 0, 1)
        self.n = 0

    def clear(self) -> None:
        """Empty the batch."""
        self.n = 0
        self.raw.n_tokens = 0

    def add(self, token: int, pos: int, seq: int, logits: bool) -> int:
        """Append a token; returns its index in the batch (used to sample from its logits)."""
        i = self.n
        raw = self.raw
        raw.token[i] = token
        raw.pos[i] = pos
        raw.n_seq_id[i] = 1
        raw.seq_id[i][0] = seq
        raw.logits[i] = logits
        self.n = raw.n_tokens = i + 1
        return i

    def close(self) -> None:
        """Free the batch. Idempotent."""
        if self.capacity:
            llama_cpp.llama_batch_free(self.raw)
            self.capacity = 0


@dataclass(frozen=True, slots=True)
class SamplerSpec:
    """Sampling parameters of one sequence (see :class:`ryot.SamplingParams`)."""

    temperature: float
    top_k: int
    top_p: float
    min_p: float
    repeat_penalty: float
    seed: int
    grammar: str | None = None
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    logit_bias: tuple[tuple[int, float], ...] = ()

    @property
    def penalised(self) -> bool:
        """Whether any repetition, presence or frequency penalty applies."""
        return self.repeat_penalty != 1.0 or self.presence_penalty != 0.0 or self.frequency_penalty != 0.0


PENALTY_LAST_N = 256
"""Tokens the penalties look back over (llama.cpp's ``penalty_last_n``)."""


_TOKEN_DATA = np.dtype([("id", "<i4"), ("logit", "<f4"), ("p", "<f4")])
"""numpy twin of ``llama_token_data`` (the candidates array llama.cpp's samplers work on)."""


class Sampler:
    """A llama.cpp sampler chain: [logit bias →] penalties → top-k → top-p → min-p → temp → dist.

    Greedy instead of the sampling steps at temperature 0. The order is llama.cpp's default chain
    (``common/sampling.cpp``). A grammar (GBNF) is checked as llama.cpp's ``common_sampler_sample``
    does: the chain picks a token from the raw candidates, the grammar checks that one token, and only
    when it is refused are all candidates masked by the grammar and the chain run again. Masking the
    whole vocabulary (262k tokens for Gemma 3) every step costs far more than one check, and a token
    the grammar accepts is what the masked chain would have picked (the mask only removes tokens).
    """

    def __init__(self, spec: SamplerSpec, model: Model) -> None:
        # Plain greedy (no penalties, no grammar) keeps no state: an argmax over the logits row picks the
        # same token as llama.cpp's greedy sampler (the first maximum) without building its 262k-entry
        # candidate array each step (~1 ms per token for Gemma 3's vocabulary).
        self.argmax = (
            spec.temperature <= 0.0 and not spec.penalised and spec.grammar is None and not spec.logit_bias
        )
        self.n_vocab = model.n_vocab
        self.ptr = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
        self.grammar = None
        add = llama_cpp.llama_sampler_chain_add
        if spec.logit_bias:
            biases = (llama_cpp.llama_logit_bias * len(spec.logit_bias))(
                *(llama_cpp.llama_logit_bias(token, bias) for token, bias in spec.logit_bias)
            )
            add(self.ptr, llama_cpp.llama_sampler_init_logit_bias(self.n_vocab, len(spec.logit_bias), biases))
        if spec.grammar is not None:
            self.grammar = llama_cpp.llama_sampler_init_grammar(model.vocab, spec.grammar.encode(), b"root")
            if not self.grammar:
                self.close()
                raise ValueError("llama.cpp rejected the grammar")
            self._cands = np.zeros(self.n_vocab, dtype=_TOKEN_DATA)
            self._one = np.zeros(1, dtype=_TOKEN_DATA)
        if spec.penalised:
            penalties = llama_cpp.llama_sampler_init_penalties(
                self.n_vocab,
                PENALTY_LAST_N,
                spec.repeat_penalty,
                spec.frequency_penalty,
                spec.presence_penalty,
            )
            add(self.ptr, penalties)
        if spec.temperature <= 0.0:
            add(self.ptr, llama_cpp.llama_sampler_init_greedy())
            return
        if spec.top_k > 0:
            add(self.ptr, llama_cpp.llama_sampler_init_top_k(spec.top_k))
        add(self.ptr, llama_cpp.llama_sampler_init_top_p(spec.top_p, 1))
        add(self.ptr, llama_cpp.llama_sampler_init_min_p(spec.min_p, 1))
        add(self.ptr, llama_cpp.llama_sampler_init_temp(spec.temperature))
        add(self.ptr, llama_cpp.llama_sampler_init_dist(spec.seed))

    def sample(self, ctx: Context, index: int) -> int:
        """Sample (and accept) a token from the logits of batch entry ``index``."""
        if self.argmax:
            row = llama_cpp.llama_get_logits_ith(ctx.ptr, index)
            return int(np.ctypeslib.as_array(row, shape=(self.n_vocab,)).argmax())
        if self.grammar is None:
            return int(llama_cpp.llama_sampler_sample(self.ptr, ctx.ptr, index))
        row = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(ctx.ptr, index), shape=(self.n_vocab,))
        token = self._pick(row, masked=False)
        one = self._one
        one[0] = (token, row[token], 0.0)
        self._apply(self.grammar, one)
        if not np.isfinite(one["logit"][0]):  # the grammar refuses it: mask every candidate, pick again
            token = self._pick(row, masked=True)
        llama_cpp.llama_sampler_accept(self.grammar, token)
        llama_cpp.llama_sampler_accept(self.ptr, token)
        return token

    @staticmethod
    def _apply(sampler: llama_cpp.llama_sampler_p, cands: np.ndarray) -> int:
        """Run ``sampler`` on the candidates ``cands`` in place; the index it selected (-1: none)."""
        data = cands.ctypes.data_as(ctypes.POINTER(llama_cpp.llama_token_data))
        arr = llama_cpp.llama_token_data_array(data=data, size=len(cands), selected=-1, sorted=False)
        llama_cpp.llama_sampler_apply(sampler, ctypes.byref(arr))
        return int(arr.selected)

    def _pick(self, row: np.ndarray, *, masked: bool) -> int:
        """The chain's choice among all tokens (``masked``: after the grammar removed refused ones)."""
        cands = self._cands
        cands["id"] = np.arange(self.n_vocab, dtype=np.int32)
        cands["logit"] = row
        cands["p"] = 0.0
        data = cands.ctypes.data_as(ctypes.POINTER(llama_cpp.llama_token_data))
        arr = llama_cpp.llama_token_data_array(data=data, size=self.n_vocab, selected=-1, sorted=False)
        if masked:
            llama_cpp.llama_sampler_apply(self.grammar, ctypes.byref(arr))
        llama_cpp.llama_sampler_apply(self.ptr, ctypes.byref(arr))
        if arr.selected < 0:
            raise RuntimeError("the sampler chain selected no token")
        return int(cands["id"][arr.selected])

    def logprobs(
        self, ctx: Context, index: int, token: int, top: int
    ) -> tuple[float, list[tuple[int, float]]]:
        """Log probability of ``token`` and the ``top`` most likely tokens at batch entry ``index``.

        From the model's raw logits (log-softmax, natural log), before any bias, penalty or grammar.
        """
        row = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(ctx.ptr, index), shape=(self.n_vocab,))
        peak = float(row.max())
        log_z = peak + float(np.log(np.exp(row - peak, dtype=np.float64).sum()))
        best: list[tuple[int, float]] = []
        if top > 0:
            ids = np.argpartition(row, -top)[-top:]
            ids = ids[np.argsort(-row[ids], kind="stable")]
            best = [(int(i), float(row[i]) - log_z) for i in ids]
        return float(row[token]) - log_z, best

    def close(self) -> None:
        """Free the chain. Idempotent."""
        if self.grammar:
            llama_cpp.llama_sampler_free(self.grammar)
            self.grammar = None
        if self.ptr:
            llama_cpp.llama_sampler_free(self.ptr)
            self.ptr = None

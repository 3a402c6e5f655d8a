"""`SigmaConfig`: every tunable of the ΣLANG codec, as one frozen pydantic model."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ("SigmaConfig",)


class SigmaConfig(BaseModel):
    """Configuration of the ΣLANG codec (lossless path).

    The defaults were chosen on the multi-turn session corpus of ``benchmarks/sigma_corpus.py``
    (standard-library text) and the agent messages of ``benchmarks/sigmalang.py``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    level: int = Field(default=6, ge=-7, le=22)
    """zstd compression level for inputs of at least `small_input_bytes` (1-22; negative = fast modes)."""

    small_input_level: int = Field(default=3, ge=-7, le=22)
    """zstd level for inputs shorter than `small_input_bytes` (19 gains about 6% on 500-byte messages
    with a dictionary at about a tenth of the speed)."""

    context_level: int = Field(default=8, ge=-7, le=22)
    """zstd level for store-backed frames with a context, of at least `small_input_bytes`: with the
    context as dictionary, level 8 costs about as much as 6 (loading the dictionary dominates) and
    gains 1.5% of size. Its tables (hash and chain sizes) are kept; how hard the context is searched
    is set by `context_search_log`/`context_min_match`, or `mostly_new_*` for messages mostly new."""

    context_search_log: int | None = Field(default=5, ge=1, le=30)
    """zstd ``searchLog`` for frames with a context at `context_level`: log2 of the hash-chain
    candidates compared at each position, at least (level 8's own: 4, or 8 when message and context
    are at most 16 KiB, which is kept); None keeps the level's.
    Used with `context_min_match` for messages whose new bytes are under `mostly_new_min_share`."""

    context_min_match: int | None = Field(default=5, ge=3, le=7)
    """zstd ``minMatch`` for those frames, bytes: the length hashed to find candidates (level 8's own:
    4); None keeps the level's. 5 skips the chains' 4-byte candidates of repeated text: 32 candidates
    on 5 bytes gave +0.25% to +0.76% on the prose draws in 0.86-0.92 of level 8's zstd time."""

    mostly_new_min_share: float = Field(default=0.5, ge=0.0, le=1.0)
    """A message with a context whose new bytes (chunks its tenant did not hold) are at least this share
    of it is coded with `mostly_new_search_log` and `mostly_new_min_match` instead: new code and text
    are coded as many short matches against the context, which 4-byte candidates find
    (docs/sigmalang.md, "zstd's parameters for frames, chosen by measurement")."""

    mostly_new_search_log: int | None = Field(default=5, ge=1, le=30)
    """zstd ``searchLog`` for messages mostly new (32 candidates a position, at least; 64 gained coding
    draws another 0.1-0.5% for 4-9% more zstd time there); None keeps the level's."""

    mostly_new_min_match: int | None = Field(default=4, ge=3, le=7)
    """zstd ``minMatch`` for messages mostly new, bytes; None keeps the level's."""

    generic_content_min_new_bytes: int = Field(default=8192, ge=0)
    """A frame with a context uses the generic dictionary's content (not only its entropy tables) when
    the message brings at least this many new bytes (chunks the tenant did not hold): hashing the
    32 KiB content costs about as much as compressing 8 KiB, and pays only on new text."""

    trained_content_min_new_bytes: int = Field(default=2048, ge=0)
    """The same for an active trained dictionary, on messages of at least `small_input_bytes` (smaller
    ones always use it whole: it often halves them): below 2 KiB of new bytes its content saved
    nothing measurable on the session corpus (the context covers the rest) and cost 15% of the speed."""

    word_context_per_new_chunk: int = Field(default=0, ge=0, le=16)
    """A frame's context adds up to this many RSUs per new chunk of the message (at most 16) that share
    the most *words* with its new chunks (runs of at least 8 ASCII letters, digits or underscores:
    identifiers, long words; `sigmalang._anchors.words_of`); 0 = none, the default. New code and text
    repeat few whole lines (anchors) of what the tenant sent before but many of its words, where zstd
    finds short matches. With 2 and automatic per-tenant dictionaries (the REST default): ratios
    -0.002% to +2.5% on the benchmark draws (coding-agent sessions +1.1% to +2.5%), and compression
    at 0.78-0.88 of the speed without (taking each new chunk's words costs 8-9 ns per byte in C-level
    calls; the Python passes they replaced gave 0.71-0.81): off. See docs/sigmalang.md, "The word context,
    round 2"."""

    small_input_bytes: int = Field(default=4096, ge=0)
    """Inputs shorter than this many bytes are compressed at `small_input_level`."""

    chunk_min_bytes: int = Field(default=256, ge=64, le=1_048_576)
    """FastCDC minimum chunk (RSU) size, bytes."""

    chunk_avg_bytes: int = Field(default=1024, ge=256, le=4_194_304)
    """FastCDC target average chunk size, bytes (the real average is about avg + min)."""

    chunk_max_bytes: int = Field(default=8192, ge=1024, le=16_777_216)
    """FastCDC maximum chunk size, bytes."""

    rsu_min_input_bytes: int = Field(default=512, ge=0)
    """Inputs shorter than this many bytes are not chunked into RSUs (a glyph costs 16 bytes)."""

    context_max_bytes: int = Field(default=4 * 1024 * 1024, ge=0)
    """Most bytes of a tenant's stored RSUs one frame uses as zstd context (0 = none). The stream's
    previous message is kept first, but beyond the cap its *first* bytes go, which in a chat request
    are the system prompt and tools: with 256 KiB, sessions whose turns grew to 350 KB compressed to
    0.62× of whole-session zstd-19 (0.81× with 4 MiB). 4 MiB is zstd's window at the context level
    (level 8: window log 22), so a larger cap would add bytes zstd cannot reach."""

    store_max_bytes: int = Field(default=256 * 1024 * 1024, ge=0)
    """RSU content kept per tenant, bytes; beyond it the least recently used RSUs are evicted."""

    store_max_age_s: float | None = Field(default=7 * 24 * 3600.0, gt=0)
    """RSUs unused for longer than this are evicted, seconds (None: no age limit)."""

    dictionary_size_bytes: int = Field(default=32 * 1024, ge=256)
    """Target size of a trained zstd dictionary, bytes."""

    dictionary_min_samples: int = Field(default=16, ge=1)
    """Fewer training samples than this and `train_dictionary` returns None (no dictionary)."""

    auto_dictionary_min_new_bytes: int = Field(default=64 * 1024, ge=0)
    """Train a tenant's own dictionary from its traffic once its messages brought this many *new* bytes
    (chunks its store did not hold), bytes; 0 = never (the generic dictionary, or one trained
    explicitly, only). Trained off the compress path (a background thread, `sigmalang.autotrain`) on
    the tenant's recent new chunks, used for its later frames, and kept only if it compresses a
    held-back part of them smaller than the dictionary in use. A tenant with a dictionary of its own
    trained explicitly (`SigmaCodec.train_dictionary(..., tenant=T)`) keeps it. Ratio on held-out
    coding-agent sessions of 4-40 turns +5.2% to +9.8% against the generic dictionary alone, on the
    other benchmark draws 0.0% to +1.4%; about 8 ms of CPU per tenant for its three scheduled
    trainings (one zstd training and two coding passes each, ~2.6 ms), then one per
    `auto_dictionary_drift_period_bytes`. See docs/sigmalang.md, "Dictionaries trained from a tenant's
    own traffic" and its "Training for less CPU"."""

    auto_dictionary_retrain_max_new_bytes: int = Field(default=256 * 1024, ge=0)
    """An automatically trained dictionary is trained again from the recent samples each time the
    tenant's new bytes double, until they pass this many bytes (64 KiB, then 128 and 256 KiB by
    default); after that, every `auto_dictionary_drift_period_bytes`. Earlier frames keep decoding
    (each names its dictionary's id)."""

    auto_dictionary_drift_period_bytes: int = Field(default=256 * 1024, ge=0)
    """After the trainings above, a tenant's dictionary is trained again from its recent samples each
    time it sent this many more new bytes, bytes, and replaces the one in use only if it codes the
    held-back samples smaller (so a tenant whose traffic changes gets a dictionary of its new traffic;
    one whose traffic does not keeps its dictionary); 0 = never (the dictionary stays). Also the
    period after a restart for a tenant whose active dictionary is automatic."""

    auto_dictionary_max_kept: int = Field(default=8, ge=1)
    """Most automatic dictionaries a registry keeps per tenant (its active one and the latest before
    it; 32 KiB each by default), in memory and in its directory. A frame naming an older one decodes
    while the registry's `DictionarySource` holds it (the service's KV bucket keeps every published one
    until the tenant is deleted); without a source it fails with `MissingDictionaryError`."""

    fetched_dictionary_max_bytes: int = Field(default=32 * 1024 * 1024, ge=0)
    """Most bytes of dictionaries a registry keeps after fetching them from its `DictionarySource` to
    decode other replicas' frames (every tenant's together), in memory and in its directory; beyond it
    the least recently used (fetched or decoded with) go, and a frame naming one fetches it again.
    32 MiB: 1,024 dictionaries of 32 KiB, the latest of four other replicas for each of the 256
    tenants that train at once (`sigmalang.autotrain.MAX_COLLECTING_TENANTS`). Read by
    `DictionaryRegistry` (its ``fetched_max_bytes``); a tenant's own and shared dictionaries are not
    counted and never evicted."""

    auto_dictionary_sample_max_bytes: int = Field(default=256 * 1024, ge=1024)
    """Most bytes of recent new chunks kept per tenant as training samples (the oldest dropped first);
    at most `sigmalang.autotrain.MAX_COLLECTING_TENANTS` tenants collect at once (least recently
    active dropped), so the samples take at most 256 × this in memory."""

    auto_dictionary_size_bytes: int = Field(default=32 * 1024, ge=256)
    """Target size of an automatically trained dictionary, bytes (capped at half the samples)."""

    generic_dictionary: bool = True
    """Store-backed frames use the shipped generic dictionary (`sigmalang.generic`) when no trained
    dictionary is active: its entropy tables save about a tenth of each frame on agent traffic."""

    max_output_bytes: int = Field(default=1 << 30, ge=0)
    """Decoding refuses frames that declare more content than this many bytes."""

    @model_validator(mode="after")
    def _check_chunk_sizes(self) -> SigmaConfig:
        if not self.chunk_min_bytes <= self.chunk_avg_bytes <= self.chunk_max_bytes:
            raise ValueError("need chunk_min_bytes <= chunk_avg_bytes <= chunk_max_bytes")
        return self

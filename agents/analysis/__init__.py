"""The Analysis team: eight agents doing local, deterministic text, code and number analysis.

=================== ==========================================================================
agent               work
=================== ==========================================================================
sentiment           text → VADER label and compound/pos/neu/neg, overall and per sentence
keyword-extractor   text → top-k YAKE keyphrases with scores (lower = more relevant)
entity-extractor    text → e-mails, URLs, phones (E.164), dates (ISO), money, %, proper nouns
language-detector   text → ISO 639-1 language with confidences (lingua), mixed-text segments
similarity          text vs other text or candidates → embedding cosine + word Jaccard, ranked
code-analyzer       Python source → complexity per function (A-F), MI, Halstead, lines, structure
statistician        numbers (or a text's numbers) → mean, median, stdev, percentiles, outliers, trend
quality-critic      text → 0-100 quality score, issues, suggestions, criteria pass/fail
=================== ==========================================================================

No agent calls an LLM; only ``similarity`` uses a model (all-MiniLM-L6-v2, through a
:class:`TextEmbedder` such as :class:`bridges.vault.VaultBridge`). CPU work runs in worker threads under
one :class:`anyio.CapacityLimiter` the team shares; lingua, textstat, YAKE and radon, which keep the GIL
for long stretches, and VADER and the entity finders on texts of :data:`PROCESS_MIN_CHARS` characters or
more, run in one worker process the team shares. Every output has a one-line ``summary``.
"""

from agents.analysis._base import (
    ANALYSIS_PROCESSES,
    ANALYSIS_THREADS,
    MAX_LISTED,
    MAX_TEXT_CHARS,
    PROCESS_MIN_CHARS,
    AnalysisAgent,
    AnalysisInput,
    AnalysisOutput,
    check_chars,
)
from agents.analysis._code import CodeAnalyzerAgent, CodeInput, CodeOutput
from agents.analysis._embedding import EMBEDDING_MODEL, MiniLMEmbedding, TextEmbedder
from agents.analysis._entities import (
    MAX_ENTITY_TEXT_CHARS,
    EntitiesInput,
    EntitiesOutput,
    EntityExtractorAgent,
)
from agents.analysis._entity_rules import ENTITY_TYPES, Entity
from agents.analysis._keywords import YAKE_LANGUAGES, KeywordExtractorAgent, KeywordsInput, KeywordsOutput
from agents.analysis._language import (
    DEFAULT_LANGUAGES,
    SUPPORTED_LANGUAGES,
    LanguageDetectorAgent,
    LanguageInput,
    LanguageOutput,
)
from agents.analysis._quality import QualityCriticAgent, QualityInput, QualityOutput
from agents.analysis._sentiment import SentimentAgent, SentimentInput, SentimentOutput, sentiment_label
from agents.analysis._similarity import SimilarityAgent, SimilarityInput, SimilarityOutput, jaccard
from agents.analysis._statistics import StatisticianAgent, StatsInput, StatsOutput, describe

ANALYSIS_AGENTS: tuple[type[AnalysisAgent], ...] = (
    SentimentAgent,
    KeywordExtractorAgent,
    EntityExtractorAgent,
    LanguageDetectorAgent,
    SimilarityAgent,
    CodeAnalyzerAgent,
    StatisticianAgent,
    QualityCriticAgent,
)
"""Every agent of the team, in roster order (``SimilarityAgent`` also takes a :class:`TextEmbedder`)."""

__all__ = (
    "ANALYSIS_AGENTS",
    "ANALYSIS_PROCESSES",
    "ANALYSIS_THREADS",
    "DEFAULT_LANGUAGES",
    "EMBEDDING_MODEL",
    "ENTITY_TYPES",
    "MAX_ENTITY_TEXT_CHARS",
    "MAX_LISTED",
    "MAX_TEXT_CHARS",
    "PROCESS_MIN_CHARS",
    "SUPPORTED_LANGUAGES",
    "YAKE_LANGUAGES",
    "AnalysisAgent",
    "AnalysisInput",
    "AnalysisOutput",
    "CodeAnalyzerAgent",
    "CodeInput",
    "CodeOutput",
    "EntitiesInput",
    "EntitiesOutput",
    "Entity",
    "EntityExtractorAgent",
    "KeywordExtractorAgent",
    "KeywordsInput",
    "KeywordsOutput",
    "LanguageDetectorAgent",
    "LanguageInput",
    "LanguageOutput",
    "MiniLMEmbedding",
    "QualityCriticAgent",
    "QualityInput",
    "QualityOutput",
    "SentimentAgent",
    "SentimentInput",
    "SentimentOutput",
    "SimilarityAgent",
    "SimilarityInput",
    "SimilarityOutput",
    "StatisticianAgent",
    "StatsInput",
    "StatsOutput",
    "TextEmbedder",
    "check_chars",
    "describe",
    "jaccard",
    "sentiment_label",
)

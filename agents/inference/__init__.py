"""The Inference team: eight agents doing Ryot work through one shared `bridges.RyotBridge`.

=========== ===============================================================================
agent       work
=========== ===============================================================================
generator   prompt or chat messages → streamed completion (any sampling, grammar, JSON schema)
chat        session id + message → reply, with the session's last turns in the prompt (LRU or JetStream KV)
summarizer  text → a summary of at most N sentences / words, with token counts
classifier  text + 2–50 labels → exactly one label (greedy, grammar of the labels)
extractor   text + JSON Schema → a JSON object valid for the schema (grammar-constrained)
translator  text + target language (name or ISO 639-1 code) → translation (greedy)
coder       task + language → code extracted from the answer; Python checked with ``ast.parse``
tokenizer   text → token ids and count, or token ids → text (no generation)
=========== ===============================================================================

Every generating agent streams ``{"text": ...}`` chunks and reports exact token usage; errors map to wire
codes in `agents.inference.engine_error`. The shared base is `agents.inference.InferenceAgent`.
"""

from agents.inference._base import DEFAULT_MAX_TOKENS, MAX_TEXT_CHARS, MAX_TOKENS_LIMIT
from agents.inference._chat import ChatAgent, ChatMemory, SessionMemory
from agents.inference._chat_sessions import SharedChatMemory
from agents.inference._code import CODE_LANGUAGES, CoderAgent, check_python, extract_code
from agents.inference._generator import GeneratorAgent, InferenceAgent, engine_error
from agents.inference._structured import ClassifierAgent, ExtractorAgent, labels_grammar
from agents.inference._text import LANGUAGES, SummarizerAgent, TranslatorAgent, trim_summary
from agents.inference._tokenizer import TokenizerAgent

INFERENCE_AGENTS: tuple[type[InferenceAgent], ...] = (
    GeneratorAgent,
    ChatAgent,
    SummarizerAgent,
    ClassifierAgent,
    ExtractorAgent,
    TranslatorAgent,
    CoderAgent,
    TokenizerAgent,
)
"""Every agent of the team, in roster order (each is built with a `bridges.RyotBridge`)."""

__all__ = (
    "CODE_LANGUAGES",
    "DEFAULT_MAX_TOKENS",
    "INFERENCE_AGENTS",
    "LANGUAGES",
    "MAX_TEXT_CHARS",
    "MAX_TOKENS_LIMIT",
    "ChatAgent",
    "ChatMemory",
    "ClassifierAgent",
    "CoderAgent",
    "ExtractorAgent",
    "GeneratorAgent",
    "InferenceAgent",
    "SessionMemory",
    "SharedChatMemory",
    "SummarizerAgent",
    "TokenizerAgent",
    "TranslatorAgent",
    "check_python",
    "engine_error",
    "extract_code",
    "labels_grammar",
    "trim_summary",
)

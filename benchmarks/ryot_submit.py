"""Time of ``RyotEngine.submit`` on the caller's thread (validation, tokenization, queueing) after a pause.

``submit`` runs on the service's event loop before a request reaches the engine, so its time is part of
every request's time to first token. Each request follows a pause (``--pause-ms``, default 50 ms), as
requests on a server do: what evicted the tokenizer's tables from the CPU caches in between is then
paid again. Rows: a new prompt text every time, the same text every time (a repeated prompt), and
llama.cpp's tokenizer alone (``engine.tokenize`` on a new text) for reference. Each request generates
one token and the next starts after it finished.

Run it against two trees to compare (the tree chosen by ``PYTHONPATH``)::

    PYTHONPATH=$PWD HF_HUB_OFFLINE=1 python benchmarks/ryot_submit.py --requests 40
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time

from ryot import Event, Finished, RyotConfig, RyotEngine, SamplingParams

PROMPT = "Write a long, detailed story about a sailor who finds a map."


def _timed_submit(engine: RyotEngine, prompt: str, pause_s: float) -> float:
    """Seconds one ``submit`` took, after ``pause_s`` of sleep; waits for the request to end."""
    done = threading.Event()

    def sink(event: Event) -> None:
        if isinstance(event, Finished) or not hasattr(event, "text"):
            done.set()

    time.sleep(pause_s)
    started = time.perf_counter()
    engine.submit(prompt, SamplingParams(max_tokens=1, temperature=0.0), sink)
    took = time.perf_counter() - started
    if not done.wait(60):
        raise TimeoutError("the request did not finish in 60 s")
    return took


def main() -> None:
    """Print the median and p90 of each row, in microseconds."""
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=fmt)
    parser.add_argument("--requests", type=int, default=40, help="requests per row")
    parser.add_argument("--pause-ms", type=float, default=50.0, help="sleep before each request")
    args = parser.parse_args()
    pause = args.pause_ms / 1e3
    rows: dict[str, list[float]] = {"new text": [], "repeated text": [], "tokenizer alone, new text": []}
    with RyotEngine(RyotConfig()) as engine:
        _timed_submit(engine, PROMPT, pause)  # load, first use
        for i in range(args.requests):  # interleaved, so that the rows see the same load
            rows["new text"].append(_timed_submit(engine, f"{PROMPT} ({i})", pause))
            rows["repeated text"].append(_timed_submit(engine, PROMPT, pause))
            time.sleep(pause)
            started = time.perf_counter()
            engine.tokenize(f"{PROMPT} [{i}]")
            rows["tokenizer alone, new text"].append(time.perf_counter() - started)
    for name, times in rows.items():
        us = sorted(t * 1e6 for t in times)
        p90 = us[int(0.9 * (len(us) - 1))]
        print(f"{name:28s} median {statistics.median(us):7.1f} µs   p90 {p90:7.1f} µs   (n={len(us)})")


if __name__ == "__main__":
    main()

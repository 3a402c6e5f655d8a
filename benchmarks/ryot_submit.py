"""Time of ``RyotEngine.submit`` on the caller's thread (validation, tokenization, queueing) after a pause.

``submit`` runs on the service's event loop before a request reaches the engine, so its time is part of
every request's time to first token. Each request follows a pause (``--pause-ms``, default 50 ms), as
requests on a server do: what evicted the tokenizer's tables from the CPU caches in between is then
paid again. Rows: ``submit`` with a new prompt text every time and with the same text every time (a
repeated prompt), llama.cpp's tokenizer alone (``engine.tokenize`` on a new text) for reference, and
the engine's ``queue_s`` of those requests (from ``submit`` queueing the job to the worker having
admitted it: the worker's wake-up and admission). Each request generates one token and the next
starts after it finished.

Run it against two trees to compare (the tree chosen by ``PYTHONPATH``)::

    PYTHONPATH=$PWD HF_HUB_OFFLINE=1 python benchmarks/ryot_submit.py --requests 40
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time

from ryot import Event, Failed, Finished, RyotConfig, RyotEngine, SamplingParams

PROMPT = "Write a long, detailed story about a sailor who finds a map."


def _timed_submit(engine: RyotEngine, prompt: str, pause_s: float) -> tuple[float, float]:
    """Seconds one ``submit`` took after ``pause_s`` of sleep, and the request's ``Timings.queue_s``."""
    done = threading.Event()
    queue_s: list[float] = []

    def sink(event: Event) -> None:
        if isinstance(event, Finished):
            queue_s.append(event.timings.queue_s)
            done.set()
        elif isinstance(event, Failed):
            done.set()

    time.sleep(pause_s)
    started = time.perf_counter()
    engine.submit(prompt, SamplingParams(max_tokens=1, temperature=0.0), sink)
    took = time.perf_counter() - started
    if not done.wait(60) or not queue_s:
        raise RuntimeError("the request failed or did not finish in 60 s")
    return took, queue_s[0]


def main() -> None:
    """Print the median and p90 of each row, in microseconds."""
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=fmt)
    parser.add_argument("--requests", type=int, default=40, help="requests per row")
    parser.add_argument("--pause-ms", type=float, default=50.0, help="sleep before each request")
    args = parser.parse_args()
    pause = args.pause_ms / 1e3
    rows: dict[str, list[float]] = {
        "submit, new text": [],
        "submit, repeated text": [],
        "tokenizer alone, new text": [],
        "queue_s (put+wake+admit)": [],
    }
    with RyotEngine(RyotConfig()) as engine:
        _timed_submit(engine, PROMPT, pause)  # load, first use
        for i in range(args.requests):  # interleaved, so that the rows see the same load
            for row, text in (("submit, new text", f"{PROMPT} ({i})"), ("submit, repeated text", PROMPT)):
                took, queue_s = _timed_submit(engine, text, pause)
                rows[row].append(took)
                rows["queue_s (put+wake+admit)"].append(queue_s)
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

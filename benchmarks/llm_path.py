"""LLM path: raw llama-cpp-python vs the full Neurectomy service, same GGUF and threads, in one run.

Service path: HTTP (SSE) → Litestar → orchestrator → NATS → generator agent → bridge → Ryot worker.
Raw path: ``Llama.create_completion(stream=True)`` in this process.

For each run, both sides get the same prompt, one after the other (interleaved, so machine noise hits
both). Reported: TTFT (request sent → first token received) on a cold prompt (no shared prefix) and a
warm prompt (same prompt again: KV prefix reuse), and decode speed ((tokens − 1) / (last − first token
time)). Medians of ``--runs`` runs; ratios service/raw.

    python benchmarks/llm_path.py --runs 7 --max-tokens 64
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

# benchmarks/sigmalang.py and benchmarks/vault.py would shadow the packages of the same name.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import httpx  # noqa: E402
import llama_cpp  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from neurectomy.testing import start_serve, stop_serve  # noqa: E402
from ryot import RyotConfig, default_model_path, physical_cores  # noqa: E402

TOPICS = [
    "Lighthouses",
    "Volcanoes",
    "Penguins",
    "Railways",
    "Glaciers",
    "Bees",
    "Comets",
    "Deserts",
    "Violins",
    "Coral reefs",
    "Bridges",
    "Owls",
]
WARM_PROMPT = "Write a long, detailed story about a sailor who finds a map."


@dataclass
class Sample:
    ttft_s: float
    decode_tok_s: float | None
    tokens: int


def raw_run(llm: llama_cpp.Llama, prompt: str, max_tokens: int) -> Sample:
    started = time.perf_counter()
    stamps: list[float] = []
    for _chunk in llm.create_completion(prompt, max_tokens=max_tokens, temperature=0.0, stream=True):
        stamps.append(time.perf_counter())
    return _sample(started, stamps, len(stamps))


def service_run(client: httpx.Client, prompt: str, max_tokens: int) -> Sample:
    body = {"prompt": prompt, "max_tokens": max_tokens, "temperature": 0.0, "stream": True}
    stamps: list[float] = []
    tokens = 0
    started = time.perf_counter()
    with client.stream("POST", "/v1/generate", json=body) as response:
        response.raise_for_status()
        event = ""
        for line in response.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
                if event == "token":
                    stamps.append(time.perf_counter())
            elif line.startswith("data: ") and event == "done":
                tokens = json.loads(line[6:])["usage"]["completion_tokens"]
    return _sample(started, stamps, tokens)


def _sample(started: float, stamps: list[float], tokens: int) -> Sample:
    ttft = stamps[0] - started
    decode = (tokens - 1) / (stamps[-1] - stamps[0]) if tokens > 1 and stamps[-1] > stamps[0] else None
    return Sample(ttft, decode, tokens)


def median(values: list[float | None]) -> float:
    clean = [v for v in values if v is not None]
    return statistics.median(clean) if clean else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--max-tokens", type=int, default=64)
    args = parser.parse_args()
    console = Console()
    threads = physical_cores()
    n_ctx = RyotConfig().n_ctx
    model = default_model_path()
    console.print(
        f"model {model.name}, {threads} threads, n_ctx {n_ctx}, {args.runs} runs, {args.max_tokens} tokens"
    )

    llm = llama_cpp.Llama(
        model_path=str(model),
        n_ctx=n_ctx,
        n_threads=threads,
        n_threads_batch=threads,
        swa_full=True,
        verbose=False,
    )
    state = Path(tempfile.mkdtemp(prefix="neurectomy-bench-"))
    os.environ.setdefault("NEURECTOMY_LOG_LEVEL", "warning")
    proc, url = start_serve(state)
    results: dict[str, dict[str, list[Sample]]] = {
        "cold": {"raw": [], "svc": []},
        "warm": {"raw": [], "svc": []},
    }
    try:
        with httpx.Client(base_url=url, timeout=120) as client:
            raw_run(llm, "Warm-up.", 4)
            service_run(client, "Warm-up.", 4)
            for i in range(args.runs):
                cold = f"{TOPICS[i % len(TOPICS)]} are fascinating. Write a long essay about them."
                results["cold"]["raw"].append(raw_run(llm, cold, args.max_tokens))
                results["cold"]["svc"].append(service_run(client, cold, args.max_tokens))
                results["warm"]["raw"].append(raw_run(llm, WARM_PROMPT, args.max_tokens))
                results["warm"]["raw"].append(raw_run(llm, WARM_PROMPT, args.max_tokens))
                results["warm"]["svc"].append(service_run(client, WARM_PROMPT, args.max_tokens))
                results["warm"]["svc"].append(service_run(client, WARM_PROMPT, args.max_tokens))
                console.print(f"run {i + 1}/{args.runs} done", style="dim")
    finally:
        stop_serve(proc)
        subprocess.run(["rm", "-rf", str(state)], check=False)

    table = Table(title=f"LLM path, medians of {args.runs} runs (Gemma 3 270M Q4_K_M, {threads} threads)")
    for col in ("metric", "raw", "service", "service − raw", "service / raw"):
        table.add_column(col, justify="right", no_wrap=True)
    for kind in ("cold", "warm"):
        # warm: only the second of each pair is fully prefix-cached on both sides
        raw = results[kind]["raw"][1::2] if kind == "warm" else results[kind]["raw"]
        svc = results[kind]["svc"][1::2] if kind == "warm" else results[kind]["svc"]
        r_ttft, s_ttft = median([s.ttft_s for s in raw]) * 1e3, median([s.ttft_s for s in svc]) * 1e3
        table.add_row(
            f"TTFT {kind} (ms)",
            f"{r_ttft:.1f}",
            f"{s_ttft:.1f}",
            f"{s_ttft - r_ttft:+.1f}",
            f"{s_ttft / r_ttft:.2f}",
        )
    raw_all = results["cold"]["raw"] + results["warm"]["raw"]
    svc_all = results["cold"]["svc"] + results["warm"]["svc"]
    r_dec, s_dec = median([s.decode_tok_s for s in raw_all]), median([s.decode_tok_s for s in svc_all])
    table.add_row(
        "decode (tok/s)", f"{r_dec:.1f}", f"{s_dec:.1f}", f"{s_dec - r_dec:+.1f}", f"{s_dec / r_dec:.3f}"
    )
    r_tok, s_tok = median([s.tokens for s in raw_all]), median([s.tokens for s in svc_all])
    table.add_row("tokens per run", f"{r_tok:.0f}", f"{s_tok:.0f}", "", "")
    console.print(table)
    console.print("Targets: TTFT ≤ raw + 5 ms, decode ≥ 95 % of raw.")


if __name__ == "__main__":
    main()

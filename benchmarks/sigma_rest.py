"""ΣLANG through REST: the session corpus posted to a real ``neurectomy serve`` (Inference + Compression).

Four ways a client sends its turns: one ``POST /v1/sigma/compress`` per turn with a raw
``application/octet-stream`` body (the report comes back in a header), the same with a JSON body
(base64), and ``POST /v1/sigma/compress/batch`` with a whole session per request, as JSON (base64
each) or as a binary body (each turn a u32 little-endian length, then its bytes). Speeds are input MB
(1e6 bytes) per second of wall time, one client, sequential requests; every frame is decoded back
through ``/v1/sigma/decompress/batch`` and compared byte for byte.
"""

from __future__ import annotations

import base64
import contextlib
import struct
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from benchmarks.sigma_corpus import Session
from neurectomy.testing import start_serve, stop_serve

__all__ = ("RestOutcome", "run_rest")


@dataclass(frozen=True, slots=True)
class RestOutcome:
    """One way of posting: its compression ratio and speed."""

    label: str
    ratio: float
    mb_s: float
    requests: int


def _check(client: httpx.Client, tenant: str, frames: Sequence[str], turns: Sequence[bytes]) -> None:
    back = client.post(
        "/v1/sigma/decompress/batch", json={"frames": list(frames)}, headers={"x-neurectomy-tenant": tenant}
    )
    back.raise_for_status()
    if [base64.b64decode(d) for d in back.json()["datas"]] != list(turns):
        raise SystemExit("REST round trip failed")


def run_rest(
    sessions: Sequence[Session], code: Path | None = None, *, binary_batch: bool = True
) -> list[RestOutcome]:
    """Start a service, post the corpus each way (a fresh tenant name per way), stop it.

    Args:
        sessions: The corpus.
        code: Run the service from this checkout (its directory first on ``PYTHONPATH``, e.g. the
            previous version, for a side-by-side run); default the current code.
        binary_batch: Also post binary batch bodies (services before them answer 400).
    """
    total = sum(len(t) for s in sessions for t in s.turns)
    outcomes: list[RestOutcome] = []
    env = {"NEURECTOMY_TEAMS": '["inference", "compression"]'}
    if code is not None:
        env["PYTHONPATH"] = str(code)
    # ``python -m`` puts its working directory first on sys.path: start the service from `code`.
    with tempfile.TemporaryDirectory() as tmp, contextlib.chdir(code or Path.cwd()):
        proc, url = start_serve(Path(tmp), env=env)
        try:
            with httpx.Client(base_url=url, timeout=120) as client:
                for way in ("raw", "json", "batch", "batch-binary")[: 4 if binary_batch else 3]:
                    out = requests = 0
                    t0 = time.perf_counter()
                    made: list[tuple[str, list[str], Session]] = []
                    for s in sessions:
                        tenant = f"{way}-{s.tenant}"
                        headers = {"x-neurectomy-tenant": tenant}
                        frames: list[str] = []
                        if way == "batch":
                            body = {
                                "messages": [base64.b64encode(t).decode() for t in s.turns],
                                "stream": s.session_id,
                            }
                            r = client.post("/v1/sigma/compress/batch", json=body, headers=headers)
                            r.raise_for_status()
                            frames = [x["frame"] for x in r.json()["results"]]
                            requests += 1
                        elif way == "batch-binary":
                            r = client.post(
                                "/v1/sigma/compress/batch",
                                params={"stream": s.session_id},
                                content=b"".join(struct.pack("<I", len(t)) + t for t in s.turns),
                                headers={**headers, "content-type": "application/octet-stream"},
                            )
                            r.raise_for_status()
                            frames = [x["frame"] for x in r.json()["results"]]
                            requests += 1
                        for turn in s.turns if way in ("raw", "json") else ():
                            if way == "raw":
                                r = client.post(
                                    "/v1/sigma/compress",
                                    params={"stream": s.session_id},
                                    content=turn,
                                    headers={**headers, "content-type": "application/octet-stream"},
                                )
                                r.raise_for_status()
                                frames.append(base64.b64encode(r.content).decode())
                            else:
                                body = {"data": base64.b64encode(turn).decode(), "stream": s.session_id}
                                r = client.post("/v1/sigma/compress", json=body, headers=headers)
                                r.raise_for_status()
                                frames.append(r.json()["frame"])
                            requests += 1
                        out += sum(len(base64.b64decode(f)) for f in frames)
                        made.append((tenant, frames, s))
                    elapsed = time.perf_counter() - t0
                    for tenant, frames, s in made:
                        _check(client, tenant, frames, s.turns)
                    label = {
                        "raw": "per turn, octet-stream",
                        "json": "per turn, JSON",
                        "batch": "batch route, a session per request",
                        "batch-binary": "batch route, binary body (length-prefixed)",
                    }[way]
                    outcomes.append(RestOutcome(label, total / out, total / elapsed / 1e6, requests))
        finally:
            stop_serve(proc)
    return outcomes

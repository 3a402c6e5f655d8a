"""Through ``SigmaBridge``: a tenant's own dictionary is trained from the turns it posts, and stopped."""

from __future__ import annotations

import threading
from pathlib import Path

import anyio
import pytest

from benchmarks.sigma_corpus_coding import build_coding_sessions
from bridges.sigma import SigmaBridge
from sigmalang import DictionaryRegistry, SigmaCodec, SigmaConfig

pytestmark = pytest.mark.anyio


async def test_turns_posted_through_the_bridge_train_the_tenants_dictionary(tmp_path: Path) -> None:
    sessions = build_coding_sessions(7, tenants=2, sessions_per_tenant=4, turns=(4, 10))
    tenant = sessions[0].tenant
    turns = [(s.session_id, m) for s in sessions if s.tenant == tenant for m in s.turns]
    config = SigmaConfig(
        auto_dictionary_min_new_bytes=32 * 1024, auto_dictionary_retrain_max_new_bytes=64 * 1024
    )
    codec = SigmaCodec(config=config, dictionaries=DictionaryRegistry(tmp_path))
    before = set(threading.enumerate())
    async with SigmaBridge(codec) as bridge:
        frames = []
        for stream, message in turns:  # one request per turn, as a REST client posts them
            frames.append((await bridge.compress(message, tenant=tenant, stream=stream)).result.frame)
            assert await anyio.to_thread.run_sync(codec.wait_auto_dictionaries, 60.0)
        status = codec.auto_dictionary_status(tenant)
        assert status is not None and status.kept >= 1 and status.dict_id is not None
        assert (tmp_path / "t" / tenant.encode().hex() / f"{status.dict_id:08x}.auto.zdict").exists()
        assert codec.inspect(frames[-1], tenant=tenant).dict_id == status.dict_id
        for frame, (_, message) in zip(frames, turns, strict=True):
            assert await bridge.decompress(frame, tenant=tenant) == message
    started = [t for t in threading.enumerate() if t not in before and t.name == "sigma-autotrain"]
    assert not started, "aclose stops the codec's training thread"

"""Event streams hold no database connection while they wait: 200 streams open on one API
(real uvicorn, SQLite and PostgreSQL) while other requests still answer, and every stream
still sees the job's next event and its end."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from server.api import feeds
from server.config import Settings
from server.main import create_app
from server.queue import RecordingQueue
from tests.processes import free_port, port_open, wait_until
from tests.server.conftest import PAIRS, dpo_spec, jsonl

STREAMS = 200


@pytest.fixture
def live_api(settings: Settings) -> Iterator[str]:
    """The app served by uvicorn on a free port, in a thread of this process. The pool is
    the default's size: streams must not need one connection each."""
    app: FastAPI = create_app(settings, RecordingQueue())
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: port_open(port), 20, "uvicorn")
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(20)


async def _follow(client: httpx.AsyncClient, job: str, opened: asyncio.Event) -> list[str]:
    """The event kinds one stream receives, until `end`."""
    kinds: list[str] = []
    async with client.stream("GET", f"/v1/jobs/{job}/events/stream") as response:
        assert response.status_code == 200
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                kinds.append(line.removeprefix("event: "))
                opened.set()
                if kinds[-1] == "end":
                    return kinds
    return kinds


async def _scenario(url: str, key: str, job: str) -> tuple[list[list[str]], list[int]]:
    headers = {"Authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=STREAMS + 20, max_keepalive_connections=STREAMS + 20)
    timeout = httpx.Timeout(60.0)
    async with httpx.AsyncClient(
        base_url=url, headers=headers, limits=limits, timeout=timeout
    ) as client:
        opened = [asyncio.Event() for _ in range(STREAMS)]
        streams = [asyncio.create_task(_follow(client, job, e)) for e in opened]
        # Every stream has sent its first event: all 200 are open at once.
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in opened)), 120)
        statuses = []
        for _ in range(10):  # other requests answer while the streams stay open
            statuses.append((await client.get("/v1/jobs", timeout=15)).status_code)
            statuses.append((await client.get(f"/v1/jobs/{job}", timeout=15)).status_code)
        cancel = await client.post(f"/v1/jobs/{job}/cancel", timeout=15)
        statuses.append(cancel.status_code)
        return await asyncio.wait_for(asyncio.gather(*streams), 120), statuses


@pytest.mark.slow
def test_two_hundred_streams_hold_no_connection(live_api: str, keys: dict[str, str]):
    headers = {"Authorization": f"Bearer {keys['alice']}"}
    with httpx.Client(base_url=live_api, headers=headers, timeout=30) as client:
        dataset = client.post("/v1/datasets", files={"file": ("p.jsonl", jsonl(PAIRS))})
        job = client.post("/v1/jobs", json=dpo_spec(dataset.json()["id"])).json()["id"]
    kinds, statuses = asyncio.run(_scenario(live_api, keys["alice"], job))
    assert statuses == [200] * 21
    # Each stream saw the job's creation, its cancellation (written while all were open),
    # and the end of the stream.
    assert all(k == ["created", "cancelled", "end"] for k in kinds), kinds[:3]


@pytest.mark.slow
def test_streams_of_one_job_share_one_poller(
    live_api: str, keys: dict[str, str], monkeypatch: pytest.MonkeyPatch
):
    reads: list[str] = []
    real = feeds.read_events

    def counted(url: str, job_id: str, after: int | None):
        reads.append(job_id)
        return real(url, job_id, after)

    monkeypatch.setattr(feeds, "read_events", counted)  # the feed's polls, not catch-ups
    headers = {"Authorization": f"Bearer {keys['alice']}"}
    with httpx.Client(base_url=live_api, headers=headers, timeout=30) as client:
        dataset = client.post("/v1/datasets", files={"file": ("p.jsonl", jsonl(PAIRS))})
        job = client.post("/v1/jobs", json=dpo_spec(dataset.json()["id"])).json()["id"]

    async def scenario() -> tuple[list[list[str]], int]:
        limits = httpx.Limits(max_connections=40)
        async with httpx.AsyncClient(
            base_url=live_api, headers=headers, limits=limits, timeout=30
        ) as http:
            opened = [asyncio.Event() for _ in range(30)]
            streams = [asyncio.create_task(_follow(http, job, e)) for e in opened]
            await asyncio.wait_for(asyncio.gather(*(e.wait() for e in opened)), 60)
            before = len(reads)
            await asyncio.sleep(4)
            quiet = len(reads) - before
            await http.post(f"/v1/jobs/{job}/cancel")
            return await asyncio.wait_for(asyncio.gather(*streams), 60), quiet

    kinds, quiet = asyncio.run(scenario())
    assert all(k == ["created", "cancelled", "end"] for k in kinds), kinds[:3]
    # One poller for all 30 (every 0.5-2 s), where each stream polling alone made 30x more.
    assert 1 <= quiet <= 8, quiet

"""GroClient's polls: a GET answered before sends its ETag back and reuses the kept body on 304."""

from __future__ import annotations

from pathlib import Path

import httpx
from fastapi.testclient import TestClient

from client.http import KEPT_BODIES, GroClient
from tests.server.conftest import PAIRS, jsonl


def recorded(client: TestClient) -> list[tuple[str | None, int]]:
    """(If-None-Match sent, status answered) of each request the client sends from now on."""
    seen: list[tuple[str | None, int]] = []

    def hook(response: httpx.Response) -> None:
        seen.append((response.request.headers.get("If-None-Match"), response.status_code))

    client.event_hooks["response"].append(hook)
    return seen


def test_polls_send_the_etag_and_reuse_the_body_on_304(
    client: TestClient, keys: dict[str, str], tmp_path: Path
):
    gro = GroClient(key=keys["alice"], http=client)
    (tmp_path / "pairs.jsonl").write_bytes(jsonl(PAIRS))
    dataset = gro.upload_dataset(tmp_path / "pairs.jsonl")["id"]
    spec = {"model": "builtin:tiny-llama", "method": "dpo", "data": {"train": dataset}}
    first = gro.submit({**spec, "train": {"steps": 3}})
    seen = recorded(client)
    listed = gro.jobs()
    assert seen[-1] == (None, 200) and [j["id"] for j in listed] == [first["id"]]
    listed.clear()  # the caller's copy: the kept body is untouched
    again = gro.jobs()
    assert seen[-1][0] is not None and seen[-1][1] == 304
    assert [j["id"] for j in again] == [first["id"]]
    second = gro.submit({**spec, "train": {"steps": 4}})
    assert [j["id"] for j in gro.jobs()] == [second["id"], first["id"]]
    assert seen[-1][1] == 200  # the tag it sent no longer matched
    assert gro.jobs(limit=1)[0]["id"] == second["id"]  # another URL: its own body
    assert seen[-1] == (None, 200)


def test_kept_bodies_are_bounded(client: TestClient, keys: dict[str, str]):
    gro = GroClient(key=keys["alice"], http=client)
    for n in range(KEPT_BODIES + 10):
        gro.jobs(name=f"run-{n}")
    assert len(gro._kept) == KEPT_BODIES

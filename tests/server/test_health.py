"""Health, readiness and Prometheus metrics."""

from __future__ import annotations

import pytest

from tests.server.conftest import PAIRS, Api, dpo_spec


def test_healthz_and_readyz(client, monkeypatch: pytest.MonkeyPatch):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {
        "status": "ready",
        "checks": {"database": True, "broker": True},
    }
    monkeypatch.setattr(client.app.state.queue, "reachable", False)
    response = client.get("/readyz")
    assert response.status_code == 503 and response.json()["checks"]["broker"] is False


def test_prometheus_metrics_need_an_admin(alice: Api, admin: Api):
    dataset = alice.dataset(PAIRS)
    for _ in range(2):
        alice.job(dpo_spec(dataset))
    assert alice.get("/metrics").status_code == 403
    text = admin.get("/metrics").text
    assert 'gro_jobs{status="queued"} 2.0' in text
    assert 'gro_queue_depth{queue="train"} 2.0' in text
    assert (
        'gro_http_request_duration_seconds_count{method="POST",route="/v1/jobs",status="201"} 2.0'
        in text
    )

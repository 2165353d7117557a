"""Prometheus metrics of one app: a registry of its own (several apps in one test process
must not share counters), request latency recorded by a middleware."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, Histogram
from prometheus_client.exposition import generate_latest
from starlette.requests import Request
from starlette.responses import Response


class Telemetry:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.latency = Histogram(
            "gro_http_request_duration_seconds",
            "API request latency",
            ["method", "route", "status"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.jobs = Gauge("gro_jobs", "Jobs by status", ["status"], registry=self.registry)
        self.queue_depth = Gauge(
            "gro_queue_depth", "Messages waiting per queue", ["queue"], registry=self.registry
        )
        self.broker_up = Gauge(
            "gro_broker_up", "1 when the broker answered", registry=self.registry
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)

    async def middleware(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        # The route's template (/v1/jobs/{job_id}), not the raw path: bounded label values.
        route = getattr(request.scope.get("route"), "path", "unmatched")
        self.latency.labels(request.method, route, str(response.status_code)).observe(
            time.perf_counter() - started
        )
        return response

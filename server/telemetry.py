"""Prometheus metrics of one app: a registry of its own (several apps in one test process
must not share counters), request latency recorded by a middleware."""

from __future__ import annotations

import time

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, Histogram
from prometheus_client.exposition import generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send


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


class LatencyMiddleware:
    """Records each request's latency by method, route template and status (pure ASGI: no
    task per request, and the request body passes through untouched)."""

    def __init__(self, app: ASGIApp, telemetry: Telemetry) -> None:
        self.app, self.telemetry = app, telemetry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def recording(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording)
        finally:
            # The route's template (/v1/jobs/{job_id}), not the raw path: bounded labels.
            route = getattr(scope.get("route"), "path", "unmatched")
            self.telemetry.latency.labels(scope["method"], route, str(status)).observe(
                time.perf_counter() - started
            )

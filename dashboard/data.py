"""All of the dashboard's access to the gro API: HTTP only, cached with `st.cache_data`.

Every cached reader takes the connection (`Conn`: URL and key) as its first argument, so two
users (or two keys) never share cached answers. What cannot change is cached without expiry
(a finished job's metrics, a step's samples); what can change carries a `version` argument
(a running job's step) or a short TTL, so live pages see new data without refetching the rest.

Errors leave this module as `client.http.ApiError` (the API's answer: status, code, field,
line, details) or `UnreachableError` (no answer at all).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import streamlit as st
from streamlit.runtime.scriptrunner import add_script_run_ctx, get_script_run_ctx

from client.http import ApiError, GroClient, read_config

__all__ = ["ApiError", "Conn", "UnreachableError"]

T = TypeVar("T")
R = TypeVar("R")

TIMEOUT_S = 15.0
PARALLEL = 8
"""Requests in flight at once when a page needs many (one per run or per step)."""
COMPARE_POINTS = 400
"""Points per series on the Compare page: a chart is ~600 px wide, and the API keeps each
bucket's extremes, so spikes survive."""
DETAIL_POINTS = 600
"""Points per series on the Job detail page (one run per chart: room for more)."""
LIST_TTL_S = 2.0
"""Lists that change as jobs run: long enough to serve one rerun's repeated reads."""
REGISTRY_TTL_S = 300.0
"""The methods and built-in tasks change only when the API is upgraded."""


class UnreachableError(RuntimeError):
    """The API did not answer (refused, timed out, DNS)."""


@dataclass(frozen=True)
class Conn:
    url: str
    key: str


def conn_from_env() -> Conn | None:
    """GRO_API_URL and GRO_API_KEY, else what `gro login` stored; None without a key."""
    config = read_config()
    return Conn(config["url"].rstrip("/"), config["key"]) if config["key"] else None


@st.cache_resource(show_spinner=False)
def _client(conn: Conn) -> GroClient:
    # One pooled HTTP client per connection, shared by reruns and worker threads (httpx
    # clients are thread-safe), so parallel requests reuse keep-alive connections.
    limits = httpx.Limits(max_connections=PARALLEL * 2, max_keepalive_connections=PARALLEL * 2)
    http = httpx.Client(base_url=conn.url, timeout=TIMEOUT_S, limits=limits)
    return GroClient(conn.url, conn.key, http=http)


def request(conn: Conn, method: str, path: str, **kwargs: Any) -> Any:
    """One API call; ApiError for an error answer, UnreachableError for no answer."""
    try:
        return _client(conn).request(method, path, **kwargs)
    except httpx.TransportError as exc:
        raise UnreachableError(f"{conn.url}: {exc}") from exc


def parallel(fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """`fn` over `items` on a few threads, in order. Each thread gets the script's context,
    so cached readers called from it share the page's cache and log no context warnings."""
    items = list(items)
    if len(items) <= 1:
        return [fn(item) for item in items]
    ctx = get_script_run_ctx()

    def run(item: T) -> R:
        if ctx is not None:
            add_script_run_ctx(ctx=ctx)
        return fn(item)

    with ThreadPoolExecutor(min(PARALLEL, len(items))) as pool:
        return list(pool.map(run, items))


# --- connection ----------------------------------------------------------------------------


def check(conn: Conn) -> None:
    """Raise UnreachableError or ApiError (401) unless the API answers and accepts the key."""
    request(conn, "GET", "/v1/jobs", params={"limit": 1})


# --- methods and tasks ---------------------------------------------------------------------


@st.cache_data(ttl=REGISTRY_TTL_S, show_spinner=False)
def methods(conn: Conn) -> list[dict[str, Any]]:
    """The method registry, in its order: each method's kinds, whether it runs online, and
    its arguments (name, type, default, doc)."""
    return request(conn, "GET", "/v1/methods")["data"]


@st.cache_data(ttl=REGISTRY_TTL_S, show_spinner=False)
def tasks(conn: Conn) -> list[dict[str, Any]]:
    """The built-in tasks (`builtin:<name>`) with the dataset kind of their rows."""
    return request(conn, "GET", "/v1/tasks")["data"]


# --- jobs ----------------------------------------------------------------------------------


@st.cache_data(ttl=LIST_TTL_S, show_spinner=False)
def jobs(
    conn: Conn,
    status: str | None = None,
    method: str | None = None,
    name: str | None = None,
    comparison_id: str | None = None,
    limit: int = 200,
) -> list[dict[str, Any]]:
    """Newest first, following cursor pages up to `limit` jobs."""
    params = {"status": status, "method": method, "name": name, "comparison_id": comparison_id}
    params = {k: v for k, v in params.items() if v}
    out: list[dict[str, Any]] = []
    after = None
    while len(out) < limit:
        page_params = {**params, "limit": min(100, limit - len(out))}
        if after:
            page_params["after"] = after
        page = request(conn, "GET", "/v1/jobs", params=page_params)
        out += page["data"]
        if not page["has_more"]:
            break
        after = page["last_id"]
    return out


@st.cache_data(ttl=LIST_TTL_S, show_spinner=False)
def job(conn: Conn, job_id: str) -> dict[str, Any]:
    return request(conn, "GET", f"/v1/jobs/{job_id}")


def version(job: dict[str, Any]) -> str:
    """Changes whenever the job's outputs may have: a cache key for its metrics and lists."""
    return f"{job['status']}:{job['progress']['step']}:{job.get('attempts', 0)}"


def cancel(conn: Conn, job_id: str) -> dict[str, Any]:
    out = request(conn, "POST", f"/v1/jobs/{job_id}/cancel")
    forget_lists()
    return out


def resume(conn: Conn, job_id: str) -> dict[str, Any]:
    out = request(conn, "POST", f"/v1/jobs/{job_id}/resume")
    forget_lists()
    return out


def submit(conn: Conn, spec: dict[str, Any]) -> dict[str, Any]:
    out = request(conn, "POST", "/v1/jobs", json=spec)
    forget_lists()
    return out


def forget_lists() -> None:
    """After a change the user made: the next read shows it, not a cached list."""
    for reader in (jobs, job, comparisons, comparison, datasets):
        reader.clear()


@st.cache_data(show_spinner=False, max_entries=2000)
def metrics(
    conn: Conn, job_id: str, names: tuple[str, ...], max_points: int, version: str
) -> dict[str, Any]:
    """`names`' series (all of the job's when empty), downsampled by the API to `max_points`
    keeping bucket extremes. `version` (see `version()`) refreshes a running job's series."""
    params: dict[str, Any] = {"max_points": max_points}
    if names:
        params["names"] = ",".join(names)
    return request(conn, "GET", f"/v1/jobs/{job_id}/metrics", params=params)


@st.cache_data(show_spinner=False, max_entries=2000)
def metric_names(conn: Conn, job_id: str, version: str) -> list[str]:
    # A name no job has: the answer carries every name and no series.
    return metrics(conn, job_id, ("~",), 2, version)["names"]


@st.cache_data(show_spinner=False, max_entries=5000)
def samples(conn: Conn, job_id: str, step: int, limit: int = 1000) -> list[dict[str, Any]]:
    """One step's samples; a step, once written, never changes."""
    params = {"step": step, "limit": limit}
    return request(conn, "GET", f"/v1/jobs/{job_id}/samples", params=params)["data"]


@st.cache_data(show_spinner=False, max_entries=2000)
def sample_steps(conn: Conn, job_id: str, version: str) -> list[int]:
    return request(conn, "GET", f"/v1/jobs/{job_id}/samples", params={"limit": 1})["steps"]


@st.cache_data(show_spinner=False, max_entries=500)
def events(conn: Conn, job_id: str, version: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    after = None
    while True:
        params: dict[str, Any] = {"limit": 1000, **({"after": after} if after else {})}
        page = request(conn, "GET", f"/v1/jobs/{job_id}/events", params=params)
        out += page["data"]
        if not page["has_more"]:
            return out
        after = page["last_id"]


@st.cache_data(ttl=600, show_spinner=False, max_entries=500)
def checkpoints(conn: Conn, job_id: str, version: str) -> list[dict[str, Any]]:
    # TTL under the signed links' lifetime (an hour): a shown link is never an expired one.
    rows = request(conn, "GET", f"/v1/jobs/{job_id}/checkpoints")["data"]
    return [{**r, "download_url": public_link(conn, r["download_url"])} for r in rows]


def public_link(conn: Conn, url: str) -> str:
    """`url` as the user's browser can reach it. The API signs links for the address the
    dashboard called (http://api:8000 inside docker compose); GRO_PUBLIC_API_URL, when set,
    is the address browsers use instead."""
    public = os.environ.get("GRO_PUBLIC_API_URL", "").rstrip("/")
    return public + url[len(conn.url) :] if public and url.startswith(conn.url) else url


# --- comparisons ---------------------------------------------------------------------------


@st.cache_data(ttl=LIST_TTL_S, show_spinner=False)
def comparisons(conn: Conn) -> list[dict[str, Any]]:
    return request(conn, "GET", "/v1/comparisons", params={"limit": 100})["data"]


@st.cache_data(ttl=LIST_TTL_S, show_spinner=False)
def comparison(conn: Conn, comparison_id: str) -> dict[str, Any]:
    return request(conn, "GET", f"/v1/comparisons/{comparison_id}")


@st.cache_data(ttl=LIST_TTL_S, show_spinner=False)
def frontier(
    conn: Conn, comparison_id: str, at_kl: str | None, baseline: str | None
) -> dict[str, Any]:
    """The comparison read at matched KL (GET /v1/comparisons/{id}/frontier)."""
    params = {k: v for k, v in {"at_kl": at_kl, "baseline": baseline}.items() if v}
    return request(conn, "GET", f"/v1/comparisons/{comparison_id}/frontier", params=params)


# --- datasets ------------------------------------------------------------------------------


@st.cache_data(ttl=LIST_TTL_S, show_spinner=False)
def datasets(conn: Conn) -> list[dict[str, Any]]:
    return request(conn, "GET", "/v1/datasets", params={"limit": 100})["data"]


@st.cache_data(show_spinner=False, max_entries=200)
def dataset_rows(conn: Conn, dataset_id: str, offset: int, limit: int) -> dict[str, Any]:
    """Rows of a stored dataset (files never change once uploaded)."""
    params = {"offset": offset, "limit": limit}
    return request(conn, "GET", f"/v1/datasets/{dataset_id}/rows", params=params)


def validate(conn: Conn, filename: str, content: bytes) -> dict[str, Any]:
    return request(conn, "POST", "/v1/datasets/validate", files={"file": (filename, content)})


def upload(conn: Conn, filename: str, content: bytes) -> dict[str, Any]:
    out = request(conn, "POST", "/v1/datasets", files={"file": (filename, content)})
    forget_lists()
    return out


# --- work started from the dashboard: comparisons, evaluations, generations ----------------

FINISHED = ("succeeded", "cancelled", "failed", "paused")
"""Job states whose checkpoints stay as they are: the ones offered to evaluate or prompt."""


def start_comparison(conn: Conn, body: dict[str, Any]) -> dict[str, Any]:
    out = request(conn, "POST", "/v1/comparisons", json=body)
    forget_lists()
    return out


def start_evaluation(conn: Conn, body: dict[str, Any]) -> dict[str, Any]:
    return request(conn, "POST", "/v1/evaluations", json=body)


def evaluation(conn: Conn, evaluation_id: str) -> dict[str, Any]:
    """Not cached: the page polls it until it finishes."""
    return request(conn, "GET", f"/v1/evaluations/{evaluation_id}")


def start_generation(conn: Conn, body: dict[str, Any]) -> dict[str, Any]:
    return request(conn, "POST", "/v1/generations", json=body)


def generation(conn: Conn, generation_id: str) -> dict[str, Any]:
    """Not cached: the playground polls it until its completions are written."""
    return request(conn, "GET", f"/v1/generations/{generation_id}")


def checkpoint_choices(conn: Conn, limit: int = 50) -> dict[str, str]:
    """id -> label of the checkpoints of the newest `limit` finished jobs, newest job first
    (its latest checkpoint first)."""
    finished = [j for j in jobs(conn, limit=200) if j["status"] in FINISHED][:limit]
    lists = parallel(lambda j: checkpoints(conn, j["id"], version(j)), finished)
    choices: dict[str, str] = {}
    for job, rows in zip(finished, lists, strict=True):
        name = job.get("name") or job["id"]
        for row in sorted(rows, key=lambda r: -r["step"]):
            choices[row["id"]] = f"{name} · {job['method']} · step {row['step']} · {row['id']}"
    return choices

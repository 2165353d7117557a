"""A small HTTP client of the gro API, used by the `gro` CLI verbs (and usable in notebooks).

    client = GroClient.from_config()          # GRO_API_URL / GRO_API_KEY, or ~/.config/gro/config
    job = client.submit(spec_dict)
    for event in client.follow(job["id"]): print(event["message"])

It speaks HTTP only: nothing here imports the server's code.
"""

from __future__ import annotations

import json
import os
import threading
import tomllib
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

DEFAULT_URL = "http://127.0.0.1:8000"
KEPT_BODIES = 256
"""GET answers kept with their ETag, newest used last; a poll of one of them that the server
answers 304 costs it no body to encode and the client none to parse."""


def config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "gro" / "config"


def read_config() -> dict[str, str]:
    """`url` and `key` from ~/.config/gro/config (TOML), overridden by GRO_API_URL/GRO_API_KEY."""
    path = config_path()
    stored = tomllib.loads(path.read_text()) if path.is_file() else {}
    return {
        "url": os.environ.get("GRO_API_URL") or stored.get("url") or DEFAULT_URL,
        "key": os.environ.get("GRO_API_KEY") or stored.get("key") or "",
    }


def write_config(url: str, key: str) -> Path:
    """Store the URL and key for later commands, readable by the user only."""
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(f"url = {json.dumps(url)}\nkey = {json.dumps(key)}\n")
    return path


class ApiError(RuntimeError):
    """An error answer of the API; `status`, and the body's code / field / line."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        error = body.get("error", {}) if isinstance(body, dict) else {}
        self.status = status
        self.code = error.get("code", f"http_{status}")
        self.field, self.line = error.get("field"), error.get("line")
        self.details = error.get("details", [])
        super().__init__(error.get("message") or f"HTTP {status}")


class GroClient:
    def __init__(
        self,
        url: str = DEFAULT_URL,
        key: str = "",
        timeout: float = 30.0,
        http: httpx.Client | None = None,
    ) -> None:
        """`http`: an httpx client to send through instead (tests pass an app's TestClient)."""
        self.url = url.rstrip("/")
        self.auth = {"Authorization": f"Bearer {key}"} if key else {}
        self.http = http or httpx.Client(base_url=self.url, timeout=timeout)
        # the bytes, not the parsed body: each caller gets its own copy to change
        self._kept: OrderedDict[str, tuple[str, bytes]] = OrderedDict()
        self._lock = threading.Lock()  # the dashboard shares one client between threads

    @classmethod
    def from_config(cls) -> GroClient:
        config = read_config()
        return cls(config["url"], config["key"])

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        if method == "GET":
            return self._get(path, **kwargs)
        return self._answer(self.http.request(method, path, headers=self.auth, **kwargs))

    def _get(self, path: str, **kwargs: Any) -> Any:
        """A GET that sends back the ETag of the body kept for the same URL, if any."""
        key = str(self.http.build_request("GET", path, params=kwargs.get("params")).url)
        with self._lock:
            kept = self._kept.get(key)
        headers = {**self.auth, "If-None-Match": kept[0]} if kept else self.auth
        response = self.http.request("GET", path, headers=headers, **kwargs)
        if response.status_code == 304 and kept:
            with self._lock:
                self._kept.move_to_end(key)
            return json.loads(kept[1])
        body = self._answer(response)
        if tag := response.headers.get("ETag"):
            with self._lock:
                self._kept[key] = (tag, response.content)
                self._kept.move_to_end(key)
                while len(self._kept) > KEPT_BODIES:
                    self._kept.popitem(last=False)
        return body

    @staticmethod
    def _answer(response: httpx.Response) -> Any:
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = {"error": {"message": response.text[:500]}}
            raise ApiError(response.status_code, body)
        return response.json()

    # --- resources -------------------------------------------------------------------------

    def upload_dataset(self, path: str | Path) -> dict[str, Any]:
        path = Path(path)
        with path.open("rb") as handle:
            return self.request("POST", "/v1/datasets", files={"file": (path.name, handle)})

    def submit(self, spec: dict[str, Any]) -> dict[str, Any]:
        return self.request("POST", "/v1/jobs", json=spec)

    def job(self, job_id: str) -> dict[str, Any]:
        return self.request("GET", f"/v1/jobs/{job_id}")

    def jobs(self, **filters: Any) -> list[dict[str, Any]]:
        """One page of jobs (newest first); filters: status, method, name, comparison_id,
        limit, after."""
        params = {k: v for k, v in filters.items() if v is not None}
        return self.request("GET", "/v1/jobs", params=params)["data"]

    def cancel(self, job_id: str) -> dict[str, Any]:
        return self.request("POST", f"/v1/jobs/{job_id}/cancel")

    def pause(self, job_id: str) -> dict[str, Any]:
        return self.request("POST", f"/v1/jobs/{job_id}/pause")

    def resume(self, job_id: str) -> dict[str, Any]:
        return self.request("POST", f"/v1/jobs/{job_id}/resume")

    def events(self, job_id: str, after: int | None = None) -> list[dict[str, Any]]:
        params = {"after": after} if after is not None else {}
        return self.request("GET", f"/v1/jobs/{job_id}/events", params=params)["data"]

    def compare(self, request: dict[str, Any]) -> dict[str, Any]:
        return self.request("POST", "/v1/comparisons", json=request)

    def comparison(self, comparison_id: str) -> dict[str, Any]:
        return self.request("GET", f"/v1/comparisons/{comparison_id}")

    def evaluate(self, request: dict[str, Any]) -> dict[str, Any]:
        return self.request("POST", "/v1/evaluations", json=request)

    def evaluation(self, evaluation_id: str) -> dict[str, Any]:
        return self.request("GET", f"/v1/evaluations/{evaluation_id}")

    def metrics(
        self, job_id: str, names: list[str] | None = None, max_points: int = 1000
    ) -> dict[str, Any]:
        params: dict[str, Any] = {"max_points": max_points}
        if names:
            params["names"] = ",".join(names)
        return self.request("GET", f"/v1/jobs/{job_id}/metrics", params=params)

    def follow(self, job_id: str, after: int | None = None) -> Iterator[dict[str, Any]]:
        """The job's events as they happen (server-sent events) until it finishes."""
        params = {"after": after} if after is not None else {}
        path = f"/v1/jobs/{job_id}/events/stream"
        stream = self.http.stream("GET", path, params=params, headers=self.auth, timeout=None)
        with stream as response:
            if response.status_code >= 400:
                response.read()
                raise ApiError(response.status_code, response.json())
            kind = None
            for line in response.iter_lines():
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: ") and kind != "end":
                    yield json.loads(line[6:])
                elif line.startswith("data: "):
                    return

"""The demo `gro up` starts on first launch (examples/service/demo.yaml): an SFT warm-up job and a
comparison that starts from it, submitted through the API like any user's. A file in the data
folder remembers what was submitted, so a second `gro up` does not submit it again."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import yaml

from client.http import ApiError, GroClient
from stack.guard import say

DEMO_SPEC = Path(__file__).resolve().parents[1] / "examples" / "service" / "demo.yaml"


def submit_demo(client: GroClient, document: dict[str, Any]) -> dict[str, str]:
    """Submit the warm-up, then the comparison from it; their ids."""
    warmup = client.submit(document["warmup"])
    comparison = dict(document["comparison"])
    comparison["base"] = {**comparison["base"], "model": warmup["id"]}
    created = client.compare(comparison)
    return {"warmup": warmup["id"], "comparison": created["id"]}


class Demo:
    """Submits the demo once (in a thread: `gro up` keeps supervising meanwhile)."""

    def __init__(self, api_url: str, key: str, marker: Path) -> None:
        self.client = GroClient(api_url, key)
        self.marker = marker
        self.thread = threading.Thread(target=self._run, daemon=True, name="demo")

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.thread.join(timeout=5)

    def _run(self) -> None:
        if self.marker.is_file():
            ids = json.loads(self.marker.read_text())
            say(f"demo: already submitted (comparison {ids['comparison']})")
            return
        try:
            ids = submit_demo(self.client, yaml.safe_load(DEMO_SPEC.read_text()))
        except (ApiError, OSError) as exc:
            say(f"demo: could not submit ({exc})")
            return
        self.marker.write_text(json.dumps(ids))
        say(
            f"demo: SFT warm-up {ids['warmup']}, then comparison {ids['comparison']} "
            "(gro, grpo, rloo, dpo x 2 seeds): watch it on the dashboard"
        )

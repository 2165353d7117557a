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
from gro_core.tasks import reverse_copy_demonstrations
from stack.guard import say

DEMO_SPEC = Path(__file__).resolve().parents[1] / "examples" / "service" / "demo.yaml"


def upload_demonstrations(client: GroClient, options: dict[str, Any], folder: Path) -> str:
    """Upload the sloppy reversal demonstrations the warm-up imitates (see demo.yaml); the
    dataset's id."""
    path = folder / "demo-demonstrations.jsonl"
    rows = reverse_copy_demonstrations(
        options["rows"], seed=options.get("seed", 0), reversed_share=options["reversed_share"]
    )
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps({"prompt": row["prompt"], "completion": row["completion"]}) + "\n")
    return client.upload_dataset(path)["id"]


def submit_demo(client: GroClient, document: dict[str, Any], folder: Path) -> dict[str, str]:
    """Upload the demonstrations, submit the warm-up on them, then the comparison from it;
    their ids. `folder` holds the demonstrations file while it uploads."""
    warmup_spec = dict(document["warmup"])
    dataset = upload_demonstrations(client, document["demonstrations"], folder)
    warmup_spec["data"] = {**warmup_spec["data"], "train": dataset}
    warmup = client.submit(warmup_spec)
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
            document = yaml.safe_load(DEMO_SPEC.read_text())
            ids = submit_demo(self.client, document, self.marker.parent)
        except (ApiError, OSError) as exc:
            say(f"demo: could not submit ({exc})")
            return
        self.marker.write_text(json.dumps(ids))
        say(
            f"demo: SFT warm-up {ids['warmup']}, then comparison {ids['comparison']} "
            "(gro, grpo, rloo, dpo x 2 seeds): watch it on the dashboard"
        )

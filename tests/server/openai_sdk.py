"""The official `openai` SDK as a test client: pointed at the app in process (its HTTP client
is the app's TestClient), with no retries so an error surfaces at once."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from openai import OpenAI


def sdk(client: TestClient, key: str) -> OpenAI:
    return OpenAI(base_url="http://testserver/v1", api_key=key, http_client=client, max_retries=0)


def jsonl_file(rows: list[dict], name: str = "train.jsonl") -> tuple[str, bytes]:
    return name, "".join(json.dumps(r) + "\n" for r in rows).encode()


def dpo_rows(n: int = 8) -> list[dict]:
    """OpenAI's DPO format: `input.messages`, `preferred_output`, `non_preferred_output`."""
    return [
        {
            "input": {"messages": [{"role": "user", "content": f"say something nice {i}"}]},
            "preferred_output": [{"role": "assistant", "content": "good"}],
            "non_preferred_output": [{"role": "assistant", "content": "bad"}],
        }
        for i in range(n)
    ]


def rft_rows(n: int = 8) -> list[dict]:
    """OpenAI's reinforcement format: `messages` ending with the user, and grader fields."""
    return [
        {"messages": [{"role": "user", "content": f"{i}+{i}="}], "answer": str(2 * i)}
        for i in range(n)
    ]


STRING_CHECK = {
    "type": "string_check",
    "name": "answer",
    "input": "{{sample.output_text}}",
    "reference": "{{item.answer}}",
    "operation": "eq",
}

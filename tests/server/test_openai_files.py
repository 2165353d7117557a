"""/v1/files through the official openai SDK: uploads become datasets, read back as files."""

from __future__ import annotations

import openai
import pytest
from fastapi.testclient import TestClient
from openai.types import FileObject

from tests.server.conftest import PAIRS, Api
from tests.server.openai_sdk import dpo_rows, jsonl_file, rft_rows, sdk


@pytest.fixture
def alice_sdk(client: TestClient, keys: dict[str, str]) -> openai.OpenAI:
    return sdk(client, keys["alice"])


def test_an_openai_dpo_file_is_a_preference_dataset(alice_sdk: openai.OpenAI, alice: Api):
    created = alice_sdk.files.create(file=jsonl_file(dpo_rows(3)), purpose="fine-tune")
    assert isinstance(created, FileObject)
    assert (created.object, created.purpose, created.status) == ("file", "fine-tune", "processed")
    assert isinstance(created.created_at, int) and created.filename == "train.jsonl"
    dataset = alice.get(f"/v1/datasets/{created.id}").json()
    assert (dataset["kind"], dataset["rows"], dataset["bytes"]) == ("preference", 3, created.bytes)
    assert alice_sdk.files.retrieve(created.id) == created


def test_reinforcement_rows_are_prompts_with_their_grader_fields(
    alice_sdk: openai.OpenAI, alice: Api
):
    created = alice_sdk.files.create(file=jsonl_file(rft_rows(4)), purpose="fine-tune")
    dataset = alice.get(f"/v1/datasets/{created.id}").json()
    assert dataset["kind"] == "prompt"
    assert "answer" in dataset["stats"]["extra_fields"]


def test_content_is_the_uploaded_bytes(alice_sdk: openai.OpenAI):
    name, body = jsonl_file(dpo_rows(2))
    created = alice_sdk.files.create(file=(name, body), purpose="fine-tune")
    assert alice_sdk.files.content(created.id).read() == body


def test_list_pages_newest_first_and_auto_paginates(alice_sdk: openai.OpenAI, alice: Api):
    ids = [alice_sdk.files.create(file=jsonl_file(dpo_rows(1)), purpose="fine-tune").id]
    ids += [alice.dataset(PAIRS) for _ in range(2)]  # gro's own uploads are files too
    first = alice_sdk.files.list(limit=2)
    assert [f.id for f in first.data] == ids[::-1][:2] and first.has_more
    assert [f.id for f in alice_sdk.files.list(limit=2)] == ids[::-1]  # every page, in turn
    assert [f.id for f in alice_sdk.files.list(limit=1, order="asc")] == ids
    assert list(alice_sdk.files.list(purpose="batch")) == []


def test_delete_then_retrieve_is_not_found(alice_sdk: openai.OpenAI):
    created = alice_sdk.files.create(file=jsonl_file(dpo_rows(1)), purpose="fine-tune")
    deleted = alice_sdk.files.delete(created.id)
    assert (deleted.id, deleted.deleted, deleted.object) == (created.id, True, "file")
    with pytest.raises(openai.NotFoundError):
        alice_sdk.files.retrieve(created.id)


def test_a_bad_row_is_a_bad_request_naming_line_and_field(alice_sdk: openai.OpenAI):
    rows = dpo_rows(2)
    rows[1]["preferred_output"] = [{"role": "user", "content": "not the model's turn"}]
    with pytest.raises(openai.BadRequestError) as info:
        alice_sdk.files.create(file=jsonl_file(rows), purpose="fine-tune")
    assert info.value.param == "preferred_output"
    assert info.value.body["line"] == 2 and "must start with 'assistant'" in info.value.message


def test_a_missing_dpo_field_is_named(alice_sdk: openai.OpenAI):
    rows = dpo_rows(1)
    del rows[0]["non_preferred_output"]
    with pytest.raises(openai.BadRequestError) as info:
        alice_sdk.files.create(file=jsonl_file(rows), purpose="fine-tune")
    assert (info.value.param, info.value.code) == ("non_preferred_output", "missing_field")


def test_other_purposes_are_refused(alice_sdk: openai.OpenAI):
    with pytest.raises(openai.BadRequestError) as info:
        alice_sdk.files.create(file=jsonl_file(dpo_rows(1)), purpose="batch")
    assert info.value.param == "purpose"


def test_a_wrong_key_is_an_authentication_error(client: TestClient, keys: dict[str, str]):
    with pytest.raises(openai.AuthenticationError):
        sdk(client, "gro-not-a-key").files.list()


def test_another_owners_file_is_not_found(client: TestClient, keys: dict[str, str]):
    created = sdk(client, keys["alice"]).files.create(
        file=jsonl_file(dpo_rows(1)), purpose="fine-tune"
    )
    with pytest.raises(openai.NotFoundError):
        sdk(client, keys["bob"]).files.retrieve(created.id)

"""The Datasets and New job pages against the seeded API: listing, preview, validation
reports, uploads, and a job form whose refusals appear under the field the API names."""

from __future__ import annotations

import json

from tests.dashboard.conftest import no_exception, opener, texts
from tests.dashboard.stack import PAIRS


def jsonl(rows: list[dict]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


BAD = jsonl([{"prompt": "a", "chosen": "b"}, {"prompt": "c", "chosen": "d", "rejected": "e"}])
GOOD = jsonl([{"prompt": f"q{i}", "chosen": "yes", "rejected": "no"} for i in range(5)])


def button(at, label: str):
    return next(b for b in at.button if b.label == label)


def test_datasets_are_listed_and_previewed(app, seeded):
    at = app("datasets")
    no_exception(at)
    listed = at.dataframe[0].value
    assert {"pairs.jsonl", "prompts.jsonl"} <= set(listed["filename"])
    prompts = seeded["datasets"]["prompts"]["id"]
    at.selectbox(key="datasets-pick").set_value(prompts).run()
    rows = at.dataframe[1].value
    assert list(rows.columns) == ["prompt", "answer"] and rows["answer"].tolist()[:2] == ["7", "19"]


def test_validation_report_lists_problems_by_line_and_field(app):
    at = app("datasets")
    at.file_uploader(key="datasets-file").set_value(("bad.jsonl", BAD, "application/json")).run()
    button(at, "Validate").click().run()
    no_exception(at)
    assert "1 problem(s) in 2 rows (preference)" in texts(at)
    problems = at.dataframe[-1].value
    assert problems[["line", "field"]].values.tolist() == [[1, "rejected"]]


def test_upload_of_a_bad_file_is_refused_with_its_line(app, api):
    before = len(api.get("/v1/datasets").json()["data"])
    at = app("datasets")
    at.file_uploader(key="datasets-file").set_value(("bad.jsonl", BAD, "application/json")).run()
    button(at, "Upload").click().run()
    no_exception(at)
    (error,) = [e.value for e in at.error]
    assert "bad.jsonl was refused" in error and "line 1" in error and "`rejected`" in error
    assert len(api.get("/v1/datasets").json()["data"]) == before


def test_upload_stores_and_lists_the_file(app, api):
    at = app("datasets")
    at.file_uploader(key="datasets-file").set_value(("fresh.jsonl", GOOD, "application/json")).run()
    button(at, "Validate").click().run()
    assert "Valid: 5 rows of kind **preference**" in texts(at)
    button(at, "Upload").click().run()
    no_exception(at)
    assert "Stored fresh.jsonl as `ds-" in texts(at)
    assert "fresh.jsonl" in set(at.dataframe[0].value["filename"])
    assert "fresh.jsonl" in {d["filename"] for d in api.get("/v1/datasets").json()["data"]}


def test_no_datasets_yet(empty, monkeypatch):
    at = opener(monkeypatch, empty.url, empty.key)("datasets")
    no_exception(at)
    assert "No datasets yet" in texts(at)


# --- New job -----------------------------------------------------------------------------


def field_errors(at) -> list[str]:
    return [e.value for e in at.error]


def test_negative_lr_shows_the_api_error_under_the_field(app, api):
    before = {j["id"] for j in api.get("/v1/jobs?limit=100").json()["data"]}
    at = app("new_job")
    no_exception(at)
    at.text_input(key="new-name").set_value("from-the-form")
    at.text_input(key="new-train.lr").set_value("-0.001").run()
    at.button(key="new-submit").click().run()
    no_exception(at)
    errors = field_errors(at)
    assert "The API refused the spec: train.lr: Input should be greater than 0 (invalid_spec)" in (
        errors
    )
    # The message sits in the same column as the lr input, right under it.
    lr_column = next(c for c in at.columns if any(w.key == "new-train.lr" for w in c.text_input))
    assert [e.value for e in lr_column.error] == ["Input should be greater than 0"]
    assert {j["id"] for j in api.get("/v1/jobs?limit=100").json()["data"]} == before
    # Fixing the field clears the stale complaint.
    at.text_input(key="new-train.lr").set_value("0.001").run()
    assert not field_errors(at)


def test_a_valid_form_submits_the_job(app, api, seeded):
    at = app("new_job")
    at.text_input(key="new-name").set_value("form-dpo")
    at.selectbox(key="new-method").set_value("dpo").run()
    at.radio(key="new-source").set_value("uploaded dataset").run()
    pairs = seeded["datasets"]["pairs"]["id"]
    at.selectbox(key="new-data.train").set_value(pairs)
    at.text_input(key="new-method_args").set_value("{beta: 0.2}")
    at.number_input(key="new-train.steps").set_value(50).run()
    assert "beta: 0.2" in at.code[0].value  # the spec preview
    at.button(key="new-submit").click().run()
    no_exception(at)
    (message,) = [s.value for s in at.success]
    job_id = message.split("`")[1]
    job = api.get(f"/v1/jobs/{job_id}").json()
    assert job["name"] == "form-dpo" and job["status"] == "queued"
    assert job["spec"]["method_args"] == {"beta": 0.2} and job["spec"]["data"]["train"] == pairs
    assert job["spec"]["train"]["steps"] == 50


def test_online_method_on_a_dataset_shows_a_reward_error_under_rewards(app, seeded):
    at = app("new_job")
    at.radio(key="new-source").set_value("uploaded dataset").run()
    at.selectbox(key="new-data.train").set_value(seeded["datasets"]["prompts"]["id"])
    at.text_area(key="new-rewards").set_value("- {type: exact_match, field: nope}").run()
    at.button(key="new-submit").click().run()
    no_exception(at)
    assert any("has no field 'nope'" in e for e in field_errors(at))


def test_only_fitting_tasks_are_offered(app):
    at = app("new_job")
    at.selectbox(key="new-method").set_value("dpo").run()
    assert all("preference" in t for t in at.selectbox(key="new-data.task").options)
    at.selectbox(key="new-method").set_value("grpo").run()
    assert "builtin:arithmetic" in at.selectbox(key="new-data.task").options


def test_datasets_with_the_same_file_name_stay_apart(app, api, seeded):
    # The same file again: same name, kind and row count as the seeded one.
    again = api.post("/v1/datasets", files={"file": ("pairs.jsonl", jsonl(PAIRS))}).json()["id"]
    at = app("new_job")
    at.selectbox(key="new-method").set_value("dpo").run()
    at.radio(key="new-source").set_value("uploaded dataset").run()
    for wanted in (again, seeded["datasets"]["pairs"]["id"]):
        at.selectbox(key="new-data.train").set_value(wanted).run()
        assert f"train: {wanted}" in at.code[0].value

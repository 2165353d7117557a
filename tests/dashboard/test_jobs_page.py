"""The Jobs page against the seeded API: the table, its filters, and cancel / resume."""

from __future__ import annotations

from tests.dashboard.conftest import job_id, no_exception, opener, texts


def test_table_lists_every_job_with_status_progress_and_reward(app, seeded):
    at = app("jobs")
    no_exception(at)
    table = at.dataframe[0].value
    names = set(table["name"])
    assert {"dpo-live", "grpo-failed", "to-resume", "kto-queued"} <= names
    assert {
        f"arith-methods/{m}/seed{s}" for m in ("grpo", "rloo", "gro") for s in range(3)
    } <= names
    by_name = table.set_index("name")
    assert by_name.loc["dpo-live", "status"] == "running"
    assert by_name.loc["grpo-failed", "status"] == "failed"
    assert by_name.loc["kto-queued", "status"] == "queued"
    assert by_name.loc["dpo-live", "progress"] == 120 / 400
    assert by_name.loc["dpo-live", "eta"].endswith("s")  # e.g. "3m 20s"
    assert by_name.loc["grpo-failed", "eta"] == ""  # only running jobs have an ETA
    grpo0 = seeded["comparison"]["jobs"][0]
    # The seed's final metrics hold eval/reward, which outranks reward/mean.
    assert by_name.loc[grpo0["name"], "final reward"] == grpo0["final_metrics"]["eval/reward"]
    assert by_name.loc["dpo-live", "open"] == f"job?id={job_id(seeded, 'dpo-live')}"
    assert "refreshing every" in texts(at)  # a job runs: the table reloads itself


def test_filters_narrow_the_table_through_the_api(app):
    at = app("jobs")
    at.selectbox(key="jobs-status").set_value("failed").run()
    assert list(at.dataframe[0].value["name"]) == ["grpo-failed"]
    at.selectbox(key="jobs-status").set_value("all")
    at.text_input(key="jobs-name").set_value("seed1").run()
    assert sorted(at.dataframe[0].value["name"]) == [
        f"arith-methods/{m}/seed1" for m in ("gro", "grpo", "rloo")
    ]
    at.text_input(key="jobs-name").set_value("")
    at.selectbox(key="jobs-method").set_value("kto").run()
    assert sorted(at.dataframe[0].value["name"]) == ["kto-queued", "to-resume"]
    at.text_input(key="jobs-name").set_value("no such job").run()
    no_exception(at)
    assert not at.dataframe and "No job matches these filters" in texts(at)


def test_cancel_button_cancels_through_the_api(app, seeded, api):
    target = job_id(seeded, "to-cancel")
    at = app("jobs")
    at.selectbox(key="jobs-pick").set_value(target).run()
    assert at.button(key="jobs-resume").disabled  # queued: nothing to resume
    at.button(key="jobs-cancel").click().run()
    no_exception(at)
    assert api.get(f"/v1/jobs/{target}").json()["status"] == "cancelled"
    table = at.dataframe[0].value.set_index("name")
    assert table.loc["to-cancel", "status"] == "cancelled"
    assert at.button(key="jobs-cancel").disabled and not at.button(key="jobs-resume").disabled


def test_buttons_follow_the_jobs_state(app, seeded):
    at = app("jobs")
    at.selectbox(key="jobs-pick").set_value(seeded["comparison"]["jobs"][0]["id"]).run()
    assert at.button(key="jobs-cancel").disabled and at.button(key="jobs-resume").disabled
    at.selectbox(key="jobs-pick").set_value(job_id(seeded, "dpo-live")).run()
    assert not at.button(key="jobs-cancel").disabled and at.button(key="jobs-resume").disabled


def test_no_jobs_yet(empty, monkeypatch):
    at = opener(monkeypatch, empty.url, empty.key)("jobs")
    no_exception(at)
    assert "No jobs yet" in texts(at) and not at.dataframe


def test_open_button_goes_to_the_jobs_detail_page(app, seeded):
    at = app("jobs")
    at.selectbox(key="jobs-pick").set_value(job_id(seeded, "grpo-failed")).run()
    at.button(key="jobs-open").click().run()
    no_exception(at)
    assert at.title[0].value == "grpo-failed"
    assert at.query_params["id"] == job_id(seeded, "grpo-failed")

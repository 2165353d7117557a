"""The Job detail page against the seeded API: curves, GRO distributions, samples, events,
checkpoints (whose links download without a key), the spec, resume, and empty states."""

from __future__ import annotations

import io
import tarfile

import httpx

from tests.dashboard.conftest import chart_specs, chart_titles, job_id, no_exception, tab, texts

GRPO_CHARTS = [
    "Reward (mean ± std)",
    "Eval",
    "Loss",
    "KL to reference",
    "Completion length",
    "Advantage distribution",
    "Anchor-distance distribution",
    "Weight distribution",
    "Anchor distance (mean ± std)",
    "Weight (mean ± std)",
    "Zero-variance groups (share)",
    "Clip fraction",
]


def test_a_finished_grpo_run_draws_every_chart(app, seeded):
    job = seeded["comparison"]["jobs"][0]  # grpo, seed 0, 300 steps
    at = app("job", id=job["id"])
    no_exception(at)
    assert at.title[0].value == job["name"]
    assert sorted(chart_titles(at)) == sorted(GRPO_CHARTS)
    assert [t.label for t in at.tabs] == [
        "Curves",
        "GRO quantities",
        "Samples",
        "Events",
        "Checkpoints",
        "Spec",
    ]
    assert "Per-step histograms of 480 samples from 30 of 30 sampled steps" in texts(at)


def test_advantage_heatmap_is_built_from_the_samples(app, seeded, api):
    job = seeded["comparison"]["jobs"][0]
    at = app("job", id=job["id"])
    spec = next(s for s in chart_specs(at) if s.get("title") == "Advantage distribution")
    assert spec["mark"]["type"] == "rect"
    # The chart's rows come through Arrow, not the spec; check the samples it summarises.
    steps = api.get(f"/v1/jobs/{job['id']}/samples?limit=1").json()["steps"]
    assert steps == list(range(10, 301, 10))


def test_reward_band_spans_mean_plus_minus_std(app, seeded):
    at = app("job", id=seeded["comparison"]["jobs"][0]["id"])
    spec = next(s for s in chart_specs(at) if s.get("title") == "Reward (mean ± std)")
    area, line = spec["layer"]
    assert (area["encoding"]["y"]["field"], area["encoding"]["y2"]["field"]) == ("lo", "hi")
    assert line["encoding"]["y"]["field"] == "mean"


def test_samples_table_filters_by_step_and_text(app, seeded):
    at = app("job", id=seeded["comparison"]["jobs"][0]["id"])
    samples = tab(at, "Samples").dataframe[0].value
    assert len(samples) == 16 and list(samples.columns) == [
        "prompt",
        "completion",
        "reward",
        "advantage",
        "anchor_distance",
        "weight",
    ]
    assert at.selectbox(key="job-sample-step").value == 300  # newest first
    at.selectbox(key="job-sample-step").set_value(10).run()
    at_10 = tab(at, "Samples").dataframe[0].value
    assert len(at_10) == 16 and not at_10.equals(samples)
    prompt = at_10["prompt"].iloc[0]
    at.text_input(key="job-sample-text").set_value(prompt).run()
    assert set(tab(at, "Samples").dataframe[0].value["prompt"]) == {prompt}


def test_events_checkpoints_and_spec(app, seeded):
    job = seeded["comparison"]["jobs"][0]
    at = app("job", id=job["id"])
    events = tab(at, "Events").dataframe[0].value
    assert {"created", "started", "eval", "checkpoint", "succeeded"} <= set(events["kind"])
    assert events["created_at"].is_monotonic_decreasing  # newest first
    checkpoints = tab(at, "Checkpoints").dataframe[0].value
    assert list(checkpoints["step"]) == [200, 300]
    # The signed link works without the API key, as a browser would follow it.
    response = httpx.get(checkpoints["download_url"].iloc[-1])
    assert response.status_code == 200
    with tarfile.open(fileobj=io.BytesIO(response.content)) as tar:
        assert any(n.endswith("model.safetensors") for n in tar.getnames())
    spec = at.code[0].value
    assert "method: grpo" in spec and "num_generations: 4" in spec and "seed: 0" in spec


def test_a_running_job_is_live_with_progress_and_cancel(app, seeded):
    at = app("job", id=job_id(seeded, "dpo-live"))
    no_exception(at)
    assert at.get("progress")[0].proto.value == 30  # 120 of 400 steps
    assert "step 120 / 400 · ETA" in at.get("progress")[0].proto.text
    assert "reloading every" in texts(at)
    assert not at.button(key="job-cancel").disabled and at.button(key="job-resume").disabled
    assert "Reward (mean ± std)" in chart_titles(at)


def test_a_failed_job_shows_its_error(app, seeded):
    at = app("job", id=job_id(seeded, "grpo-failed"))
    no_exception(at)
    assert "non_finite: non-finite loss (nan) at step 37" in [e.value for e in at.error]


def test_a_queued_job_without_metrics_says_so(app, seeded):
    at = app("job", id=job_id(seeded, "kto-queued"))
    no_exception(at)
    assert "No metrics yet" in texts(at)
    assert "No samples yet" in texts(at) and "No checkpoints yet" in texts(at)
    assert not chart_titles(at)


def test_resume_button_queues_a_cancelled_job_again(app, seeded, api):
    target = job_id(seeded, "to-resume")
    at = app("job", id=target)
    assert at.button(key="job-cancel").disabled
    at.button(key="job-resume").click().run()
    no_exception(at)
    assert api.get(f"/v1/jobs/{target}").json()["status"] == "queued"
    assert ":gray[queued]" in texts(at)


def test_unknown_job_is_an_error_not_a_crash(app):
    at = app("job", id="job-doesnotexist")
    no_exception(at)
    assert any("no job 'job-doesnotexist'" in e.value for e in at.error)


def test_without_an_id_the_page_offers_a_picker(app, seeded):
    at = app("job")
    no_exception(at)
    assert not at.title or at.title[0].value != "dpo-live"
    at.selectbox[0].set_value(job_id(seeded, "dpo-live")).run()
    assert at.title[0].value == "dpo-live" and at.query_params["id"] == job_id(seeded, "dpo-live")


def test_download_links_can_point_at_a_public_api_address(app, seeded, monkeypatch):
    # Inside docker compose the dashboard calls http://api:8000, which browsers cannot reach.
    monkeypatch.setenv("GRO_PUBLIC_API_URL", "https://gro.example.org/")
    at = app("job", id=seeded["comparison"]["jobs"][0]["id"])
    links = tab(at, "Checkpoints").dataframe[0].value["download_url"]
    assert all(u.startswith("https://gro.example.org/v1/checkpoints/ckpt-") for u in links)
    assert all("signature=" in u for u in links)

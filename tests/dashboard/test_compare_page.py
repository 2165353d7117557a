"""The Compare page against the seeded 3-method × 3-seed comparison and single jobs."""

from __future__ import annotations

import pandas as pd
import pytest
from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df

from dashboard import data
from tests.dashboard.conftest import chart_specs, job_id, no_exception, opener, texts
from tests.dashboard.stack import base_spec, fill_run

DEFAULT_METRICS = [
    "reward/mean",
    "eval/reward",
    "eval/accuracy",
    "loss/value",
    "kl/ref",
    "completion/length",
]


def the_chart(at) -> dict:
    (spec,) = [s for s in chart_specs(at) if "facet" in s]  # one chart: a panel per metric
    return spec


def x_title(spec: dict) -> str:
    unit = spec["spec"]
    return unit.get("layer", [unit])[0]["encoding"]["x"]["title"]


def test_comparison_draws_one_band_panel_per_metric(app, seeded):
    at = app("compare", comparison=seeded["comparison"]["id"])
    no_exception(at)
    assert at.multiselect(key="compare-metrics").value == DEFAULT_METRICS
    spec = the_chart(at)
    assert spec["facet"]["field"] == "name" and spec["facet"]["sort"] == DEFAULT_METRICS
    area, line = spec["spec"]["layer"]  # mean ± 95% CI per variant
    assert area["encoding"]["color"]["field"] == "group"
    assert line["encoding"]["y"]["field"] == "mean"
    assert spec["resolve"]["scale"]["y"] == "independent"


def test_every_run_mode_and_each_run_grouping_draw_lines(app, seeded):
    at = app("compare", comparison=seeded["comparison"]["id"])
    at.radio(key="compare-mode").set_value("every run").run()
    assert the_chart(at)["spec"]["mark"]["type"] == "line"
    at.selectbox(key="compare-group").set_value("each run").run()
    no_exception(at)
    assert the_chart(at)["spec"]["encoding"]["color"]["field"] == "run"


def test_metrics_are_drawn_in_the_order_picked(app, seeded):
    at = app("compare", comparison=seeded["comparison"]["id"])
    at.multiselect(key="compare-metrics").set_value(["train/lr", "reward/mean"]).run()
    assert the_chart(at)["facet"]["sort"] == ["train/lr", "reward/mean"]


def test_nothing_to_draw_says_why(app, seeded):
    at = app("compare", jobs=job_id(seeded, "dpo-live"))
    at.radio(key="compare-axis").set_value("wall").run()  # the only run has no clock
    no_exception(at)
    assert "No data in these runs for: reward/mean" in texts(at)
    assert not chart_specs(at)


@pytest.mark.parametrize(
    ("axis", "title"), [("samples", "samples seen"), ("wall", "wall time (s)")]
)
def test_x_axis_choices(app, seeded, axis, title):
    at = app("compare", comparison=seeded["comparison"]["id"])
    at.radio(key="compare-axis").set_value(axis).run()
    no_exception(at)
    assert x_title(the_chart(at)) == title


def test_wall_time_leaves_out_runs_without_a_clock(app, seeded):
    live, finished = job_id(seeded, "dpo-live"), seeded["comparison"]["jobs"][0]["id"]
    at = app("compare", jobs=f"{live},{finished}")
    no_exception(at)
    assert at.radio(key="compare-source").value == "jobs I pick"
    assert at.multiselect(key="compare-jobs").value == [live, finished]
    at.radio(key="compare-axis").set_value("wall").run()
    no_exception(at)
    assert "No wall-clock times (`time/elapsed_s`) recorded for: dpo-live" in texts(at)
    assert chart_specs(at)  # the run with a clock is still drawn


def chart_rows(at) -> pd.DataFrame:
    """The rows of the page's faceted chart (they travel as Arrow, beside the spec)."""
    (chart,) = [c for c in at.get("vega_lite_chart") if "facet" in c.proto.spec]
    return convert_arrow_bytes_to_pandas_df(chart.proto.data.data)


def test_samples_axis_is_the_trainers_own_count(app, seeded):
    at = app("compare", comparison=seeded["comparison"]["id"])
    at.radio(key="compare-mode").set_value("every run")
    at.radio(key="compare-axis").set_value("samples").run()
    no_exception(at)
    rows = chart_rows(at)
    assert set(rows["name"]) == set(DEFAULT_METRICS)  # train/samples is the axis, not a panel
    # The seeded runs count 8 prompts x 4 generations a step; the API downsampled each series.
    reward = rows[rows["name"] == "reward/mean"]
    steps = reward["x"] / 32
    assert len(reward) > 100 and steps.to_numpy() == pytest.approx(steps.round().to_numpy())
    assert (steps.min(), steps.max()) == pytest.approx((1, 300))


def test_samples_axis_asks_for_no_dataset(app, seeded, monkeypatch):
    asked: list[str] = []
    real = data.request

    def spy(conn, method, path, **kwargs):
        asked.append(path)
        return real(conn, method, path, **kwargs)

    monkeypatch.setattr(data, "request", spy)
    offline, online = job_id(seeded, "to-resume"), seeded["comparison"]["jobs"][0]["id"]
    at = app("compare", jobs=f"{offline},{online}")  # kto trains on an uploaded dataset
    at.radio(key="compare-axis").set_value("samples").run()
    no_exception(at)
    assert chart_specs(at) and not [p for p in asked if p.startswith("/v1/datasets")]


def test_samples_axis_leaves_out_runs_without_a_count(app, seeded):
    live, finished = job_id(seeded, "dpo-live"), seeded["comparison"]["jobs"][0]["id"]
    at = app("compare", jobs=f"{live},{finished}")
    at.radio(key="compare-axis").set_value("samples").run()
    no_exception(at)
    assert "No sample counts (`train/samples`) recorded for: dpo-live" in texts(at)
    assert chart_specs(at)


def test_final_metrics_match_the_api_summary(app, seeded):
    at = app("compare", comparison=seeded["comparison"]["id"])
    assert at.selectbox(key="compare-final-metric").value == "eval/reward"
    assert at.selectbox(key="compare-baseline").value == "grpo"
    table = at.dataframe[0].value.set_index("group")
    summary = seeded["comparison"]["summary"]  # the API's bootstrap over seeds
    for variant in ("grpo", "rloo", "gro"):
        api = summary[variant]["eval/reward"]
        row = table.loc[variant]
        assert (row["mean"], row["ci_low"], row["ci_high"], row["n"]) == pytest.approx(
            (api["mean"], api["ci_low"], api["ci_high"], api["n"])
        )
        if api["diff"] is not None:
            diff = api["diff"]
            assert (row["diff"], row["diff_low"], row["diff_high"]) == pytest.approx(
                (diff["mean"], diff["ci_low"], diff["ci_high"])
            )


def test_a_chosen_baseline_pairs_seeds_against_it(app, seeded):
    at = app("compare", comparison=seeded["comparison"]["id"])
    at.selectbox(key="compare-baseline").set_value("rloo").run()
    table = at.dataframe[0].value.set_index("group")
    finals = {
        (j["variant"], j["seed"]): j["final_metrics"]["eval/reward"]
        for j in seeded["comparison"]["jobs"]
    }
    expected = sum(finals["grpo", s] - finals["rloo", s] for s in range(3)) / 3
    assert table.loc["grpo", "diff"] == pytest.approx(expected)
    assert table["diff"].isna().tolist() == [False, True, False]  # rloo is the baseline


def test_spec_diff_shows_only_the_method(app, seeded):
    at = app("compare", comparison=seeded["comparison"]["id"])
    diff = at.dataframe[1].value
    assert diff.to_dict(orient="index") == {
        "method": {"grpo": "grpo", "rloo": "rloo", "gro": "gro"}
    }
    at.selectbox(key="compare-group").set_value("each run").run()
    keys = set(at.dataframe[1].value.index)
    assert keys == {"method", "train.seed"}


def test_same_prompt_side_by_side(app, seeded):
    at = app("compare", comparison=seeded["comparison"]["id"])
    assert at.selectbox(key="compare-sample-step").value == 300
    prompt = at.selectbox(key="compare-prompt").value
    tables = at.dataframe[2:-1]  # after the final metrics and spec diff, before reward at KL
    assert len(tables) == 3  # one per variant
    assert all(len(t.value) == 4 for t in tables)  # the prompt's group of 4 completions
    headers = [m.value for m in at.markdown if "mean reward" in m.value]
    assert [h.split(" ·")[0] for h in headers] == ["**grpo**", "**rloo**", "**gro**"]
    assert prompt.endswith("=")


def test_different_methods_picked_by_hand(app, seeded):
    live = job_id(seeded, "dpo-live")
    grpo = seeded["comparison"]["jobs"][0]["id"]
    at = app("compare", jobs=f"{live},{grpo}")
    no_exception(at)
    assert at.selectbox(key="compare-group").value == "method"
    diff = at.dataframe[1].value
    assert {"method", "data.task", "data.train", "train.steps"} <= set(diff.index)
    assert "These runs have no sampled step in common" not in texts(at)


def test_no_comparisons_yet(empty, monkeypatch):
    at = opener(monkeypatch, empty.url, empty.key)("compare")
    no_exception(at)
    assert "No comparisons yet" in texts(at)
    at.radio(key="compare-source").set_value("jobs I pick").run()
    assert "No jobs yet" in texts(at)


def test_picked_jobs_that_share_a_name_stay_apart(app, demo):
    stack, _ = demo
    with stack.http() as http:
        twins = [
            http.post("/v1/jobs", json={**base_spec("rloo", 20), "name": "twin"}).json()
            for _ in range(2)
        ]
    for job in twins:
        fill_run(stack, job)
    at = app("compare", jobs=",".join(j["id"] for j in twins))
    at.selectbox(key="compare-group").set_value("each run").run()
    no_exception(at)
    assert at.multiselect(key="compare-jobs").value == [j["id"] for j in twins]
    groups = at.dataframe[0].value["group"].tolist()
    assert sorted(groups) == sorted(f"twin ({j['id'][-6:]})" for j in twins)


def test_reward_at_matched_kl_is_drawn_per_variant_with_the_apis_table(app, seeded, api):
    comparison = seeded["comparison"]
    at = app("compare", comparison=comparison["id"])
    no_exception(at)
    (spec,) = [s for s in chart_specs(at) if s.get("title") == "Held-out reward against KL"]
    area, line = spec["layer"]
    assert line["encoding"]["color"]["field"] == "variant"
    assert area["encoding"]["y2"]["field"] == "hi"
    at.text_input(key="compare-at-kl").set_value("0.05,0.1").run()
    no_exception(at)
    table = next(d.value for d in at.dataframe if "KL" in d.value.columns)
    answer = api.get(
        f"/v1/comparisons/{comparison['id']}/frontier", params={"at_kl": "0.05,0.1"}
    ).json()
    variants = [v["label"] for v in comparison["variants"]]
    assert list(table["KL"]) == [0.05] * len(variants) + [0.1] * len(variants)
    for v in answer["table"]["variants"]:
        row = table[(table["variant"] == v["variant"]) & (table["KL"] == 0.1)].iloc[0]
        point = v["at_kl"][1]
        assert row["reached"] == f"{point['reached']}/{v['runs']}"
        if point["reward"] is not None:
            assert row["mean"] == pytest.approx(point["reward"]["mean"])


def test_a_bad_at_kl_shows_the_apis_refusal(app, seeded):
    at = app("compare", comparison=seeded["comparison"]["id"])
    at.text_input(key="compare-at-kl").set_value("0.1,-2").run()
    no_exception(at)
    assert "at_kl" in "\n".join(str(e.value) for e in at.error)

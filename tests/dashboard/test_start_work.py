"""Work started from the dashboard (AppTest against the seeded API): a comparison and
evaluations launched from their forms, the playground's request; each refusal of the API shown
under the field it names, and nothing started by a refused request."""

from __future__ import annotations

from tests.dashboard.conftest import no_exception


def errors(at) -> list[str]:
    return [e.value for e in at.error]


def test_a_refused_variant_is_shown_under_its_row_and_starts_nothing(app, api):
    before = api.get("/v1/comparisons?limit=100").json()["data"]
    at = app("new_comparison")
    no_exception(at)
    at.text_input(key="cmp-name").set_value("from-the-dashboard")
    at.text_input(key="cmp-overrides-1").set_value("{train.lr: -1}").run()
    at.button(key="cmp-start").click().run()
    no_exception(at)
    assert any("variant 'rloo'" in e and "greater than 0" in e for e in errors(at)), errors(at)
    assert api.get("/v1/comparisons?limit=100").json()["data"] == before
    at.text_input(key="cmp-overrides-1").set_value("{method: rloo}").run()
    assert not errors(at)  # the changed form is no longer what was refused
    at.button(key="cmp-start").click().run()
    no_exception(at)
    assert any("Started `cmp-" in s.value for s in at.success)
    (made,) = [c for c in api.get("/v1/comparisons?limit=100").json()["data"] if c not in before]
    assert made["name"] == "from-the-dashboard"
    assert [v["label"] for v in made["variants"]] == ["grpo", "rloo"]
    assert made["seeds"] == [0, 1] and len(made["jobs"]) == 4


def test_bad_seeds_are_refused_under_the_seeds_field(app):
    at = app("new_comparison")
    at.text_input(key="cmp-seeds").set_value("0, x").run()
    at.button(key="cmp-start").click().run()
    no_exception(at)
    seeds_column = next(c for c in at.columns if any(w.key == "cmp-seeds" for w in c.text_input))
    assert seeds_column.error, errors(at)


def test_evaluations_of_chosen_checkpoints_start_and_list_with_their_status(app, api, seeded):
    at = app("new_evaluation")
    no_exception(at)
    picker = at.multiselect(key="eval-picked")
    assert picker.options, "the seeded finished jobs' checkpoints"
    checkpoint = picker.options[0].rsplit(" · ", 1)[1]  # labels end with the id
    picker.set_value([checkpoint])
    at.text_input(key="eval-typed").set_value("builtin:tiny-llama")
    at.number_input(key="eval-num_generations").set_value(0).run()
    at.button(key="eval-start").click().run()
    no_exception(at)
    column = next(
        c for c in at.columns if any(w.key == "eval-num_generations" for w in c.number_input)
    )
    assert [e.value for e in column.error] == ["Input should be greater than or equal to 1"]
    assert api.get("/v1/evaluations").json()["data"] == []
    at.number_input(key="eval-num_generations").set_value(2).run()
    at.button(key="eval-start").click().run()
    no_exception(at)
    started = api.get("/v1/evaluations").json()["data"]
    assert sorted(e["model"] for e in started) == sorted([checkpoint, "builtin:tiny-llama"])
    assert {e["request"]["num_generations"] for e in started} == {2}
    table = at.dataframe[0].value
    assert set(table["evaluation"]) == {e["id"] for e in started}
    assert set(table["status"]) == {"queued"}


def test_the_playground_refuses_an_empty_prompt_under_the_prompt(app, api):
    at = app("playground")
    no_exception(at)
    at.text_input(key="play-typed").set_value("builtin:tiny-llama").run()
    at.button(key="play-generate").click().run()
    no_exception(at)
    assert "give exactly one of prompt (text) or messages (a chat)" in errors(at)


def test_the_playground_refuses_five_models_naming_checkpoints(app):
    at = app("playground")
    at.text_input(key="play-typed").set_value(", ".join(["builtin:tiny-llama"] * 5))
    at.text_area(key="play-prompt").set_value("rev abc=").run()
    at.button(key="play-generate").click().run()
    no_exception(at)
    assert any("at most 4" in e for e in errors(at)), errors(at)

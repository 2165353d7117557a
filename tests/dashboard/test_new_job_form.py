"""The New job form is built from the API's method registry (GET /v1/methods) and tasks
(GET /v1/tasks): a method appears with a field per argument, its default and its doc, and
what the user changes is submitted as `method_args`."""

from __future__ import annotations

from typing import Any

from dashboard import data, forms
from tests.dashboard.conftest import no_exception

HALFWAY = {
    "object": "method",
    "name": "halfway",
    "summary": "A method only this test knows.",
    "kinds": ["unpaired"],
    "online": False,
    "offline": True,
    "trains_with": "gro",
    "compares_in_group": False,
    "needs_reference": True,
    "citation": "",
    "args": [
        {"name": "gamma", "type": "float", "default": 0.7, "doc": "How far to go."},
        {"name": "mirror", "type": "bool", "default": True, "doc": "Look back."},
    ],
    "preset": None,
}


def served(api) -> list[dict[str, Any]]:
    return api.get("/v1/methods").json()["data"]


def arg_keys(at) -> set[str]:
    widgets = [*at.text_input, *at.checkbox]
    return {w.key for w in widgets if w.key.startswith("new-method_args.")}


def arg_widget(at, method: str, arg: dict[str, Any]):
    key = f"new-method_args.{method}.{arg['name']}"
    return at.checkbox(key=key) if arg["type"] == "bool" else at.text_input(key=key)


def test_the_method_list_is_the_apis(app, api):
    at = app("new_job")
    no_exception(at)
    method = at.selectbox(key="new-method")
    assert method.options == [m["name"] for m in served(api)]
    assert method.value == "grpo"


def test_every_method_shows_exactly_its_arguments_with_defaults_and_docs(app, api):
    at = app("new_job")
    for method in served(api):
        at.selectbox(key="new-method").set_value(method["name"]).run()
        no_exception(at)
        wanted = {f"new-method_args.{method['name']}.{a['name']}" for a in method["args"]}
        assert arg_keys(at) == wanted, method["name"]
        for arg in method["args"]:
            widget = arg_widget(at, method["name"], arg)
            shown = widget.value if arg["type"] == "bool" else forms.parse_arg(widget.value, arg)
            assert shown == arg["default"], (method["name"], arg["name"])
            assert arg["doc"] in widget.help and arg["type"] in widget.help
        online = any(a.key == "new-rewards" for a in at.text_area)
        assert online == method["online"], method["name"]


def test_a_method_the_api_adds_appears_with_its_arguments(app, api, monkeypatch):
    """Nothing in the dashboard names methods: change the API's answer and the form follows."""
    real = data.request

    def answer(conn, method, path, **kwargs):
        out = real(conn, method, path, **kwargs)
        if path == "/v1/methods":
            kept = [m for m in out["data"] if m["name"] != "cpl"]
            return {**out, "data": [*kept, HALFWAY]}
        return out

    monkeypatch.setattr(data, "request", answer)
    at = app("new_job")
    options = at.selectbox(key="new-method").options
    assert options[-1] == "halfway" and "cpl" not in options
    at.selectbox(key="new-method").set_value("halfway").run()
    no_exception(at)
    assert arg_keys(at) == {"new-method_args.halfway.gamma", "new-method_args.halfway.mirror"}
    gamma = at.text_input(key="new-method_args.halfway.gamma")
    assert gamma.value == "0.7" and "How far to go." in gamma.help
    assert at.checkbox(key="new-method_args.halfway.mirror").value is True
    assert "A method only this test knows." in at.caption[0].value
    tasks = at.selectbox(key="new-data.task").options
    assert tasks and all(t.endswith("-unpaired") for t in tasks)  # its kind only
    assert not any(a.key == "new-rewards" for a in at.text_area)  # offline: no rollouts
    gamma.set_value("0.5").run()
    at.checkbox(key="new-method_args.halfway.mirror").uncheck().run()
    assert "gamma: 0.5" in at.code[0].value and "mirror: false" in at.code[0].value
    jobs_filter = app("jobs").selectbox(key="jobs-method").options  # the same answer
    assert jobs_filter[-1] == "halfway" and "cpl" not in jobs_filter


def test_untouched_arguments_submit_no_method_args(app):
    at = app("new_job")
    assert "method_args: {}" in at.code[0].value


def test_changed_arguments_are_submitted_as_method_args(app, api, seeded):
    at = app("new_job")
    at.text_input(key="new-name").set_value("form-args")
    at.text_input(key="new-method_args.grpo.epsilon_high").set_value("0.28")
    at.text_input(key="new-method_args.grpo.kl_coef").set_value("1e-3").run()
    assert "epsilon_high: 0.28" in at.code[0].value
    at.button(key="new-submit").click().run()
    no_exception(at)
    (message,) = [s.value for s in at.success]
    job = api.get(f"/v1/jobs/{message.split('`')[1]}").json()
    assert job["name"] == "form-args" and job["method"] == "grpo"
    assert job["spec"]["method_args"] == {"epsilon_high": 0.28, "kl_coef": 0.001}


def test_yaml_overrides_join_and_win_over_the_fields(app):
    at = app("new_job")
    at.selectbox(key="new-method").set_value("reinforce_pp").run()
    at.checkbox(key="new-method_args.reinforce_pp.baseline").check()
    at.text_input(key="new-method_args.reinforce_pp.epsilon").set_value("0.3")
    at.text_input(key="new-method_args").set_value("{epsilon: 0.25, aggregation: token_mean}")
    at.run()
    preview = at.code[0].value
    assert "baseline: true" in preview and "epsilon: 0.25" in preview
    assert "aggregation: token_mean" in preview and "epsilon: 0.3" not in preview


def test_a_refused_argument_shows_the_apis_message(app, api):
    before = len(api.get("/v1/jobs?limit=100").json()["data"])
    at = app("new_job")
    at.selectbox(key="new-method").set_value("grpo").run()
    at.text_input(key="new-method_args.grpo.epsilon").set_value("-1").run()
    at.button(key="new-submit").click().run()
    no_exception(at)
    assert any("The API refused the spec: method_args" in e.value for e in at.error)
    assert len(api.get("/v1/jobs?limit=100").json()["data"]) == before


def test_the_jobs_filter_offers_the_apis_methods(app, api):
    at = app("jobs")
    assert at.selectbox(key="jobs-method").options == ["all", *(m["name"] for m in served(api))]

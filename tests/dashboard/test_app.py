"""The app's router and connection states: env or sign-in box, unreachable API, bad key."""

from __future__ import annotations

import pytest

from client.http import write_config
from tests.dashboard.conftest import no_exception, opener, texts
from tests.processes import free_port


def test_env_connection_opens_the_jobs_page(app):
    at = app()
    no_exception(at)
    assert [t.value for t in at.title] == ["Jobs"]
    assert "key gro-" in texts(at)  # the sidebar says where it is connected


def test_unreachable_api_says_so_and_offers_the_sign_in_box(monkeypatch):
    url = f"http://127.0.0.1:{free_port()}"
    at = opener(monkeypatch, url, "gro-whatever")()
    no_exception(at)
    assert f"Cannot reach the gro API at {url}" in texts(at)
    assert [w.label for w in at.text_input] == ["API URL", "API key"]
    assert at.text_input[0].value == url


def test_bad_key_is_refused_with_a_hint(demo, monkeypatch):
    at = opener(monkeypatch, demo[0].url, "gro-not-a-key")()
    no_exception(at)
    assert "refused the key" in texts(at) and "gro keys create" in texts(at)
    assert not at.dataframe  # no page ran


@pytest.mark.parametrize("key", [None, ""])
def test_without_configuration_the_sign_in_box_connects(demo, monkeypatch, key):
    stack, _ = demo
    at = opener(monkeypatch, None, key)()
    assert [t.value for t in at.title] == ["gro"] and not at.error
    at.text_input[0].set_value(stack.url)
    at.text_input[1].set_value(stack.key)
    at.button[0].click().run()
    no_exception(at)
    assert [t.value for t in at.title] == ["Jobs"] and at.dataframe


def test_sign_out_returns_to_the_sign_in_box(app):
    at = app()
    at.button(key="sign-out").click().run()
    no_exception(at)
    assert [t.value for t in at.title] == ["gro"] and not at.error


def test_gro_login_config_is_used_without_env(demo, monkeypatch, tmp_path):
    stack, _ = demo
    at_factory = opener(monkeypatch, None, None)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    write_config(stack.url, stack.key)
    at = at_factory()
    no_exception(at)
    assert [t.value for t in at.title] == ["Jobs"]

"""The client's `gro` verbs (submit, jobs, logs, cancel, resume, compare, login) against the API."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from client.http import GroClient, read_config
from gro_core.cli import main
from tests.server.conftest import PAIRS, jsonl


@pytest.fixture
def cli(client: TestClient, keys: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path):
    """`gro` verbs talking to the test app as alice; config under tmp_path."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setattr(
        GroClient, "from_config", classmethod(lambda cls: cls(key=keys["alice"], http=client))
    )
    return client


def write_spec(tmp_path: Path, **changes) -> Path:
    (tmp_path / "pairs.jsonl").write_bytes(jsonl(PAIRS))
    spec = {
        "model": "builtin:tiny-llama",
        "method": "dpo",
        "data": {"train": "pairs.jsonl"},
        "train": {"steps": 3},
        **changes,
    }
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_submit_uploads_local_data_and_lists_the_job(cli, tmp_path, capsys):
    assert main(["submit", str(write_spec(tmp_path))]) == 0
    out = capsys.readouterr().out
    assert "uploaded" in out and "(preference, 8 rows)" in out
    job_id = out.strip().splitlines()[-1].split()[0]
    assert main(["jobs"]) == 0
    listing = capsys.readouterr().out
    assert job_id in listing and "queued" in listing and "0/3" in listing
    assert main(["logs", job_id]) == 0
    assert "created" in capsys.readouterr().out
    assert main(["pause", job_id]) == 0
    assert "paused" in capsys.readouterr().out
    assert main(["resume", job_id]) == 0
    assert "queued" in capsys.readouterr().out
    assert main(["cancel", job_id]) == 0
    assert "cancelled" in capsys.readouterr().out
    assert main(["resume", job_id]) == 0
    assert "queued" in capsys.readouterr().out


def test_invalid_spec_exits_2_naming_the_field(cli, tmp_path, capsys):
    assert main(["submit", str(write_spec(tmp_path, train={"lr": -1}))]) == 2
    assert "train.lr" in capsys.readouterr().err


def test_compare_with_a_base_spec_file(cli, tmp_path, capsys):
    write_spec(tmp_path)
    document = {
        "name": "cmp",
        "base": "job.yaml",
        "seeds": [0, 1],
        "variants": [{"label": "dpo"}, {"label": "cpl", "overrides": {"method": "cpl"}}],
    }
    (tmp_path / "cmp.yaml").write_text(yaml.safe_dump(document))
    assert main(["compare", str(tmp_path / "cmp.yaml")]) == 0
    out = capsys.readouterr().out
    assert "4 jobs" in out and out.count("cpl seed=") == 2


def test_login_checks_the_key_and_saves_it_private(client, keys, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.delenv("GRO_API_KEY", raising=False)
    monkeypatch.delenv("GRO_API_URL", raising=False)
    real_init = GroClient.__init__

    def via_app(self, url="", key="", timeout=30.0, http=None):
        real_init(self, url, key, timeout, http=client)

    monkeypatch.setattr(GroClient, "__init__", via_app)
    assert main(["login", "--url", "http://testserver", "--key", "gro-wrong"]) == 1
    assert "401 unauthorized" in capsys.readouterr().err
    assert not (tmp_path / "gro" / "config").exists()
    assert main(["login", "--url", "http://testserver", "--key", keys["alice"]]) == 0
    path = tmp_path / "gro" / "config"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_config() == {"url": "http://testserver", "key": keys["alice"]}
    monkeypatch.setenv("GRO_API_KEY", "from-env")
    assert read_config()["key"] == "from-env"
    assert json.loads(path.read_text().split("key = ")[1]) == keys["alice"]

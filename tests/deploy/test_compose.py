"""docker-compose.yml (Docker cannot run here): it parses, names every service, passes every
setting the code reads, and names no setting the code does not read."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from server.config import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
# Read outside server.config: models' cache and the vllm backend's GPU share (gro_core), the
# dashboard's client and the address browsers reach the API at, Hugging Face's cache.
OTHER_VARIABLES = {
    "GRO_CACHE_DIR",
    "GRO_VLLM_GPU_MEMORY_UTILIZATION",
    "GRO_API_URL",
    "GRO_API_KEY",
    "GRO_PUBLIC_API_URL",
    "HF_HOME",
}
SETTINGS = {f"GRO_{name.upper()}" for name in Settings.model_fields}


def variables_read_by_the_code() -> set[str]:
    """GRO_* names the code spells out as strings (environment lookups), and the settings'
    fields (pydantic-settings derives their names)."""
    found = set()
    for folder in ("gro_core", "server", "worker", "dashboard", "client", "stack"):
        for path in (ROOT / folder).rglob("*.py"):
            found |= set(re.findall(r"[\"'](GRO_[A-Z][A-Z_]+)[\"']", path.read_text()))
    return found | SETTINGS


def test_every_service_is_there():
    assert set(SERVICES) == {
        "postgres",
        "redis",
        "migrate",
        "api",
        "worker",
        "worker-multi-gpu",
        "dashboard",
    }
    assert SERVICES["migrate"]["command"] == ["gro", "db", "upgrade"]
    assert "--appendonly" in SERVICES["redis"]["command"]
    for name in ("api", "worker"):
        assert SERVICES[name]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }


def test_workers_reserve_a_gpu_each_and_scale():
    deploy = SERVICES["worker"]["deploy"]
    device = deploy["resources"]["reservations"]["devices"][0]
    assert device["capabilities"] == ["gpu"] and device["count"] == 1
    assert "replicas" in deploy
    assert SERVICES["worker"]["command"][:2] == ["gro", "worker"]


def test_api_and_workers_get_every_production_setting():
    required = {
        "GRO_ENVIRONMENT",
        "GRO_SECRET_KEY",
        "GRO_DATABASE_URL",
        "GRO_BROKER_URL",
        "GRO_STORAGE_DIR",
    }
    for name in ("api", "worker", "migrate"):
        env = SERVICES[name]["environment"]
        assert required <= set(env), name
        assert env["GRO_ENVIRONMENT"] == "production"
        assert env["GRO_DATABASE_URL"].startswith("postgresql")
        assert env["GRO_BROKER_URL"].startswith("redis://redis:")
    assert set(SERVICES["dashboard"]["environment"]) == {
        "GRO_API_URL",
        "GRO_API_KEY",
        "GRO_PUBLIC_API_URL",
    }


def test_compose_names_only_variables_the_code_reads():
    known = variables_read_by_the_code() | OTHER_VARIABLES
    for name, service in SERVICES.items():
        env = service.get("environment") or {}
        unknown = {k for k in env if k.startswith(("GRO_", "HF_"))} - known
        assert not unknown, f"{name}: {unknown}"
    # and the code reads nothing production must set that compose leaves out
    assert variables_read_by_the_code() - SETTINGS <= OTHER_VARIABLES


def test_the_image_installs_the_project_and_runs_the_api():
    dockerfile = (ROOT / "Dockerfile").read_text()
    # Every package with a `gro` verb: the CLI loads them all to build its parser.
    for folder in ("gro_core", "server", "worker", "dashboard", "client", "stack", "bench"):
        assert f"COPY {folder} {folder}" in dockerfile
    assert "COPY migrations migrations" in dockerfile
    assert 'pip install -e ".[${EXTRAS}]"' in dockerfile and '"gro", "serve"' in dockerfile
    # Workers write the trackers a spec lists: the image has their libraries by default.
    assert 'ARG EXTRAS="trackers,hub"' in dockerfile

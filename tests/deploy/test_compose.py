"""deploy/compose.yaml: valid under the Compose Specification's schema (check-jsonschema's
bundled copy), and what the issue asks of it, wired to files that exist."""

from __future__ import annotations

import re
from typing import Any

import yaml

from tests.deploy.tools import DEPLOY, documented_settings, require, run

COMPOSE = DEPLOY / "compose.yaml"
ENV_EXAMPLE = DEPLOY / "compose.env.example"


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def services() -> dict[str, Any]:
    found: dict[str, Any] = compose()["services"]
    return found


def test_check_jsonschema_with_the_compose_spec() -> None:
    tool = require("check-jsonschema", "the dev extra: pip install -e '.[dev]'")
    run(tool, "--builtin-schema", "vendor.compose-spec", COMPOSE)


def test_two_api_replicas_and_a_flusher_apart() -> None:
    api, flusher = services()["api"], services()["flusher"]
    assert api["deploy"]["replicas"] == 2
    assert api["command"][:3] == ["serve", "--host", "0.0.0.0"]
    assert api["environment"]["VOTESVC_FLUSH_IN_SERVE"] == "false"
    assert "VOTESVC_DATABASE_URL" not in api["environment"]
    assert flusher["command"] == ["flush"]
    for service in (api, flusher):
        assert service["build"]["dockerfile"] == "deploy/Dockerfile"
        assert (DEPLOY / service["build"]["context"] / service["build"]["dockerfile"]).is_file()
        assert set(service["environment"]) <= documented_settings()
        assert service["environment"]["VOTESVC_REDIS_URL"].startswith("redis://votesvc:")
        assert service["depends_on"]["redis"]["condition"] == "service_healthy"


def test_redis_runs_the_acl_and_aof_always() -> None:
    redis = services()["redis"]
    command = " ".join(redis["command"])
    assert "render-acl.sh /etc/votesvc-redis/users.acl /data/users.acl" in command
    assert "redis-server /etc/votesvc-redis/redis.conf" in command
    assert "./redis:/etc/votesvc-redis:ro" in redis["volumes"]
    config = (DEPLOY / "redis" / "redis.conf").read_text().splitlines()
    assert "aclfile /data/users.acl" in config
    assert "appendonly yes" in config
    assert "appendfsync always" in config
    assert "maxmemory-policy noeviction" in config
    # Every password users.acl needs for its users that log in here.
    needed = {f"REDIS_PASSWORD_{user.upper()}" for user in ("votesvc", "ops")}
    assert needed <= set(redis["environment"])


def test_postgres_keeps_its_data_in_a_volume() -> None:
    postgres = services()["postgres"]
    assert "postgres-data:/var/lib/postgresql/data" in postgres["volumes"]
    assert "postgres-data" in compose()["volumes"]
    assert postgres["environment"]["POSTGRES_USER"] == "votesvc"
    url = services()["flusher"]["environment"]["VOTESVC_DATABASE_URL"]
    assert url.startswith("postgresql://votesvc:")
    assert url.endswith("@postgres:5432/votesvc")


def test_prometheus_scrapes_the_metrics_port_the_image_opens() -> None:
    prometheus = services()["prometheus"]
    assert "./prometheus:/etc/prometheus:ro" in prometheus["volumes"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    scrape = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in scrape["scrape_configs"]}
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    port = int(re.search(r"VOTESVC_METRICS_PORT=(\d+)", dockerfile)[1])  # type: ignore[index]
    for job, service in (("votesvc-api", "api"), ("votesvc-flusher", "flusher")):
        [sd] = jobs[job]["dns_sd_configs"]
        assert sd["names"] == [service]
        assert sd["port"] == port
    assert scrape["rule_files"] == ["alerts.yaml"]


def test_every_mounted_file_exists_and_every_variable_is_in_the_example() -> None:
    text = COMPOSE.read_text()
    for service in services().values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            source = re.sub(r"\$\{\w+:-([^}]+)\}", r"\1", source)  # the default
            if source.startswith("."):
                assert (DEPLOY / source).exists(), source
    used = set(re.findall(r"\$\{(\w+)", text))
    example = {
        line.split("=", 1)[0]
        for line in ENV_EXAMPLE.read_text().splitlines()
        if re.match(r"#? ?\w+=", line)
    }
    example = {name.lstrip("# ") for name in example}
    assert used <= example, f"not in compose.env.example: {used - example}"


def test_the_env_example_holds_no_working_secret() -> None:
    values = dict(
        line.split("=", 1)
        for line in ENV_EXAMPLE.read_text().splitlines()
        if line and not line.startswith("#")
    )
    for name in ("VOTESVC_SECRET", "REDIS_PASSWORD_VOTESVC", "REDIS_PASSWORD_OPS"):
        assert values[name] == "", f"{name} must be left for the operator to fill in"

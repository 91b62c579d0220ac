"""deploy/grafana/: the provisioned dashboard queries only metrics votesvc exports, charts
every one of them, and each query is PromQL that promtool parses."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from tests.deploy.metricnames import exported_families, exported_names, queried_names
from tests.deploy.tools import DEPLOY, require, run

GRAFANA = DEPLOY / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "votesvc.json"
# Grafana's own variables, as Grafana would put them in before Prometheus sees a query.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s"}


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])  # a collapsed row holds its panels


def expressions() -> list[tuple[str, str]]:
    """(panel title, PromQL) for every query of the dashboard."""
    dashboard = json.loads(DASHBOARD.read_text())
    return [
        (panel["title"], target["expr"])
        for panel in panels(dashboard)
        for target in panel.get("targets", [])
    ]


def test_every_panel_queries_metrics_that_votesvc_exports() -> None:
    exported = exported_names()
    for title, expr in expressions():
        used = queried_names(expr)
        assert used, f"panel {title!r} queries no votesvc metric: {expr}"
        assert used <= exported, f"panel {title!r}: {used - exported} are not exported"


def test_every_metric_votesvc_exports_is_on_the_dashboard() -> None:
    charted = {name for _, expr in expressions() for name in queried_names(expr)}
    for family in exported_families():
        assert any(name.startswith(family) for name in charted), f"{family} is on no panel"


def test_every_query_is_promql(tmp_path: Path) -> None:
    """promtool parses each query, written as a recording rule."""
    promtool = require("promtool", "Debian's prometheus: deploy/system-packages.sh test, as root")
    recorded = []
    for n, (_, expr) in enumerate(expressions()):
        for variable, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(variable, value)
        recorded.append({"record": f"dashboard:query_{n}", "expr": expr})
    rules = tmp_path / "dashboard-queries.yaml"
    rules.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": recorded}]}))
    assert f"SUCCESS: {len(recorded)} rules found" in run(promtool, "check", "rules", rules)


def test_the_dashboard_asks_for_its_prometheus_data_source() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    [variable] = [v for v in dashboard["templating"]["list"] if v["type"] == "datasource"]
    assert variable["query"] == "prometheus"
    for panel in panels(dashboard):
        if panel.get("targets"):
            assert panel["datasource"]["uid"] == f"${{{variable['name']}}}", panel["title"]
    ids = [panel["id"] for panel in panels(dashboard)]
    assert len(ids) == len(set(ids))


def test_provisioning_loads_the_dashboard_where_compose_mounts_it() -> None:
    providers = yaml.safe_load((GRAFANA / "provisioning/dashboards/votesvc.yaml").read_text())
    [provider] = providers["providers"]
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    mounts = dict(volume.split(":")[:2] for volume in compose["services"]["grafana"]["volumes"])
    assert mounts["./grafana/dashboards"] == provider["options"]["path"]
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"
    sources = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yaml").read_text())
    [source] = sources["datasources"]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    assert "prometheus" in compose["services"]

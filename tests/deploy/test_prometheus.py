"""deploy/prometheus/: the alert rules, their unit tests and compose's Prometheus config,
checked by promtool; every metric a rule reads is one votesvc exports."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.deploy.metricnames import exported_names, queried_names
from tests.deploy.tools import DEPLOY, require, run

PROMETHEUS = DEPLOY / "prometheus"
# What the deploy issue asks to be alerted on, by the rule that does it.
REQUIRED = {
    "VotesvcVoteErrors",  # vote error ratio
    "VotesvcVoteLatencyHigh",  # vote p99 over target
    "VotesvcFlushLagHigh",  # flush lag over 10 s
    "VotesvcBacklogGrowing",  # backlog growing for 5 minutes
    "VotesvcRedisErrors",
    "VotesvcRedisMemoryHigh",  # over 80 % of maxmemory
    "VotesvcNoFlusherAlive",
    "VotesvcNotReady",
}


@pytest.fixture
def promtool() -> str:
    return require("promtool", "Debian's prometheus: deploy/system-packages.sh test, as root")


def rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load((PROMETHEUS / "alerts.yaml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_the_alert_rules_pass_promtool(promtool: str) -> None:
    out = run(promtool, "check", "rules", PROMETHEUS / "alerts.yaml")
    assert f"SUCCESS: {len(rules())} rules found" in out


def test_every_alert_fires_and_clears_in_promtools_unit_tests(promtool: str) -> None:
    run(promtool, "test", "rules", "alerts.test.yaml", cwd=PROMETHEUS)
    tests = yaml.safe_load((PROMETHEUS / "alerts.test.yaml").read_text())["tests"]
    fired: set[str] = set()
    cleared: set[str] = set()
    for case in tests:
        seen_firing: set[str] = set()
        for check in sorted(case["alert_rule_test"], key=lambda c: _minutes(c["eval_time"])):
            name = check["alertname"]
            if check.get("exp_alerts"):
                seen_firing.add(name)
            elif name in seen_firing:
                cleared.add(name)  # quiet again after firing, in the same series
        fired |= seen_firing
    names = {rule["alert"] for rule in rules()}
    assert names - fired == set(), "alerts that no test fires"
    assert names - cleared == set(), "alerts that no test sees clear again"


def _minutes(text: str) -> float:
    return float(text.removesuffix("m")) if text.endswith("m") else float(text) / 60


def test_the_issue_s_alerts_are_all_there_with_a_severity() -> None:
    names = {rule["alert"] for rule in rules()}
    assert REQUIRED - names == set()
    for rule in rules():
        assert rule["labels"]["severity"] in {"page", "ticket"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]


def test_the_rules_read_only_metrics_that_votesvc_exports() -> None:
    exported = exported_names()
    for rule in rules():
        used = queried_names(rule["expr"])
        assert used, f"{rule['alert']} reads no votesvc metric"
        assert used <= exported, f"{rule['alert']}: {used - exported} are not exported"


def test_compose_s_prometheus_config_passes_promtool(promtool: str) -> None:
    out = run(promtool, "check", "config", PROMETHEUS / "prometheus.yml")
    assert "SUCCESS: 1 rule files found" in out

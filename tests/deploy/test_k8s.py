"""deploy/k8s/: plain manifests that `kubernetes-validate --strict` takes, and that hang
together: probes on the right paths, a grace period longer than the pause plus votesvc's
drain, selectors that select, Secret keys that exist, policies that let the pods in."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.tools import DEPLOY, REPO, documented_settings, require, run
from votesvc.campaign import parse_campaign

K8S = DEPLOY / "k8s"
FILES = sorted([*K8S.glob("*.yaml"), K8S / "secret.yaml.example", *K8S.glob("jobs/*.yaml")])
# The oldest Kubernetes these manifests claim; None: the newest kubernetes-validate knows.
VERSIONS = ("1.29.0", None)


def manifests() -> dict[tuple[str, str], dict[str, Any]]:
    """(kind, name) -> manifest, from every file."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for path in FILES:
        for doc in yaml.safe_load_all(path.read_text()):
            key = (doc["kind"], doc["metadata"]["name"])
            assert key not in found, f"{key} twice"
            found[key] = doc
    return found


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def container(workload: dict[str, Any]) -> dict[str, Any]:
    only: dict[str, Any]
    [only] = pod_spec(workload)["containers"]  # one process per pod
    return only


def drain_seconds() -> int:
    """uvicorn's graceful shutdown, as ``votesvc serve`` sets it."""
    match = re.search(r"timeout_graceful_shutdown=(\d+)", (REPO / "votesvc/cli.py").read_text())
    assert match is not None
    return int(match[1])


@pytest.mark.parametrize("version", VERSIONS, ids=["oldest", "newest"])
def test_kubernetes_validate_strict(version: str | None) -> None:
    tool = require("kubernetes-validate", "the dev extra: pip install -e '.[dev]'")
    chosen = ["--kubernetes-version", version] if version else []
    out = run(tool, "--strict", *chosen, *FILES)
    assert out.count(" passed for resource ") == len(manifests())


def test_the_api_deployment() -> None:
    api = manifests()[("Deployment", "votesvc-api")]
    pod = pod_spec(api)
    main = container(api)
    assert api["spec"]["strategy"]["type"] == "Recreate"  # never two versions at once
    assert main["args"][0] == "serve"
    assert "--workers" not in main["args"]  # scale with replicas
    assert main["args"][main["args"].index("--host") + 1] == "0.0.0.0"
    assert main["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert main["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert main["startupProbe"]["httpGet"]["path"] == "/healthz"
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(main["resources"][kind])
    pause = main["lifecycle"]["preStop"]["exec"]["command"]
    assert pause[0] == "sleep"
    assert pod["terminationGracePeriodSeconds"] > int(pause[1]) + drain_seconds()
    env = {item["name"]: item for item in main["env"]}
    assert env["VOTESVC_FLUSH_IN_SERVE"]["value"] == "false"
    assert "VOTESVC_DATABASE_URL" not in env  # the API never opens the ledger
    annotations = api["spec"]["template"]["metadata"]["annotations"]
    ports = {port["name"]: port["containerPort"] for port in main["ports"]}
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) == ports["metrics"]
    assert main["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True


def test_the_flusher_deployment() -> None:
    flusher = manifests()[("Deployment", "votesvc-flusher")]
    main = container(flusher)
    assert main["args"] == ["flush"]
    assert flusher["spec"]["replicas"] >= 2  # one can die: a survivor claims its entries
    env = {item["name"] for item in main["env"]}
    assert {"VOTESVC_SECRET", "VOTESVC_REDIS_URL", "VOTESVC_DATABASE_URL"} <= env
    assert flusher["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"] == "9100"


def test_autoscaler_budget_and_service_select_the_api_pods() -> None:
    found = manifests()
    api = found[("Deployment", "votesvc-api")]
    labels = api["spec"]["template"]["metadata"]["labels"]
    hpa = found[("HorizontalPodAutoscaler", "votesvc-api")]
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"]["name"] == "votesvc-api"
    [metric] = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert "replicas" not in api["spec"]  # the autoscaler owns the count
    pdb = found[("PodDisruptionBudget", "votesvc-api")]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    service = found[("Service", "votesvc-api")]
    assert service["spec"]["selector"].items() <= labels.items()
    [port] = service["spec"]["ports"]
    assert port["targetPort"] == "http"


def test_secret_and_configmap_hold_what_the_pods_read() -> None:
    found = manifests()
    secret = found[("Secret", "votesvc")]["stringData"]
    assert set(secret) == {"VOTESVC_SECRET", "VOTESVC_REDIS_URL", "VOTESVC_DATABASE_URL"}
    assert secret["VOTESVC_REDIS_URL"].startswith("redis://votesvc:")  # the ACL user
    campaign = found[("ConfigMap", "votesvc-campaign")]["data"]["campaign.toml"]
    assert parse_campaign(campaign).nominees
    known = documented_settings()
    for (kind, name), doc in found.items():
        if kind not in {"Deployment", "Job"}:
            continue
        main = container(doc)
        for item in main.get("env", []):
            assert item["name"] in known, f"{name}: {item['name']} is no votesvc setting"
            ref = item.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                assert ref["name"] == "votesvc"
                assert ref["key"] in secret
        mounts = {mount["name"]: mount["mountPath"] for mount in main["volumeMounts"]}
        assert mounts["campaign"] == "/etc/votesvc"  # the image's VOTESVC_CAMPAIGN's dir
        assert mounts["data"] == "/var/lib/votesvc"  # the image's VOTESVC_DATA_DIR


def test_network_policies_let_in_exactly_votesvc_s_pods() -> None:
    found = manifests()
    pods = {
        component: found[("Deployment", f"votesvc-{component}")]["spec"]["template"]["metadata"][
            "labels"
        ]
        for component in ("api", "flusher")
    }
    pods["admin"] = found[("Job", "votesvc-restore")]["spec"]["template"]["metadata"]["labels"]

    def admitted(policy: dict[str, Any], port: int) -> set[str]:
        out = set()
        for rule in policy["spec"]["ingress"]:
            if port not in {p["port"] for p in rule["ports"]}:
                continue
            for source in rule["from"]:
                selector = source.get("podSelector")
                if selector is None:
                    continue
                out |= {name for name, labels in pods.items() if _selects(selector, labels)}
        return out

    redis = found[("NetworkPolicy", "votesvc-redis")]
    assert admitted(redis, 6379) == {"api", "flusher", "admin"}
    postgres = found[("NetworkPolicy", "votesvc-postgres")]
    assert admitted(postgres, 5432) == {"flusher", "admin"}


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expression in selector.get("matchExpressions", []):
        assert expression["operator"] == "In"
        if labels.get(expression["key"]) not in expression["values"]:
            return False
    return bool(selector)


def test_kubectl_apply_of_the_directory_skips_the_placeholders_and_the_job() -> None:
    applied = {path.name for path in K8S.iterdir() if path.suffix in {".yaml", ".yml", ".json"}}
    assert "secret.yaml.example" not in applied
    assert all(Path(name).suffix for name in applied)
    assert (K8S / "jobs" / "restore.yaml").exists()  # a subdirectory: not applied with -f k8s/

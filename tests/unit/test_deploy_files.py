"""The deployment files say what they must, and validate against the schemas of what runs them (Kubernetes'
API, Grafana's dashboard schema). The image and the compose stack run for real in tests/container."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]


def load_all(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def test_compose_stack() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"auction", "redis", "vllm", "prometheus", "grafana"}
    assert services["auction"]["environment"]["REDIS_URL"] == "redis://redis:6379/0"
    assert services["auction"]["depends_on"]["redis"]["condition"] == "service_healthy"
    assert "--appendonly" in services["redis"]["command"]
    assert services["vllm"]["profiles"] == ["gpu"]
    assert services["prometheus"]["profiles"] == services["grafana"]["profiles"] == ["monitoring"]
    for name in ("prometheus", "grafana"):
        for volume in services[name]["volumes"]:
            assert (ROOT / volume.split(":")[0]).exists(), volume


def test_kubernetes_manifests() -> None:
    kustomization = yaml.safe_load((ROOT / "deploy/k8s/kustomization.yaml").read_text())
    docs = [doc for name in kustomization["resources"] for doc in load_all(ROOT / "deploy/k8s" / name)]
    kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert {
        ("Deployment", "auction"),
        ("StatefulSet", "vllm"),
        ("StatefulSet", "redis"),
        ("Service", "auction"),
    } <= kinds
    auction = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "auction")
    container = auction["spec"]["template"]["spec"]["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["resources"]["requests"]
    env = {e["name"]: e for e in container["env"]}
    assert env["AUCTION_ENGINE"]["value"] == "remote"
    assert "secretKeyRef" in env["AUCTION_SECRET_KEY"]["valueFrom"]
    vllm = next(d for d in docs if d["kind"] == "StatefulSet" and d["metadata"]["name"] == "vllm")
    assert vllm["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1


def test_dockerfile_targets_and_user() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "AS cpu" in dockerfile
    assert "AS gpu" in dockerfile
    assert dockerfile.count("USER 10001") == 2
    assert dockerfile.count("HEALTHCHECK") == 2


# The validators `make lint` runs (scripts/check_deploy.sh), shown to reject a broken copy: a check that passes
# everything would be no check.
def _check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(ROOT / "scripts" / "check_deploy.sh"), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        check=False,
    )


def test_kubernetes_manifests_validate_strictly_and_a_broken_copy_fails(tmp_path: Path) -> None:
    assert _check("k8s", str(ROOT / "deploy/k8s")).returncode == 0
    broken = tmp_path / "k8s"
    shutil.copytree(ROOT / "deploy/k8s", broken)
    docs = load_all(broken / "auction.yaml")
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"  # a typo'd field
    (broken / "auction.yaml").write_text(yaml.safe_dump_all(docs))
    result = _check("k8s", str(broken))
    assert result.returncode != 0, result
    assert "imagePullPolicyy" in result.stdout + result.stderr, result


def test_grafana_dashboard_matches_grafanas_schema_and_a_broken_copy_fails(tmp_path: Path) -> None:
    dashboard = ROOT / "deploy/grafana/dashboards/llm-auction.json"
    assert _check("grafana", str(dashboard)).returncode == 0
    data = json.loads(dashboard.read_text())
    data["panels"][0]["gridPos"]["wide"] = 24  # no such key in Grafana's GridPos
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(data))
    result = _check("grafana", str(broken))
    assert result.returncode != 0, result
    assert "wide" in result.stdout + result.stderr, result
    data = json.loads(dashboard.read_text())
    data["graphTooltip"] = 7  # DashboardCursorSync is 0, 1 or 2
    broken.write_text(json.dumps(data))
    result = _check("grafana", str(broken))
    assert result.returncode != 0, result
    assert "DashboardCursorSync" in result.stdout + result.stderr, result

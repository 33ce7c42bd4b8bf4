"""The deployment files we cannot run here (no Docker engine, no cluster) at least say what they must."""

from __future__ import annotations

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

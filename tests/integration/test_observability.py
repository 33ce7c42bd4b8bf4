"""Metrics, dashboard, alerts and logs checked against the real thing: a real Prometheus (Debian's package)
scraping the real service under a little traffic; every PromQL expression of the Grafana dashboard and of the
alert rules must evaluate without error and return data."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import yaml

from service.storage.redis import free_port
from tests.integration.conftest import ROOT, Server, catalog_request, wait_until

pytestmark = pytest.mark.engine

DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "llm-auction.json"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
PROMETHEUS_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
THRESHOLD = re.compile(r"^(?P<signal>.+?)\s*(?:>|<|>=|<=|==|!=)\s*[-+0-9.e]+\s*$", re.DOTALL)


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    assert binary, "promtool not found: `make test` installs Debian's prometheus package"
    return subprocess.run([binary, *args], capture_output=True, text=True, check=False)


def test_committed_prometheus_config_and_rules_are_valid() -> None:
    config = promtool("check", "config", str(PROMETHEUS_CONFIG))
    assert config.returncode == 0, config.stdout + config.stderr
    rules = promtool("check", "rules", str(ALERTS))
    assert rules.returncode == 0, rules.stdout + rules.stderr
    assert "SUCCESS: 8 rules found" in rules.stdout


@pytest.fixture(scope="module")
def prometheus(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = shutil.which("prometheus")
    assert binary, "prometheus not found: `make test` installs Debian's prometheus package"
    workdir = tmp_path_factory.mktemp("prometheus")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(ALERTS)],
        "scrape_configs": [
            {"job_name": "llm-auction", "static_configs": [{"targets": [server.base_url.split("//")[1]]}]}
        ],
    }
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(workdir / "prometheus.log").open("wb"),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        assert wait_until(lambda: _ready(url), seconds=30), (workdir / "prometheus.log").read_text()[-2000:]
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/-/ready", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def query(url: str, expr: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{url}/api/v1/query", params={"query": expr}, timeout=10)
    body = response.json()
    assert body["status"] == "success", f"{expr}: {body}"
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


@pytest.fixture(scope="module")
def traffic(
    prometheus: str, server: Server, catalog: dict[str, Any], exposed_auction: tuple[dict[str, Any], dict[str, Any]]
) -> str:
    """A little of everything, spread over a few scrapes."""
    with httpx.Client(base_url=server.base_url, timeout=120) as http:
        for round_ in range(3):
            request = catalog_request(catalog, query_index=20 + round_, samples=2, max_tokens=8)
            for _ in range(2):  # the repeat is a sample-cache hit
                assert http.post("/v1/auctions", json=request).status_code == 200
            assert http.post("/v1/auctions", json={"query": ""}).status_code == 422
            assert http.get(exposed_auction[1]["ads"][0]["click_url"]).status_code == 302
            assert http.get("/c/forged").status_code == 404
            time.sleep(1.5)
    # Enough scrapes after the traffic for rate() over 1m to see it.
    assert wait_until(lambda: bool(query(prometheus, 'count_over_time(up{job="llm-auction"}[1m]) >= 6')), 30)
    time.sleep(2)
    return prometheus


def dashboard_expressions() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    out = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            out.append((panel["title"], target["expr"].replace("$__rate_interval", "1m")))
    return out


@pytest.mark.parametrize(("panel", "expr"), dashboard_expressions(), ids=[p for p, _ in dashboard_expressions()])
def test_every_dashboard_expression_returns_data(traffic: str, panel: str, expr: str) -> None:
    assert query(traffic, expr), f"panel {panel!r}: no data for {expr}"


def alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(ALERTS.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


@pytest.mark.parametrize("rule", alert_rules(), ids=[r["alert"] for r in alert_rules()])
def test_every_alert_signal_returns_data(traffic: str, rule: dict[str, Any]) -> None:
    match = THRESHOLD.match(rule["expr"])
    assert match, f"{rule['alert']}: expected `<signal> <op> <threshold>`"
    assert query(traffic, match["signal"]), f"{rule['alert']}: no data for {match['signal']}"


def test_rules_evaluate_without_errors_and_a_healthy_service_fires_nothing(traffic: str) -> None:
    assert wait_until(lambda: _all_rules_evaluated(traffic), seconds=20)
    groups = httpx.get(f"{traffic}/api/v1/rules").json()["data"]["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    assert len(rules) == 8
    assert all(rule["health"] == "ok" for rule in rules), [(r["name"], r.get("lastError")) for r in rules]
    firing = [r["name"] for r in rules if r["state"] == "firing"]
    assert firing == [], firing


def _all_rules_evaluated(url: str) -> bool:
    groups = httpx.get(f"{url}/api/v1/rules").json()["data"]["groups"]
    return all(rule.get("lastEvaluation", "").startswith("20") for g in groups for rule in g["rules"])


def test_logs_are_json_lines_with_request_and_auction_ids(server: Server, client: httpx.Client) -> None:
    response = client.post(
        "/v1/auctions",
        json={"query": "Hello there", "user": {"id": "u"}, "ads": [], "options": {"max_tokens": 4, "samples": 1}},
        headers={"X-Request-ID": "log-check-1"},
    )
    auction_id = response.json()["auction_id"]

    def lines() -> list[dict[str, Any]]:
        out = []
        for line in server.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                out.append(json.loads(line))
        return [entry for entry in out if entry.get("request_id") == "log-check-1"]

    assert wait_until(lambda: len(lines()) >= 2)
    ours = lines()
    assert {entry["logger"] for entry in ours} >= {"service.auctions.service", "uvicorn.access"}
    assert all(entry["auction_id"] == auction_id for entry in ours)
    served = next(entry for entry in ours if entry["message"] == "auction served")
    assert served["samples"] == 1
    assert served["exposed"] == []

"""One command for the load test: start the service (embedded defaults, its own Redis data), run Locust headless
against it, write CSV and HTML reports to var/load/, stop the service, exit with Locust's status (non-zero when
the error ratio or p99 latency passes LOAD_MAX_FAIL_RATIO / LOAD_MAX_P99_MS).

    .venv/bin/python scripts/load_test.py [--users 8] [--spawn-rate 2] [--duration 2m]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

from service.devtools.service_process import ServiceStartError, running_service
from service.settings import PROJECT_ROOT


def main(users: int, spawn_rate: float, duration: str) -> int:
    out = PROJECT_ROOT / "var" / "load"
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            with running_service({}, Path(tmp), out / "service.log", startup_timeout_s=300) as service:
                return run_locust(service.base_url, out, users, spawn_rate, duration)
        except ServiceStartError as exc:
            print(exc)
            return 2


def run_locust(url: str, out: Path, users: int, spawn_rate: float, duration: str) -> int:
    locust = [
        sys.executable, "-m", "locust", "-f", str(PROJECT_ROOT / "load_tests" / "locustfile.py"),
        "--headless", "-u", str(users), "-r", str(spawn_rate), "-t", duration, "--host", url,
        "--csv", str(out / "run"), "--html", str(out / "report.html"), "--only-summary",
    ]  # fmt: skip
    code = subprocess.run(locust, cwd=PROJECT_ROOT, check=False).returncode
    metrics = httpx.get(f"{url}/metrics").text
    for line in metrics.splitlines():
        if line.startswith(("adauction_events_total{", "adauction_sample_cache_requests_total{")) and \
                not line.endswith(" 0.0"):  # fmt: skip
            print(line)
    print(f"reports: {out / 'run_stats.csv'}, {out / 'report.html'}")
    return code


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--spawn-rate", type=float, default=2)
    parser.add_argument("--duration", default="2m")
    args = parser.parse_args()
    sys.exit(main(args.users, args.spawn_rate, args.duration))

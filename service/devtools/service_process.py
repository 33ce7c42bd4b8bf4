"""Run the real service (``python -m service serve``) as a child process for an offline job: the IRPO loop, the
audit and the load test talk to it over HTTP exactly as a frontend would."""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from service.settings import PROJECT_ROOT
from service.storage.redis import free_port


class ServiceStartError(RuntimeError):
    pass


@dataclass(frozen=True)
class ServiceProcess:
    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@contextlib.contextmanager
def running_service(
    env: Mapping[str, str], workdir: Path, log_path: Path, startup_timeout_s: float = 600.0
) -> Iterator[ServiceProcess]:
    """Start the service on a free port with ``env`` (AUCTION_* overrides), wait until ready, yield it, stop it
    (SIGTERM: it drains and flushes its event log) on exit unless it already stopped. Its Redis data and spool
    live in ``workdir`` unless ``env`` names a REDIS_URL. ``ServiceStartError`` (with the log's tail) when it
    exits or is not ready in time."""
    port = free_port()
    full_env = {
        **os.environ,
        "PORT": str(port),
        "AUCTION_HOST": "127.0.0.1",
        "AUCTION_SECRET_KEY": secrets.token_urlsafe(32),
        "AUCTION_REDIS_DATA_DIR": str(workdir / "redis"),
        "AUCTION_SPOOL_PATH": str(workdir / "spool" / "events.jsonl"),
        "AUCTION_RATE_LIMIT_PER_MINUTE": "0",  # one client address drives every simulated user
        "AUCTION_LOG_LEVEL": "warning",
        **env,
    }
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "service", "serve"],
            cwd=PROJECT_ROOT,
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    service = ServiceProcess(f"http://127.0.0.1:{port}", process, log_path)
    try:
        deadline = time.monotonic() + startup_timeout_s
        while True:
            if process.poll() is not None:
                raise ServiceStartError(f"the service exited with {process.returncode} during start-up:\n"
                                        f"{service.log_tail()}")  # fmt: skip
            try:
                if httpx.get(f"{service.base_url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise ServiceStartError(f"the service was not ready after {startup_timeout_s} s:\n{service.log_tail()}")
            time.sleep(1)
        yield service
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(120)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

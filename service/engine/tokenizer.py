"""The model's tokenizer and chat template, loaded once from the model folder (or HF name).

Both calls are memoised (LRU by their input): a repeated context — every sample-cache hit, a retry, a bid sweep
with bids out of the prompt — renders the same chat template and tokenizes the same text, which cost 3–5 ms per
auction on the cache-hit path (Jinja rendering plus the fast tokenizer; ``docs/benchmarks.md``)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from service.mechanism.prompt import Message

CACHE_SIZE = 4096


class HFChatTokenizer:
    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer = tokenizer
        self._render = lru_cache(maxsize=CACHE_SIZE)(self._render_uncached)
        self._encode = lru_cache(maxsize=CACHE_SIZE)(self._encode_uncached)

    @classmethod
    def load(cls, model: str) -> HFChatTokenizer:
        from transformers import AutoTokenizer

        return cls(AutoTokenizer.from_pretrained(model))

    def render_chat(self, messages: Sequence[Message]) -> str:
        return self._render(tuple((m["role"], m["content"]) for m in messages))

    def encode(self, text: str) -> list[int]:
        return list(self._encode(text))  # a copy: callers may not change the cached ids

    def _render_uncached(self, messages: tuple[tuple[str, str], ...]) -> str:
        chat = [{"role": role, "content": content} for role, content in messages]
        text = self._tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
        if not isinstance(text, str):
            raise TypeError("chat template did not render to text")
        return text

    def _encode_uncached(self, text: str) -> tuple[int, ...]:
        # The chat template already holds the special tokens; adding BOS again would change the prompt.
        return tuple(self._tokenizer(text, add_special_tokens=False)["input_ids"])

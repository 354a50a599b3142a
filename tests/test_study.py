"""The quality ⇄ performance study: tiers by quality, rank correlation, and the spec construct."""

from __future__ import annotations

from pathlib import Path

from pipeline_kit import compile_spec

from runtime.steps.study import format_study, study_metrics, tiers_by_quality


def test_tiers_are_equal_size_best_first_and_skip_unscored() -> None:
    records = [{"id": f"r{i}", "aggregate": i / 10} for i in range(10)] + [{"id": "x", "aggregate": None}]
    tiers = tiers_by_quality(records, 3)
    assert [len(t) for t in tiers] == [3, 3, 3]
    assert [r["id"] for r in tiers[0]] == ["r9", "r8", "r7"]
    assert all(min(a["aggregate"] for a in tiers[i]) >= max(b["aggregate"] for b in tiers[i + 1])
               for i in range(2))
    assert tiers_by_quality(records[:2], 3) == []


def test_spearman_follows_the_tier_scores() -> None:
    rising = [{"tier": i, "records": 4, "mean_quality": q, "scores": {"domain": s, "probe": p}, "n": {}}
              for i, (q, s, p) in enumerate([(0.9, 60.0, 40.0), (0.6, 50.0, 41.0), (0.3, 40.0, 39.0)], start=1)]
    metrics = study_metrics(rising)
    assert metrics["spearman"]["domain"] == 1.0
    assert metrics["spearman"]["probe"] == 0.5
    flat = [{**r, "scores": {"domain": 50.0}} for r in rising]
    assert study_metrics(flat)["spearman"]["domain"] is None  # undefined, not a fake number
    assert "domain" in format_study(rising)


def test_study_reuses_the_target_settings_and_evaluation_suites() -> None:
    plan = compile_spec(Path("specs/realestate_study.dial"))
    study = plan.step("study.tiers")
    finetune = plan.step("finetune.domain")
    evaluate = plan.step("evaluate.after")
    assert study.inputs == finetune.inputs == ["filter.quality"]
    for key in ("base", "method", "epochs", "lr", "holdout"):
        assert study.params[key] == finetune.params[key]
    assert study.params["general"] == evaluate.params["general"] and study.params["tiers"] == 3

"""The paper's claims on the embedded model, measured against gold references: one table, with n and CIs.

    python bench/experiment_gold.py [--count 130] [--gold-limit 0] [--tasks extract_requirements,customer_intent]
                                    [--best-of-limit 30] [--candidates 4] [--run-dir runs/experiment]
                                    [--teacher DIR|FILE.gguf | --teacher-url URL --teacher-model NAME]
                                    [--out experiment.md] [--json experiment.json] [--skip-best-of]

1. `dialc run specs/realestate_study.dial` at `--count` production prompts: label → quality → LoRA on the kept
   labels → base vs fine-tuned on the gold test set (`--gold-limit` dialogues, 0 = all 84) and the 316-item
   general probe → the target retrained on three equal quality tiers (≥ 30 records each at the default count),
   each scored on the same gold items and probe. The retention gate is computed here from the rows (the
   spec's `max_drop`); the run itself does not stop on it, so every figure is measured.
2. Best-of-N vs single labels on `--best-of-limit` gold dialogues (bench/experiment_best_of_n.py's check:
   candidate 0 is the single label, so both are measured on the same prompts), and whether each quality
   dimension predicts correctness.
3. One markdown report: every figure with its n, its 95% bootstrap CI, what it is scored against and a verdict
   in words, per claim a sentence derived from those intervals, and the wall time of each part.

The labeller is the spec's model (the embedded SmolLM2-135M, also the student) unless `--teacher` names a local
HF directory or GGUF file, or `--teacher-url`/`--teacher-model` an OpenAI-compatible server: then the teacher
labels (production labels and best-of-N candidates) while the student, the judge and every evaluated model stay
the embedded model. The teacher is declared in a small spec written to `runs/experiment_teacher.dial`
(same folder depth as specs/, so the included spec's relative paths hold).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

STUDY_SPEC = Path("specs/realestate_study.dial")
TEACHER_SPEC = Path("runs/experiment_teacher.dial")
GATE = 2.0  # the shipped spec's max_drop on the general probe, in points


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=130, help="production prompts (130: tiers of ≥ 30 records)")
    parser.add_argument("--gold-limit", type=int, default=0, help="gold dialogues scored per model (0 = all 84)")
    parser.add_argument("--general-limit", type=int, default=0, help="general items per suite (0 = all 316)")
    parser.add_argument("--tasks", default=None, help="comma-separated gold tasks (default: the test set's)")
    parser.add_argument("--best-of-limit", type=int, default=30, help="gold dialogues for best-of-N (0 = all)")
    parser.add_argument("--candidates", type=int, default=4)
    parser.add_argument("--skip-best-of", action="store_true")
    parser.add_argument("--per-task", action="store_true", help="cut the quality tiers within each task, so every "
                        "tier holds the same task mix (study.per_task)")
    parser.add_argument("--run-dir", type=Path, default=Path("runs/experiment"))
    parser.add_argument("--teacher", default=None, help="labeller: a local HF directory or GGUF file")
    parser.add_argument("--teacher-url", default=None, help="labeller: an OpenAI-compatible server's base URL")
    parser.add_argument("--teacher-model", default=None, help="the served model's name (with --teacher-url)")
    parser.add_argument("--out", type=Path, default=None, help="write the markdown report here too")
    parser.add_argument("--json", type=Path, default=None, help="write every figure here")
    parser.add_argument("--reuse", action="store_true", help="report on the earlier run in --run-dir and its saved "
                        "best-of-N candidates: run nothing, label nothing (step times come from that run)")
    args = parser.parse_args()
    if args.teacher and args.teacher_url:
        parser.error("--teacher and --teacher-url exclude each other")
    if args.teacher_url and not args.teacher_model:
        parser.error("--teacher-url needs --teacher-model (the model name the server expects)")
    return args


# ---- the pipeline run ----------------------------------------------------------------------------------------


def teacher_spec(args: argparse.Namespace) -> tuple[Path, list[str]]:
    """The spec to run and the --set overrides that make the teacher the labeller (none without a teacher)."""
    if not (args.teacher or args.teacher_url):
        return STUDY_SPEC, []
    if args.teacher_url:
        model = (f'backend = openai\n  path = "{args.teacher_model}"\n  base_url = "{args.teacher_url}"\n'
                 "  timeout = 600")
    else:
        model = f'backend = transformers\n  path = "{Path(args.teacher).resolve()}"'
    TEACHER_SPEC.parent.mkdir(parents=True, exist_ok=True)
    TEACHER_SPEC.write_text(f'// written by bench/experiment_gold.py: the labeller of the experiment\n'
                            f'include "../{STUDY_SPEC.as_posix()}"\n\nmodel teacher {{\n  {model}\n'
                            f'  temperature = 0.7\n  max_tokens = 160\n}}\n', encoding="utf-8")
    return TEACHER_SPEC, ["label.labels.model=teacher"]


def pipeline_sets(args: argparse.Namespace) -> list[str]:
    sets = [f"sample.prompts.count={args.count}", f"evaluate.after.gold_limit={args.gold_limit}",
            f"study.tiers.gold_limit={args.gold_limit}", "evaluate.after.max_drop=100",
            f"evaluate.after.limit={args.general_limit}"]
    if args.tasks:
        sets.append(f"testset.gold.tasks=[{args.tasks}]")
    if getattr(args, "per_task", False):
        sets.append("study.tiers.per_task=true")
    return sets


def dialc_command(spec: Path, sets: list[str], run_dir: Path) -> list[str]:
    return [sys.executable, "-m", "dialc", "run", str(spec), "--run-dir", str(run_dir),
            *[part for s in sets for part in ("--set", s)]]


def run_pipeline(command: list[str]) -> float:
    print("$", " ".join(command[2:]), flush=True)
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, check=False)
    if done.returncode not in (0, 1):  # 1: a step failed; the results say which, and the report shows it
        raise SystemExit(f"dialc run exited with {done.returncode}")
    return time.perf_counter() - started


def load_run(run_dir: Path) -> dict[str, Any]:
    """run_results.json's steps, and the evaluation's eval.json."""
    from dialc_runtime.engine.layout import RunLayout

    layout = RunLayout(ROOT / run_dir)
    results = json.loads(layout.results.read_text(encoding="utf-8"))
    steps = {s["id"]: s for s in results["steps"]}
    evaluate = steps.get("evaluate.after") or {}
    if evaluate.get("status") not in ("ok", "cached"):
        raise SystemExit(f"evaluate.after did not finish: {evaluate.get('status')} {evaluate.get('message', '')}")
    report = json.loads((layout.artifact_dir(evaluate["key"]) / "eval.json").read_text(encoding="utf-8"))
    return {"steps": steps, "eval": report}


# ---- figures --------------------------------------------------------------------------------------------------


def fmt_ci(ci: Any) -> str:
    return f"[{ci[0]:+.1f}, {ci[1]:+.1f}]" if ci else "–"


def score_ci(value: float, ci: Any) -> str:
    return f"{value:.1f} [{ci[0]:.1f}, {ci[1]:.1f}]" if ci else f"{value:.1f}"


def evaluation_table(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["| figure | scored against | n | base [95% CI] | fine-tuned [95% CI] | change [95% CI] | verdict |",
             "|---|---|---|---|---|---|---|"]
    vs = {"gold": "gold", "general": "answer key", "agreement": "the labeller's answers"}
    for row in rows:
        better = " (lower is better)" if row.get("better") == "lower" else ""
        lines.append(f"| {row['suite']}{better} | {vs.get(row.get('type', ''), '?')} | {row.get('n', '–')} | "
                     f"{score_ci(row['before'], row.get('before_ci'))} | {score_ci(row['after'], row.get('after_ci'))}"
                     f" | {row['delta']:+.1f} {fmt_ci(row.get('delta_ci'))} | {row.get('verdict', '')} |")
    return lines


def paired(before: list[float], after: list[float]) -> dict[str, Any] | None:
    """after − before in points with a paired bootstrap CI and its verdict (None when the items differ)."""
    from dialc_runtime.evaluate.gold_metrics import verdict
    from dialc_runtime.evaluate.scoring import bootstrap_diff_ci

    if not before or len(before) != len(after):
        return None
    low, high = bootstrap_diff_ci(before, after)
    delta = 100 * (sum(after) / len(after) - sum(before) / len(before))
    ci = (100 * low, 100 * high)
    return {"delta": delta, "ci": ci, "verdict": verdict(ci)}


def base_items(report: dict[str, Any], model: str, suite: str) -> list[float]:
    result = report["results"].get(model, {}).get(suite)
    return list(result["items"][result["primary"]]) if result else []


def study_table(tiers: list[dict[str, Any]], spearman: dict[str, Any], report: dict[str, Any],
                mix: list[dict[str, int]]) -> tuple[list[str], dict[str, Any]]:
    """Per tier: size, task mix, quality, each suite's score [CI]; then top − bottom and each tier − base, paired."""
    suites = [s for s in tiers[0]["scores"]] if tiers else []
    head = "| tier | records (by task) | quality mean (min–max) | " + " | ".join(suites) + " |"
    lines = [head, "|" + "---|" * (3 + len(suites))]
    for name, model in (("base (no fine-tune)", "before"), ("all kept labels (the target)", "after")):
        cells = []
        for suite in suites:
            result = report["results"].get(model, {}).get(suite)
            cells.append(f"{100 * result['metrics'][result['primary']]:.1f}" if result else "–")
        lines.append(f"| {name} | – | – | " + " | ".join(cells) + " |")
    for index, tier in enumerate(tiers):
        cells = [score_ci(tier["scores"][s], tier["ci"].get(s)) + f" (n {tier['n'][s]})" for s in suites]
        tasks = ", ".join(f"{task} {count}" for task, count in mix[index].items()) if index < len(mix) else ""
        lines.append(f"| {tier['tier']} | {tier['records']}" + (f" ({tasks})" if tasks else "")
                     + f" | {tier['mean_quality']:.3f} ({tier['min_quality']:.3f}–{tier['max_quality']:.3f}) | "
                     + " | ".join(cells) + " |")
    lines.append("| Spearman ρ (tier quality vs score) | | | "
                 + " | ".join("–" if spearman.get(s) is None else f"{spearman[s]:+.2f}" for s in suites) + " |")
    comparisons: dict[str, Any] = {}
    if len(tiers) >= 2:
        top, bottom = tiers[0], tiers[-1]
        for suite in suites:
            comparisons[f"top − bottom · {suite}"] = paired(bottom["items"][suite], top["items"][suite])
            for tier in tiers:
                comparisons[f"tier {tier['tier']} − base · {suite}"] = paired(base_items(report, "before", suite),
                                                                            tier["items"][suite])
    lines += ["", "| paired change | points [95% CI] | verdict |", "|---|---|---|"]
    lines += [f"| {name} | {c['delta']:+.1f} {fmt_ci(c['ci'])} | {c['verdict']} |"
              for name, c in comparisons.items() if c]
    return lines, comparisons


def best_of_table(best_of: dict[str, Any]) -> list[str]:
    """N = 1 vs best of N as a markdown table (the rows of quality_gold's text table), overall and per task."""
    from dialc_runtime.evaluate.quality_gold import BEST_OF_METRICS, best_of_change

    n = best_of["n"]
    lines = [f"| kept labels on the same gold prompts | N = 1 | N = {n} | change [95% CI] |", "|---|---|---|---|"]

    def rows(figures: dict[str, Any], task: str) -> None:
        one, best = figures["single"], figures["best"]
        for metric, name, scale in BEST_OF_METRICS:
            a, b = one.get(metric), best.get(metric)
            if a is None or b is None:
                continue
            lines.append(f"| {task}{name} ({one['prompts']} prompts) | {scale * a:.1f} | {scale * b:.1f} | "
                         f"{best_of_change(figures, metric, scale)} |")

    rows(best_of, "")
    for task, figures in (best_of.get("tasks") or {}).items():
        rows(figures, f"{task}: ")
    return lines


def claims(rows: list[dict[str, Any]], comparisons: dict[str, Any], best_of: dict[str, Any] | None) -> list[str]:
    """One sentence per claim of the method, each derived from the intervals above (never written by hand)."""
    out = []
    overall = next((r for r in rows if r.get("key", "").startswith("gold.overall")), None)
    if overall:
        out.append(f"* Fine-tuning raises domain skill (gold, overall, n {overall['n']}): {overall['verdict']} "
                   f"({overall['delta']:+.1f} points, CI {fmt_ci(overall.get('delta_ci'))}).")
    for row in rows:
        if row.get("type") == "general":
            gate = "passed" if -row["delta"] <= GATE else "failed"
            out.append(f"* No collapse of general skill ({row['suite']}, n {row['n']}): {row['verdict']} "
                       f"({row['delta']:+.1f}, CI {fmt_ci(row.get('delta_ci'))}); retention gate "
                       f"(max_drop {GATE:g}) {gate}.")
    key = next((k for k in comparisons if k.startswith("top − bottom · gold/overall")), None)
    if key and comparisons[key]:
        c = comparisons[key]
        out.append(f"* Better data gives a better model (top vs bottom quality tier, gold overall): {c['verdict']} "
                   f"({c['delta']:+.1f} points, CI {fmt_ci(c['ci'])}).")
    if best_of:
        ci = best_of["delta_ci"].get("accuracy")
        from dialc_runtime.evaluate.gold_metrics import verdict

        change = 100 * (best_of["best"]["accuracy"] - best_of["single"]["accuracy"])
        out.append(f"* Best-of-{best_of['n']} labels are more often correct than single labels: "
                   f"{verdict([100 * x for x in ci]) if ci else 'no interval'} ({change:+.1f} points, CI "
                   f"{fmt_ci([100 * x for x in ci]) if ci else '–'}).")
    return out


def tier_tasks(run_dir: Path, steps: dict[str, Any], spec: Path, sets: list[str]) -> list[dict[str, int]]:
    """Per tier, its records by task: the study's own tiers (its pool, hold-out and order) rebuilt from the
    filter's stored records, since tiers cut by one aggregate over all tasks can differ in their task mix (an
    evolved task `t~op1` counts as `t`)."""
    from collections import Counter

    from dialc.cli.common import load_plan
    from dialc_runtime.engine.store import Store
    from dialc_runtime.steps.study import base_task, tiers_by_quality, training_pool

    study = load_plan(spec, sets).step("study.tiers").params
    store = Store.existing(ROOT / run_dir)
    if store is None or "filter.quality" not in steps:
        return []
    try:
        records = [record for _, record in store.records(steps["filter.quality"]["key"])]
    finally:
        store.close()
    tiers = tiers_by_quality(training_pool(records, study), study.tiers, study.per_task)  # type: ignore[arg-type]
    return [dict(sorted(Counter(base_task(r) for r in tier).items())) for tier in tiers]


# ---- best-of-N --------------------------------------------------------------------------------------------------


def run_best_of(args: argparse.Namespace, spec: Path, sets: list[str]) -> tuple[Any, float]:
    """The quality-vs-gold check with N candidates (experiment_best_of_n's), saved for --reuse."""
    from experiment_best_of_n import check_params, progress

    from dialc_runtime.engine.context import BackendPool
    from dialc_runtime.evaluate.quality_gold import QualityCheck, best_of_figures, dimension_figures, run_check

    params = check_params(spec, args.best_of_limit, args.candidates, args.tasks, sets)
    saved = ROOT / args.run_dir / "best_of.json"
    if args.reuse and saved.is_file():
        data = json.loads(saved.read_text(encoding="utf-8"))
        rows = data["records"]
        names = [d.name for d in params.dimensions]
        return QualityCheck(rows, dimension_figures(rows, names, params.seed),
                            best_of_figures(rows, params.seed)), float(data["seconds"])
    started = time.perf_counter()
    check = run_check(params, BackendPool().get, progress)
    seconds = time.perf_counter() - started
    saved.parent.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps({"seconds": seconds, "records": check.records}, ensure_ascii=False, default=str),
                     encoding="utf-8")
    return check, seconds


def made_seconds(step: dict[str, Any]) -> float:
    """What making the step's output took, in the run that made it (a cached step's own time is ~0)."""
    return float((step.get("made") or {}).get("seconds") or step.get("seconds") or 0.0)


def step_times(steps: dict[str, Any]) -> str:
    """The steps that took 30 s or more to make, with their wall time."""
    return ", ".join(f"{name} {made_seconds(step):.0f} s" for name, step in steps.items()
                     if made_seconds(step) >= 30)


# ---- main -------------------------------------------------------------------------------------------------------


def main() -> None:
    args = parse_args()
    spec, teacher_sets = teacher_spec(args)
    sets = pipeline_sets(args) + teacher_sets
    command = dialc_command(spec, sets, args.run_dir)
    wall = 0.0 if args.reuse else run_pipeline(command)
    run = load_run(args.run_dir)
    steps, report = run["steps"], run["eval"]
    made = sum(made_seconds(step) for step in steps.values())
    study = (steps.get("study.tiers") or {}).get("metrics") or {}
    check, best_seconds = (None, 0.0) if args.skip_best_of else run_best_of(args, spec, teacher_sets)

    from dialc_runtime.quality.predictive import format_table

    labeller = args.teacher or (f"{args.teacher_model} at {args.teacher_url}" if args.teacher_url
                                else "the embedded SmolLM2-135M (also the student)")
    out = [f"## Gold experiment: `python bench/experiment_gold.py {' '.join(sys.argv[1:])}`".rstrip(), "",
           f"Labeller: {labeller}. Pipeline `{' '.join(command[2:])}`: its steps took {made / 60:.1f} min to make"
           + (f" (this call {wall / 60:.1f} min)" if wall else "") + f" ({step_times(steps)})."
           + (f" Best-of-{args.candidates}: {best_seconds / 60:.1f} min." if check else ""),
           f"Production prompts {args.count}; kept after quality "
           f"{((steps.get('filter.quality') or {}).get('metrics') or {}).get('kept', '?')}.", "",
           "### Base vs fine-tuned (on the kept labels)", "", *evaluation_table(report["rows"]), ""]
    comparisons: dict[str, Any] = {}
    if study.get("tiers"):
        mix = tier_tasks(args.run_dir, steps, spec, sets)
        lines, comparisons = study_table(study["tiers"], study.get("spearman") or {}, report, mix)
        out += ["### Quality tiers: the target retrained on each third of the labels by quality", "", *lines, ""]
    elif "study.tiers" in steps:
        out += [f"Quality-tier study: {steps['study.tiers'].get('status')} {steps['study.tiers'].get('message')}", ""]
    if check is not None:
        out += [f"### Best-of-{args.candidates} vs single labels ({len(check.records)} labels)", "",
                *best_of_table(check.best_of), "", "Does each quality dimension predict correctness?", "", "```",
                format_table(check.dimensions), "```", ""]
    out += ["### What the intervals say", "", *claims(report["rows"], comparisons, check.best_of if check else None)]
    text = "\n".join(out) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    if args.json:
        args.json.write_text(json.dumps({"rows": report["rows"], "study": study, "comparisons": comparisons,
                                         "best_of": check.best_of if check else None,
                                         "dimensions": [d.to_dict() for d in check.dimensions] if check else None,
                                         "wall_s": wall, "best_of_s": best_seconds}, indent=1, ensure_ascii=False,
                                        default=str), encoding="utf-8")


if __name__ == "__main__":
    main()

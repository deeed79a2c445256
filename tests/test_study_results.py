"""The study's statistics, tables and plot on fabricated runs (experiments/study_results.py),
checked against scipy.stats."""

from __future__ import annotations

import csv
import json
import os
import sys

import numpy as np
import pytest
from scipy import stats

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "experiments"))
import study_plan  # noqa: E402
import study_results  # noqa: E402
from study_results import Estimate  # noqa: E402

PASS = "eval/synthetic/pass@1"
REASONING = "eval/synthetic_reasoning/pass@1"
SFT = {"warm_start_steps": 2, "warm_start_batch_size": 8}


def fake_run(run: study_plan.StudyRun, final: dict, finished: bool = True) -> None:
    """A run directory as loop.run leaves it: config.json, metrics.jsonl (the evaluation
    at step 0; an RL arm's two steps of 8 rows with its final evaluation at step 2, a
    supervised phase's totals at step 0) and summary.md when finished."""
    os.makedirs(run.workdir)
    with open(os.path.join(run.workdir, "config.json"), "w") as f:
        json.dump({"train": {"ppo_epochs": 2}}, f)
    if run.arm is not None and run.arm.is_rl:
        step = {"train/updates": 2, "train/sequences": 8, "train/tokens": 100,
                "train/tokens_total": 300, "rollout/align/count": 3}  # fmt: skip
        lines = [{"step": 0, PASS: 0.01, **step}, {"step": 1, **step}, {"step": 2, **final}]
        lines.insert(2, {"step": 1, **step})  # a resumed run logs a step again: counted once
    else:
        totals = {"warm_start/updates": 4, "warm_start/sequences": 32,
                  "warm_start/alignment_sequences": 8, "warm_start/tokens": 250,
                  "warm_start/tokens_total": 900}  # fmt: skip
        lines = [{"step": 0, "warm_start/nll": 1.0, **totals, **final}]
    with open(os.path.join(run.workdir, "metrics.jsonl"), "w") as f:
        f.writelines(json.dumps(line) + "\n" for line in lines)
    if finished:
        with open(os.path.join(run.workdir, "summary.md"), "w") as f:
            f.write("| metric |\n")


def make_study(tmp_path, arms=("sft_continue", "grpo", "coderl_plus"), seeds=(0, 1, 2)):
    return study_plan.Study(
        study_dir=str(tmp_path / "study"), base_flagfile="base.flags", overrides=("--steps=2",),
        sft_overrides=(), coderl_plus_alpha=0.6, arms=tuple(arms), seeds=tuple(seeds),
        sft_settings=SFT,
    )  # fmt: skip


@pytest.mark.parametrize("df", [1, 2, 3, 4, 5, 6, 9, 10, 29, 30, 100])
@pytest.mark.parametrize("q", [0.6, 0.9, 0.975, 0.995])
def test_t_quantile_matches_scipy(q, df):
    assert study_results.t_quantile(q, df) == pytest.approx(stats.t.ppf(q, df), rel=1e-9)


def test_t_quantile_known_values_and_bad_input():
    assert study_results.t_quantile(0.975, 4) == pytest.approx(2.7764451052, abs=1e-9)
    assert study_results.t_quantile(0.975, 1) == pytest.approx(12.7062047362, abs=1e-8)
    with pytest.raises(ValueError, match="df >= 1"):
        study_results.t_quantile(0.975, 0)


def test_mean_and_standard_error():
    values = [0.31, 0.35, 0.28, 0.40, 0.33]
    e = Estimate.of(values)
    assert e.n == 5 and e.mean == pytest.approx(np.mean(values))
    assert e.se == pytest.approx(stats.sem(values))  # ddof 1 / sqrt(n)
    assert Estimate.of([0.5]) == Estimate(1, 0.5, None)
    assert Estimate.of([]) == Estimate(0)


def test_paired_difference_interval_matches_scipy():
    a = {0: 0.52, 1: 0.47, 2: 0.55, 3: 0.50, 4: 0.49, 9: 0.9}  # seed 9: no partner
    b = {0: 0.45, 1: 0.46, 2: 0.50, 3: 0.41, 4: 0.48, 7: 0.1}
    d = [a[s] - b[s] for s in range(5)]
    e = Estimate.paired(a, b)
    low, high = stats.t.interval(0.95, 4, loc=np.mean(d), scale=stats.sem(d))
    assert e.n == 5 and e.mean == pytest.approx(np.mean(d))
    assert (e.low, e.high) == (pytest.approx(low), pytest.approx(high))
    # the same as a one-sample t test of the differences: p < 0.05 iff the interval excludes 0
    assert e.excludes_zero == (
        stats.ttest_rel([a[s] for s in range(5)], [b[s] for s in range(5)]).pvalue < 0.05
    )
    assert e.text() == f"**+{np.mean(d):.3f} [+{low:.3f}, +{high:.3f}]** (5)"
    one = Estimate.paired({0: 0.5}, {0: 0.25})
    assert (one.mean, one.low) == (0.25, None) and one.text() == "+0.250 (1)"


def test_records_take_final_values_and_phase_compute(tmp_path):
    study = make_study(tmp_path, seeds=(0,))
    warm, sft, grpo, _ = study.runs()
    fake_run(warm, {PASS: 0.2})
    fake_run(sft, {PASS: 0.3})
    fake_run(grpo, {PASS: 0.4, REASONING: 0.1})
    records = study_results.collect(study, [PASS, REASONING])  # coderl_plus unfinished: absent
    assert [r["run"] for r in records] == [
        "warm_start_seed_0",
        "sft_continue_seed_0",
        "grpo_seed_0",
    ]
    assert records[1][PASS] == 0.3 and records[1][REASONING] is None
    assert records[2][PASS] == 0.4  # the last logged value, not step 0's
    assert records[1]["phase/tokens"] == 250 and records[1]["phase/updates"] == 4
    # RL: two distinct steps of 8 rows, each trained on twice (ppo_epochs 2), 2 updates a step
    rl = {k.removeprefix("phase/"): v for k, v in records[2].items() if k.startswith("phase/")}
    assert rl == {"updates": 4, "sequences": 32, "alignment_sequences": 12, "tokens": 400,
                  "tokens_total": 1200}  # fmt: skip


def test_tables_csv_and_plot(tmp_path):
    study = make_study(tmp_path)
    runs = {r.name: r for r in study.runs()}
    values = {  # arm: pass@1 per seed
        "warm_start": [0.20, 0.30, 0.25],
        "sft_continue": [0.30, 0.40, 0.32],
        "grpo": [0.35, 0.41, 0.40],
        "coderl_plus": [0.36, 0.40, 0.41],
    }
    for arm, per_seed in values.items():
        for seed, v in enumerate(per_seed):
            final = {PASS: v} if arm != "grpo" else {PASS: v, REASONING: 0.1 * seed}
            fake_run(runs[f"{arm}_seed_{seed}"], final, finished=(arm, seed) != ("coderl_plus", 2))
    metrics = [PASS, REASONING]
    paths = study_results.write_results(study, metrics, str(tmp_path / "out"), "s", "python x")
    md = open(paths["md"]).read()
    assert "11 of 12 runs finished" in md and "Regenerate: `python x`" in md
    assert "`--warm_start_steps=2 --warm_start_batch_size=8`" in md

    mean_se = lambda v: f"{np.mean(v):.3f} ± {stats.sem(v):.3f} ({len(v)})"
    assert (
        f"| {PASS} | {mean_se(values['warm_start'])} | {mean_se(values['sft_continue'])} | "
        f"{mean_se(values['grpo'])} | {mean_se(values['coderl_plus'][:2])} |" in md
    )
    assert f"| {REASONING} | n/a | n/a | {mean_se([0.0, 0.1, 0.2])} | n/a |" in md
    header = "| metric | grpo - sft_continue | coderl_plus - sft_continue | coderl_plus - grpo |"
    assert header in md
    d = np.subtract(values["grpo"], values["sft_continue"])
    low, high = stats.t.interval(0.95, 2, loc=d.mean(), scale=stats.sem(d))
    assert f"+{d.mean():.3f} [{low:+.3f}, {high:+.3f}] (3)" in md
    # the compute table: means over seeds; sft share 8/32, RL 12/32
    assert "| sft_continue | 4 | 32 | 0.25 | 250 | 900 |" in md
    assert "| grpo | 4 | 32 | 0.38 | 400 | 1,200 |" in md
    assert (
        "sft_continue relative to coderl_plus (same data mix): updates x1.00, sequences x1.00, "
        "alignment sequences x0.67, tokens x0.62, tokens total x0.75." in md
    )

    with open(paths["csv"]) as f:
        lines = list(csv.DictReader(f))
    row = next(
        r
        for r in lines
        if r["section"] == "difference"
        and r["row"] == "grpo - sft_continue"
        and r["metric"] == PASS
    )
    assert row["n"] == "3" and float(row["ci_low"]) == pytest.approx(low)
    assert float(row["se"]) == pytest.approx(stats.sem(d))
    plus = next(r for r in lines if r["row"] == "coderl_plus - grpo" and r["metric"] == PASS)
    assert plus["n"] == "2"  # coderl_plus seed 2 unfinished: two pairs
    missing = next(r for r in lines if r["row"] == "sft_continue" and r["metric"] == REASONING)
    assert (missing["n"], missing["mean"], missing["se"]) == ("0", "", "")
    compute = [r for r in lines if r["section"] == "compute" and r["row"] == "warm_start"]
    assert {r["metric"]: float(r["mean"]) for r in compute}["phase/tokens_total"] == 900
    with open(paths["runs_csv"]) as f:
        per_run = list(csv.DictReader(f))
    assert len(per_run) == 11 and per_run[0]["run"] == "warm_start_seed_0"
    with open(paths["png"], "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_comparisons_follow_the_arms(tmp_path):
    assert study_results.comparisons(make_study(tmp_path, arms=("grpo", "coderl_plus"))) == [
        ("coderl_plus", "grpo")
    ]
    full = make_study(tmp_path, arms=study_plan.DEFAULT_ARMS)
    assert study_results.comparisons(full) == [
        ("grpo", "sft_continue"), ("coderl_plus", "sft_continue"),
        ("alignment_only", "sft_continue"), ("coderl_plus", "grpo"),
    ]  # fmt: skip

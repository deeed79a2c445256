"""The study's plan, run flags and SFT-continue protocol, its command line on fabricated
runs (experiments/study_plan.py, experiments/study.py), and one scaled-down study through
experiments/run.py (slow)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests import scaled_down

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "experiments"))
import study_plan  # noqa: E402

from tests.test_study_results import PASS, fake_run  # noqa: E402

TINY = "experiments/configs/tiny_cpu.flags"
# The RL phase's settings the tests rely on, whatever the tiny default becomes.
RL = ["--prompts_per_step=32", "--num_samples=8", "--num_micro_batches=4",
      "--learning_rate=3e-4", "--warmup_steps=2", "--lr_schedule=constant"]  # fmt: skip


def test_arms_and_their_alphas():
    arms = study_plan.parse_arms([*study_plan.DEFAULT_ARMS, "alpha_0.3"], coderl_plus_alpha=0.7)
    assert [(a.name, a.alpha) for a in arms] == [
        ("sft_continue", None), ("grpo", 1.0), ("coderl_plus", 0.7), ("alignment_only", 0.0),
        ("alpha_0.3", 0.3),
    ]  # fmt: skip
    assert [a.is_rl for a in arms] == [False, True, True, True, True]


@pytest.mark.parametrize(
    "arms, message",
    [(["grpo", "alpha_1"], "same α"), (["sft"], "unknown arm"), (["alpha_2"], "outside"),
     (["alpha_x"], "needs a number"), (["grpo", "grpo"], "twice"), ([], "no arm")],
)  # fmt: skip
def test_bad_arms_are_rejected(arms, message):
    with pytest.raises(ValueError, match=message):
        study_plan.parse_arms(arms)


def test_plan_and_run_flags(tmp_path):
    arms = study_plan.parse_arms(["sft_continue", "grpo"])
    runs = study_plan.plan(arms, [0, 3], str(tmp_path))
    assert [r.name for r in runs] == [
        "warm_start_seed_0", "sft_continue_seed_0", "grpo_seed_0",
        "warm_start_seed_3", "sft_continue_seed_3", "grpo_seed_3",
    ]  # fmt: skip
    warm, sft, grpo, *_ = runs
    seed = [
        "--seed=0",
        "--data_seed=0",
        "--tiny_seed=0",
        f"--tiny_dir={tmp_path}/tiny_model_seed_0",
    ]
    assert study_plan.run_flags(warm, "b.flags", ["--steps=5"]) == [
        "--flagfile=b.flags", "--steps=5", *seed, "--steps=0", f"--workdir={warm.workdir}",
    ]  # fmt: skip
    assert study_plan.run_flags(grpo, "b.flags", tiny_model=False) == [
        "--flagfile=b.flags", "--seed=0", "--data_seed=0", f"--init_from={warm.workdir}",
        "--warm_start_steps=0", "--alpha=1.0", "--noeval_at_start", f"--workdir={grpo.workdir}",
    ]  # fmt: skip
    sft_flags = study_plan.run_flags(
        sft, "b.flags", [], {"warm_start_steps": 30}, ["--warm_start_learning_rate=1e-3"]
    )
    assert sft_flags == [
        "--flagfile=b.flags", *seed, f"--init_from={warm.workdir}", "--steps=0",
        "--warm_start_steps=30", "--warm_start_data_seed=10000",
        "--warm_start_learning_rate=1e-3", f"--workdir={sft.workdir}",
    ]  # fmt: skip
    with pytest.raises(ValueError, match="--seed"):
        study_plan.run_flags(grpo, "b.flags", ["--seed=3"])
    with pytest.raises(ValueError, match="--init_from"):
        study_plan.run_flags(grpo, "b.flags", [], None, ["--init_from=x"])
    with pytest.raises(ValueError, match="distinct"):
        study_plan.plan(arms, [1, 1], str(tmp_path))


def test_sft_continue_matches_the_rl_phase_updates_rows_and_schedule():
    rl = study_plan.resolve_config(
        [f"--flagfile={TINY}", *RL, "--steps=12", "--ppo_epochs=2", "--num_mini_batches=2",
         "--lr_schedule=cosine", "--final_lr_ratio=0.1", "--warmup_steps=3"]
    )  # fmt: skip
    settings = study_plan.sft_continue_settings(rl, alpha=0.6)
    assert settings == {
        "warm_start_steps": 12 * 2 * 2,  # RL steps x updates per batch
        "warm_start_batch_size": 32 * 8 // 2,  # B x G rows per RL batch / mini-batches
        "warm_start_num_micro_batches": 4,
        "warm_start_learning_rate": 3e-4,
        "warm_start_lr_schedule": "cosine",
        "warm_start_warmup_steps": 3,
        "warm_start_decay_steps": 48,  # the RL phase's: all its updates
        "warm_start_final_lr_ratio": 0.1,
        "warm_start_alignment_fraction": 0.4,
        "warm_start_mix_per_batch": "true",
        "warm_start_num_problems": 0,
    }
    # The run.py flags give the warm start exactly these settings (and the RL phase's
    # sequences: updates x rows = steps x epochs x B x G).
    sft = study_plan.StudyRun(study_plan.parse_arms(["sft_continue"])[0], 2, "/s")
    config = study_plan.resolve_config(study_plan.run_flags(sft, TINY, RL, settings))
    ws = config.warm_start
    assert (ws.steps, ws.batch_size, ws.learning_rate, ws.data_seed) == (48, 128, 3e-4, 10002)
    assert ws.mix_per_batch and ws.alignment_fraction == 0.4
    assert ws.steps * ws.batch_size == 12 * 2 * 32 * 8 and config.run.steps == 0
    assert config.model.init_from == "/s/warm_start_seed_2" and config.model.tiny.seed == 2
    with pytest.raises(ValueError, match="no steps"):
        study_plan.sft_continue_settings(study_plan.resolve_config(["--steps=0"]), 0.6)


def test_study_file_merges_seeds_and_arms_and_refuses_another_base(tmp_path):
    study = study_plan.Study(str(tmp_path), "b.flags", ("--steps=2",), (), 0.6,
                             ("grpo",), (0, 1), {"warm_start_steps": 2})  # fmt: skip
    study.save()
    loaded = study_plan.Study.load(str(tmp_path))
    assert loaded == study
    more = loaded.merged(study_plan.Study(str(tmp_path), "b.flags", ("--steps=2",), (), 0.6,
                                          ("sft_continue", "grpo"), (3,), {}))  # fmt: skip
    assert more.arms == ("sft_continue", "grpo") and more.seeds == (0, 1, 3)
    with pytest.raises(ValueError, match="overrides"):
        loaded.merged(study_plan.Study(str(tmp_path), "b.flags", (), (), 0.6, ("grpo",), (0,), {}))


def fake_command(run: study_plan.StudyRun, fail: bool = False) -> list[str]:
    """A stand-in for run.py: logs its start and end times, then finishes (or fails)."""
    script = (
        "import os, sys, time; d = sys.argv[1]; t = time.time(); time.sleep(0.4); "
        "open(os.path.join(d, 'times'), 'w').write(f'{t} {time.time()}'); "
        "sys.exit(1) if sys.argv[2] == '1' else open(os.path.join(d, 'summary.md'), 'w')"
    )
    return [sys.executable, "-c", script, run.workdir, "1" if fail else "0"]


def test_local_launcher_order_parallelism_and_failures(tmp_path, capsys):
    arms = study_plan.parse_arms(["grpo", "coderl_plus"])
    runs = study_plan.plan(arms, [0, 1, 2], str(tmp_path))
    by_name = {r.name: r for r in runs}
    commands = {r.name: fake_command(r, fail=r.name == "warm_start_seed_2") for r in runs}
    failed = study_plan.run_locally(runs, commands, parallel=2, alone_first=True)
    assert failed == ["warm_start_seed_2", "grpo_seed_2", "coderl_plus_seed_2"]
    assert "grpo_seed_2: skipped, its warm start failed" in capsys.readouterr().out

    def times(name):
        return [float(t) for t in open(os.path.join(by_name[name].workdir, "times")).read().split()]

    first_end = times("warm_start_seed_0")[1]
    others = [r.name for r in runs if r.name != "warm_start_seed_0" and "seed_2" not in r.name]
    assert all(times(name)[0] >= first_end for name in others)  # the first ran alone
    for seed in (0, 1):  # arms after their warm start
        assert times(f"grpo_seed_{seed}")[0] >= times(f"warm_start_seed_{seed}")[1]
    spans = [times(name) for name in others]
    overlaps = [sum(a[0] < t < a[1] for a in spans) for t, _ in spans]
    assert max(overlaps) == 1  # two at a time, never three
    assert not os.path.exists(by_name["grpo_seed_2"].workdir)


def study_cli(*args: str, timeout: float = 120) -> str:
    # The runs need no sharding: one CPU device (not conftest's 8) compiles faster.
    xla_flags = " ".join(
        f for f in os.environ.get("XLA_FLAGS", "").split() if "device_count" not in f
    )
    result = subprocess.run(
        [sys.executable, os.path.join(REPO, "experiments", "study.py"), *args],
        cwd=REPO,
        env=dict(os.environ, PYTHONPATH=REPO, XLA_FLAGS=xla_flags),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def test_print_launcher_skips_finished_runs_then_collect(tmp_path):
    study_dir = tmp_path / "study"
    arms = study_plan.parse_arms(["sft_continue", "coderl_plus"])
    finished = study_plan.StudyRun(arms[1], 1, str(study_dir))
    fake_run(finished, {PASS: 0.3})
    args = [f"--study_dir={study_dir}", f"--results_dir={tmp_path / 'results'}"]
    out = study_cli(
        f"--base_flagfile={TINY}", "--arms=sft_continue,coderl_plus", "--seeds=0,1",
        "--coderl_plus_alpha=0.6",
        "--launcher=print", *args, *(f"--overrides={f}" for f in RL), "--", "--steps=4",
    )  # fmt: skip
    lines = out.splitlines()
    assert lines[0] == f"# coderl_plus_seed_1: finished, skipped ({finished.workdir})"
    commands = lines[1:]
    assert len(commands) == 2 + 3  # seed by seed: the warm start, then its unfinished arms
    base = f"python experiments/run.py --flagfile={TINY} {' '.join(RL)} --steps=4"
    assert commands[0] == (
        f"{base} --seed=0 --data_seed=0 --tiny_seed=0 --tiny_dir={study_dir}/tiny_model_seed_0 "
        f"--steps=0 --workdir={study_dir}/warm_start_seed_0"
    )
    assert commands[1].startswith(f"{base} --seed=0 ") and commands[1].endswith(
        "--warm_start_steps=4 --warm_start_batch_size=256 --warm_start_num_micro_batches=4 "
        "--warm_start_learning_rate=0.0003 --warm_start_lr_schedule=constant "
        "--warm_start_warmup_steps=2 --warm_start_decay_steps=4 --warm_start_final_lr_ratio=0.0 "
        "--warm_start_alignment_fraction=0.4 --warm_start_mix_per_batch=true "
        "--warm_start_num_problems=0 "
        f"--warm_start_data_seed=10000 --workdir={study_dir}/sft_continue_seed_0"
    )
    assert commands[2].endswith(
        f"--init_from={study_dir}/warm_start_seed_0 --warm_start_steps=0 --alpha=0.6 --noeval_at_start "
        f"--workdir={study_dir}/coderl_plus_seed_0"
    )
    saved = json.loads((study_dir / "study.json").read_text())
    assert saved["seeds"] == [0, 1] and saved["overrides"] == [*RL, "--steps=4"]

    out = study_cli(*args, "--collect")  # the study.json says the rest
    assert "1 of 6 runs finished" in out
    assert f"| {PASS} | n/a | n/a | 0.300 (1) |" in out
    assert f"regenerate with: python experiments/study.py --study_dir={study_dir} --collect " in out
    assert sorted(os.listdir(tmp_path / "results")) == [
        "study.csv", "study.md", "study.png", "study_runs.csv",
    ]  # fmt: skip


@pytest.mark.slow
def test_local_study_shares_the_warm_start_and_continues_it(scaled_down_cache, tmp_path):
    """One seed: the warm start (1 supervised step), then sft_continue from its policy
    with the RL phase's budget (1 step of B x G = 4 x 2 rows); a rerun skips both."""
    flagfile = tmp_path / "base.flags"
    flags = scaled_down.run_flags(scaled_down_cache, str(tmp_path / "unused"), steps=1)
    flags = [f for f in flags if not f.startswith("--workdir")]
    # One warm-start update at a high learning rate (no warmup), so that the policy it hands
    # on differs clearly from the random one.
    flags += ["--warm_start_warmup_steps=0", "--warm_start_learning_rate=1e-2"]
    flagfile.write_text("\n".join([*flags, "--eval_num_problems=4"]) + "\n")
    study_dir = tmp_path / "study"
    args = (
        f"--base_flagfile={flagfile}", "--arms=sft_continue", "--seeds=0",
        f"--study_dir={study_dir}", "--launcher=local", f"--results_dir={tmp_path / 'results'}",
        f"--metrics={PASS}", "--sft_overrides=--warm_start_num_problems=60",
    )  # fmt: skip
    out = study_cli(*args, timeout=300)
    assert "warm_start_seed_0: done" in out and "sft_continue_seed_0: done" in out
    warm = scaled_down.metrics_by_step(study_dir / "warm_start_seed_0")
    sft = scaled_down.metrics_by_step(study_dir / "sft_continue_seed_0")
    assert sorted(warm) == [0] and sorted(sft) == [0]  # no RL steps in either
    assert warm[0]["warm_start/updates"] == 1 and warm[0]["warm_start/sequences"] == 8
    # The RL phase's budget: 1 step x 1 update of 4 prompts x 2 samples, mixed as the base's
    # α = 0.5 mixes an RL batch.
    assert sft[0]["warm_start/updates"] == 1 and sft[0]["warm_start/sequences"] == 8
    assert sft[0]["warm_start/alignment_sequences"] == 4
    assert 0 < sft[0]["warm_start/tokens"] < sft[0]["warm_start/tokens_total"]
    # It starts from the warm start's policy: its NLL before its own update (6.10 measured)
    # is well below the random policy's, which the warm start logged before its (6.35).
    assert sft[0]["warm_start/nll"] < warm[0]["warm_start/nll"] - 0.1
    table = (tmp_path / "results" / "study.md").read_text()
    assert "2 of 2 runs finished" in table and "| sft_continue | 1 | 8 | 0.50 |" in table
    # The header names the flags in effect: the override replaces the protocol's value.
    assert "--warm_start_num_problems=60" in table and "num_problems=0" not in table
    again = study_cli(*args)
    assert "# sft_continue_seed_0: finished, skipped" in again and "running" not in again

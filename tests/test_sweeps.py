"""α sweeps: the grid, run flags, skipping finished runs, and the results table on
fabricated metrics files (experiments/sweeps.py, experiments/sweep_alpha.py)."""

import csv
import json
import os
import subprocess
import sys

import pytest

from experiments import sweeps
from tests import scaled_down

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PASS = "eval/synthetic/pass@1"
REASONING = "eval/synthetic_reasoning/pass@1"


def fake_run(run: sweeps.SweepRun, final: dict, finished: bool = True) -> None:
    """A run directory as loop.run leaves it: metrics.jsonl (initial eval at step 0, train
    metrics, final eval at step 3 on its own line) and summary.md when finished."""
    os.makedirs(run.workdir)
    lines = [
        {"step": 0, PASS: 0.01, "train/loss": 1.0},
        {"step": 2, "train/loss": 0.5},
        {"step": 3, **final},
    ]
    with open(os.path.join(run.workdir, "metrics.jsonl"), "w") as f:
        f.writelines(json.dumps(line) + "\n" for line in lines)
    if finished:
        with open(os.path.join(run.workdir, "summary.md"), "w") as f:
            f.write("| metric |\n")


def test_plan_names_and_flags(tmp_path):
    runs = sweeps.plan(["1.0", "0.6", "alignment_only"], [0, 1], str(tmp_path))
    assert [r.name for r in runs] == [
        "alpha_1.0_seed_0",
        "alpha_1.0_seed_1",
        "alpha_0.6_seed_0",
        "alpha_0.6_seed_1",
        "alignment_only_seed_0",
        "alignment_only_seed_1",
    ]
    assert sweeps.run_flags(runs[4], "base.flags", ["--steps=5"]) == [
        "--flagfile=base.flags",
        "--steps=5",
        "--alpha=0.0",
        "--seed=0",
        f"--workdir={tmp_path}/alignment_only_seed_0",
    ]


@pytest.mark.parametrize(
    "alphas, message",
    [(["0.6", "0.60"], "same α"), (["1.5"], "outside"), (["0", "alignment_only"], "same α"),
     (["grpo"], "neither a number")],
)  # fmt: skip
def test_bad_alphas_are_rejected(alphas, message):
    with pytest.raises(ValueError, match=message):
        sweeps.parse_alphas(alphas)


def test_overrides_may_not_set_the_swept_flags(tmp_path):
    run = sweeps.plan(["0.6"], [0], str(tmp_path))[0]
    with pytest.raises(ValueError, match="--seed"):
        sweeps.run_flags(run, "base.flags", ["--seed=3"])


def test_results_table_mean_std_and_missing_metric(tmp_path):
    runs = sweeps.plan(["1.0", "0.6", "alignment_only"], [0, 1, 2], str(tmp_path / "sweep"))
    by_name = {r.name: r for r in runs}
    for seed, value in enumerate([0.10, 0.20, 0.30]):
        fake_run(by_name[f"alpha_1.0_seed_{seed}"], {PASS: value})  # no reasoning metric
    for seed, (p, r) in enumerate([(0.2, 0.5), (0.4, 0.7)]):
        fake_run(by_name[f"alpha_0.6_seed_{seed}"], {PASS: p, REASONING: r})
    fake_run(by_name["alpha_0.6_seed_2"], {PASS: 0.9, REASONING: 0.9}, finished=False)
    fake_run(by_name["alignment_only_seed_0"], {PASS: 0.05, REASONING: 0.6})

    rows, per_run = sweeps.collect(runs, [PASS, REASONING])
    assert [r.runs for r in rows] == [3, 2, 1]  # the unfinished run is left out
    grpo, mixed, only = rows
    assert grpo.metrics[PASS].mean == pytest.approx(0.2)
    assert grpo.metrics[PASS].std == pytest.approx(0.1)  # sample std, ddof = 1
    assert grpo.metrics[REASONING] == sweeps.Aggregate(None, None, 0)
    assert mixed.metrics[REASONING].mean == pytest.approx(0.6)
    assert mixed.metrics[REASONING].std == pytest.approx(0.1414213562)
    assert only.metrics[PASS].std is None and only.metrics[PASS].n == 1
    assert len(per_run) == 6 and per_run[0][REASONING] is None

    table = sweeps.markdown_table(rows, [PASS, REASONING])
    assert table.splitlines() == [
        f"| α | runs | {PASS} | {REASONING} |",
        "|---|---|---|---|",
        "| 1.0 (GRPO) | 3 | 0.200 ± 0.100 | n/a |",
        "| 0.6 | 2 | 0.300 ± 0.141 | 0.600 ± 0.141 |",
        "| alignment only (α=0) | 1 | 0.050 | 0.600 |",
    ]

    paths = sweeps.write_results(runs, [PASS, REASONING], str(tmp_path / "results"), "ablation")
    with open(paths["csv"]) as f:
        lines = list(csv.DictReader(f))
    assert [line["alpha"] for line in lines] == ["1.0", "0.6", "alignment_only"]
    assert float(lines[1][f"{REASONING}_std"]) == pytest.approx(0.1414213562)
    assert lines[0][f"{REASONING}_mean"] == "" and lines[0][f"{REASONING}_n"] == "0"
    with open(paths["md"]) as f:
        assert "6 of 9 runs finished" in f.read()
    with open(paths["png"], "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def sweep_cli(tmp_path, *args: str, timeout: float = 120) -> str:
    env = dict(os.environ, PYTHONPATH=REPO)
    result = subprocess.run(
        [sys.executable, os.path.join(REPO, "experiments", "sweep_alpha.py"), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result.stdout


def test_print_launcher_prints_each_unfinished_run_once(tmp_path):
    sweep_dir = tmp_path / "sweep"
    finished = sweeps.SweepRun("0.6", 1, str(sweep_dir))
    fake_run(finished, {PASS: 0.3})
    out = sweep_cli(
        tmp_path,
        "--base_flagfile=experiments/configs/tiny_cpu.flags",
        "--alphas=1.0,0.6,alignment_only",
        "--seeds=0,1",
        f"--sweep_dir={sweep_dir}",
        "--launcher=print",
        "--overrides=--mesh=-1,1,1",
        "--",
        "--steps=4",
    )
    lines = out.splitlines()
    assert lines[0] == f"# alpha_0.6_seed_1: finished, skipped ({sweep_dir}/alpha_0.6_seed_1)"
    commands = lines[1:]
    assert len(commands) == 2 + 5  # a shared warm start per seed, then the unfinished runs
    base = "python experiments/run.py --flagfile=experiments/configs/tiny_cpu.flags"
    assert commands[0] == (
        f"{base} --mesh=-1,1,1 --steps=4 --steps=0 --seed=0 --workdir={sweep_dir}/warm_start_seed_0"
    )
    assert commands[2] == (
        f"{base} --mesh=-1,1,1 --steps=4 --alpha=1.0 --seed=0 "
        f"--workdir={sweep_dir}/alpha_1.0_seed_0 "
        f"--init_from={sweep_dir}/warm_start_seed_0 --warm_start_steps=0"
    )
    assert commands[-1].endswith(
        f"--alpha=0.0 --seed=1 --workdir={sweep_dir}/alignment_only_seed_1 "
        f"--init_from={sweep_dir}/warm_start_seed_1 --warm_start_steps=0"
    )
    assert not any("alpha_0.6_seed_1" in c for c in commands)
    unshared = sweep_cli(
        tmp_path,
        "--base_flagfile=experiments/configs/tiny_cpu.flags",
        "--alphas=0.6",
        "--seeds=0",
        f"--sweep_dir={sweep_dir}",
        "--launcher=print",
        "--noshared_warm_start",
    )
    assert unshared.strip().endswith(f"--seed=0 --workdir={sweep_dir}/alpha_0.6_seed_0")


def test_collect_writes_the_results(tmp_path):
    sweep_dir = tmp_path / "sweep"
    for seed, value in enumerate([0.25, 0.75]):
        fake_run(sweeps.SweepRun("0.6", seed, str(sweep_dir)), {PASS: value})
    out = sweep_cli(
        tmp_path,
        "--base_flagfile=experiments/configs/tiny_cpu.flags",
        "--alphas=0.6",
        "--seeds=0,1",
        f"--sweep_dir={sweep_dir}",
        "--collect",
        f"--results_dir={tmp_path / 'results'}",
    )
    assert "| 0.6 | 2 | 0.500 ± 0.354 | n/a |" in out
    assert sorted(os.listdir(tmp_path / "results")) == [
        "sweep_alpha.csv",
        "sweep_alpha.md",
        "sweep_alpha.png",
        "sweep_alpha_runs.csv",
    ]


@pytest.mark.slow
def test_local_sweep_shares_the_warm_start(scaled_down_cache, tmp_path):
    """One seed, one α: the warm-start-only run, then the α run from its policy (its
    reference policy is the warm start's, byte for byte); a rerun skips both."""
    flagfile = tmp_path / "base.flags"
    flags = scaled_down.run_flags(scaled_down_cache, str(tmp_path / "unused"), steps=1)
    flagfile.write_text("\n".join(f for f in flags if not f.startswith("--workdir")) + "\n")
    sweep_dir = tmp_path / "sweep"
    args = (
        f"--base_flagfile={flagfile}",
        "--alphas=0.6",
        "--seeds=0",
        f"--sweep_dir={sweep_dir}",
        "--launcher=local",
        f"--results_dir={tmp_path / 'results'}",
        f"--metrics={PASS}",
    )
    out = sweep_cli(tmp_path, *args, timeout=400)
    assert "warm_start_seed_0: done" in out and "alpha_0.6_seed_0: done" in out
    warm = scaled_down.metrics_by_step(sweep_dir / "warm_start_seed_0")
    run = scaled_down.metrics_by_step(sweep_dir / "alpha_0.6_seed_0")
    assert sorted(warm) == [0] and "warm_start/nll" in warm[0]
    assert "warm_start/nll" not in run[0] and "train/loss" in run[0] and PASS in run[1]
    # The α run's initial policy (its KL reference) is the warm start's final one, bit for bit.
    weights = "reference_hf/model.safetensors"
    assert (sweep_dir / "alpha_0.6_seed_0" / weights).read_bytes() == (
        sweep_dir / "warm_start_seed_0" / weights
    ).read_bytes()
    assert run[0][PASS] == warm[0][PASS]
    assert (tmp_path / "results" / "sweep_alpha.md").is_file()
    again = sweep_cli(tmp_path, *args)
    assert "# alpha_0.6_seed_0: finished, skipped" in again and "running" not in again

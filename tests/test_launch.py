"""The launchers in launch/: a two-process run of the real trainer through
local_multiprocess.sh (the multi-host path), and the cluster scripts' argument checks."""

import os
import re
import subprocess

import pytest

from tests import scaled_down

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAUNCH = os.path.join(REPO, "launch")


def launch(script: str, *args: str, env: dict | None = None, timeout: float = 60):
    return subprocess.run(
        [os.path.join(LAUNCH, script), *args],
        cwd=REPO,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.slow
def test_two_process_run_through_local_launcher(scaled_down_cache, tmp_path):
    workdir, logs = tmp_path / "run", tmp_path / "logs"
    env = {"PYTHONPATH": REPO, "PYTHON": "python"}  # the launcher sets XLA_FLAGS per process
    result = launch(
        "local_multiprocess.sh",
        "--num_processes=2",
        f"--log_dir={logs}",
        "--",
        *scaled_down.run_flags(scaled_down_cache, str(workdir), steps=2),
        env=env,
        timeout=400,
    )
    logs_text = {i: (logs / f"process_{i}.log").read_text() for i in range(2)}
    assert result.returncode == 0, result.stdout + logs_text[0][-3000:] + logs_text[1][-3000:]
    for i in range(2):
        assert f"jax.distributed: process {i} of 2, 1 local / 2 global devices" in logs_text[i]
    steps = scaled_down.metrics_by_step(workdir)
    assert sorted(steps) == [0, 1, 2]
    assert "train/loss" in steps[1] and "eval/synthetic/pass@1" in steps[2]
    assert steps[0]["rollout/mix/code_prompts"] == 2  # process 0's half of the 4 prompts
    assert sorted(os.listdir(workdir / "checkpoints")) == ["1", "2"]
    buffers = sorted(os.listdir(workdir / "checkpoints" / "2" / "alignment_buffer"))
    assert "alignment_buffer.jsonl" in buffers and "alignment_buffer.process_1.jsonl" in buffers
    for name in ("summary.md", "curves.png", "config.json", "reference_hf"):
        assert os.path.exists(workdir / name), name


def test_local_launcher_exits_nonzero_when_the_processes_fail(tmp_path):
    result = launch(
        "local_multiprocess.sh",
        f"--log_dir={tmp_path}",
        "--",
        "--no_such_flag",
        env={"PYTHONPATH": REPO},
        timeout=120,
    )
    assert result.returncode != 0
    # Whichever process fails first is named, and its log holds the flag error; the launcher
    # may stop the other process before it gets as far.
    failed = re.search(r"process (\d) \(pid \d+\) exited with status", result.stderr)
    assert failed, result.stderr
    log = (tmp_path / f"process_{failed.group(1)}.log").read_text()
    assert "Unknown command line flag 'no_such_flag'" in log


def test_tpu_script_needs_a_project_and_prints_worker_all_commands():
    missing = launch("tpu_vm.sh", "up", "--name=t", "--zone=z", env={"TPU_PROJECT": ""})
    assert missing.returncode == 2 and "no GCP project" in missing.stderr
    dry = launch(
        "tpu_vm.sh",
        "run",
        "--name=t",
        "--zone=us-central2-b",
        "--project=my-project",
        "--dry_run",
        "--",
        "experiments/configs/tiny_cpu.flags",
        "--steps=3",
    )
    assert dry.returncode == 0, dry.stderr
    start, follow = dry.stdout.splitlines()
    assert start.startswith("gcloud compute tpus tpu-vm ssh t --zone=us-central2-b")
    assert "--worker=all" in start and "--distributed" in start and "--steps=3" in start
    assert "--worker=0" in follow and "run.log" in follow


def test_sbatch_script_refuses_to_run_outside_slurm():
    env = {"SLURM_JOB_ID": ""}
    result = launch("slurm_gpu.sbatch", "experiments/configs/tiny_cpu.flags", env=env)
    assert result.returncode == 2 and "not inside a SLURM job" in result.stderr
    assert "--ntasks-per-node=8" in launch("slurm_gpu.sbatch", "--help").stdout

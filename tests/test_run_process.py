"""A real ``experiments/run.py`` process on the scaled-down default (tests/scaled_down.py):
its default console and logs, and SIGKILL at three points of a run, each followed by a
restart, ending exactly where an uninterrupted run ends.

Kill points are deterministic: ``CODERL_KILL_AT`` (`coderl_jax.faults`) makes the run kill
itself during step 1's rollouts, right after step 2's update was dispatched (its metrics
written, nothing saved) and while checkpoint 3 is being written asynchronously. Compiled
programs are shared through JAX's persistent cache, so each restart costs seconds.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from coderl_jax.reports import read_metrics
from tests.scaled_down import metrics_by_step, run_flags

pytestmark = pytest.mark.slow

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEPS = 3
# Metrics that measure the process, not the run: wall-clock times, compile counts.
PROCESS_METRICS = re.compile(r"^time/|/seconds$|^sampler/compiles$")


@pytest.fixture(scope="module")
def jax_cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("jax_cache"))


def run_py(cache, workdir, jax_cache, kill_at: str | None = None) -> subprocess.CompletedProcess:
    # An entropy bonus gives every update a gradient (the tiny policy earns no reward).
    argv = [*run_flags(cache, str(workdir), steps=STEPS), "--entropy_coef=0.01"]
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")]),  # this checkout
        JAX_COMPILATION_CACHE_DIR=jax_cache,
        JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
        JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="-1",
    )
    env.pop("CODERL_KILL_AT", None)
    if kill_at:
        env["CODERL_KILL_AT"] = kill_at
    process = subprocess.Popen(
        [sys.executable, os.path.join(REPO, "experiments", "run.py"), *argv],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: what it leaves behind is findable
    )
    try:
        out, err = process.communicate(timeout=600)
    finally:
        leftovers = _reap_group(process.pid)
    assert not leftovers, f"processes outlived run.py ({kill_at}): {leftovers}"
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def _reap_group(pgid: int, wait_s: float = 10.0) -> list[int]:
    """Pids left in the process group after ``wait_s`` (then killed)."""
    deadline = time.monotonic() + wait_s
    while True:
        left = [
            int(pid) for pid in os.listdir("/proc") if pid.isdigit() and _pgid(int(pid)) == pgid
        ]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    if left:
        os.killpg(pgid, signal.SIGKILL)
    return left


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


@pytest.fixture(scope="module")
def uninterrupted(scaled_down_cache, jax_cache, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("uninterrupted")
    result = run_py(scaled_down_cache, workdir, jax_cache)
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir, result


def test_default_logs_are_quiet_with_one_console_line_per_step(uninterrupted):
    _, result = uninterrupted
    step_lines = [line for line in result.stdout.splitlines() if line.startswith("step ")]
    assert [line.split(" (")[0] for line in step_lines] == ["step 0", "step 1", "step 2"]
    eval_lines = [line for line in result.stdout.splitlines() if line.startswith("eval at")]
    assert [line.split(" (")[0] for line in eval_lines] == ["eval at step 0", "eval at step 3"]
    log_lines = re.findall(r"^\d\d:\d\d:\d\d (\w+) ([\w.]+): ", result.stderr, re.MULTILINE)
    assert log_lines, result.stderr  # coderl_jax's own INFO lines do show
    for level, logger in log_lines:
        assert level not in ("INFO", "DEBUG") or logger.startswith("coderl_jax"), logger
    assert not re.search(r"^[IWEF]\d{4} ", result.stderr, re.MULTILINE)  # absl's format
    assert "is illegal" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_run_ends_with_each_evaluation_score_before_and_after_rl(uninterrupted):
    workdir, result = uninterrupted
    table = result.stdout.split("(first column: before RL, last: after it)\n")[1]
    header, *rows = table.splitlines()
    assert header.split()[1:] == ["step", "0", "step", str(STEPS), "change"]
    metrics = read_metrics(os.path.join(workdir, "metrics.jsonl"))
    printed = {row.split()[0]: [float(v) for v in row.split()[1:]] for row in rows}
    assert "eval/synthetic/pass@1" in printed
    for key, (before, after, change) in printed.items():
        at = dict(zip(metrics["step"], metrics[key]))
        assert (before, after) == pytest.approx((at[0], at[STEPS]), abs=5e-5), key
        assert change == pytest.approx(after - before, abs=1e-4), key


def saved_params(workdir, step: int = STEPS) -> list[tuple[str, np.ndarray]]:
    """(path, value) of every parameter in checkpoint ``step``, on one device."""
    path = os.path.join(workdir, "checkpoints", str(step), "params")
    device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    with ocp.StandardCheckpointer() as checkpointer:
        saved = checkpointer.metadata(path).item_metadata.tree
        abstract = jax.tree.map(
            lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device), saved
        )
        params = checkpointer.restore(path, abstract)
    return [
        (jax.tree_util.keystr(k), np.asarray(v))
        for k, v in jax.tree_util.tree_leaves_with_path(params)
    ]


def run_metrics(workdir) -> dict[int, dict]:
    return {
        step: {k: v for k, v in metrics.items() if not PROCESS_METRICS.search(k)}
        for step, metrics in metrics_by_step(workdir).items()
    }


def test_sigkill_mid_step_and_mid_checkpoint_resumes_to_the_same_run(
    uninterrupted, scaled_down_cache, jax_cache, tmp_path
):
    expected_dir, _ = uninterrupted
    workdir = tmp_path / "killed"
    # Each restart resumes from the newest finished checkpoint: which one depends on
    # whether the asynchronous write before the kill had finished, except for the kill in
    # checkpoint 3's write.
    for kill_at, resumed_from in (
        ("rollouts@1", None),  # a fresh run, killed in step 1's rollouts
        ("update@2", {0, 1}),
        ("checkpoint@3", {1, 2}),
        (None, {2}),  # checkpoint 3 never finished: step 2 runs again
    ):
        result = run_py(scaled_down_cache, workdir, jax_cache, kill_at)
        expected_status = -signal.SIGKILL if kill_at else 0
        assert result.returncode == expected_status, (kill_at, result.stderr[-3000:])
        resumed = re.search(rf"resumed {re.escape(str(workdir))} at step (\d+)", result.stderr)
        if resumed_from is None:
            assert resumed is None
        else:
            assert resumed and int(resumed.group(1)) in resumed_from, (kill_at, result.stderr)
    assert run_metrics(workdir) == run_metrics(expected_dir)
    expected, got = saved_params(expected_dir), saved_params(workdir)
    assert [p for p, _ in got] == [p for p, _ in expected] and len(got) > 10
    before = saved_params(expected_dir, STEPS - 1)  # the last update changed them
    assert any(not np.array_equal(a, b) for (_, a), (_, b) in zip(expected, before))
    for (path, a), (_, b) in zip(expected, got):
        np.testing.assert_array_equal(a, b, err_msg=path)
    for name in os.listdir(workdir):
        assert ".tmp" not in name, name  # no half-written config.json or flags.txt
    with open(workdir / "config.json") as f:
        assert json.load(f)["run"]["workdir"] == str(workdir)

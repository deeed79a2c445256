"""experiments/run.py on bad input: one line naming the flag and the fix, exit status 2, no
usage text, no traceback, and nothing written to the workdir -- before anything loads.

Each case runs the real experiments/run.py as ``__main__`` in its own process. Starting
Python and importing jax, transformers and TFDS takes seconds, so the cases fork from one
server process that has imported them (and nothing else: no jax backend, no flags
defined); a child then does exactly what ``python experiments/run.py ARGS`` does after its
imports. One case also runs as a plain ``python experiments/run.py`` to cover the start-up
itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from coderl_jax import config as config_lib
from coderl_jax.rl.rollout import RolloutConfig

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN_PY = os.path.join(REPO, "experiments", "run.py")
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")]))

SERVER = textwrap.dedent(f"""
    import json, os, runpy, sys, traceback
    sys.path.insert(0, {os.path.dirname(RUN_PY)!r})
    import absl.app, config_flags, script_setup, coderl_jax.loop  # the slow imports
    print("ready", flush=True)
    for line in sys.stdin:
        case = json.loads(line)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                for fd, name in ((1, "stdout"), (2, "stderr")):
                    os.dup2(os.open(case[name], os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
                sys.argv = [{RUN_PY!r}, *case["argv"]]
                runpy.run_path({RUN_PY!r}, run_name="__main__")
                code = 0
            except SystemExit as e:
                if isinstance(e.code, str):
                    print(e.code, file=sys.stderr)
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
            except BaseException:
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status), flush=True)
""")


@pytest.fixture(scope="module")
def run_py(tmp_path_factory):
    """``run_py(argv) -> (exit status, stdout, stderr)`` of experiments/run.py."""
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=ENV,
    )
    assert server.stdout.readline().strip() == "ready"
    outputs = tmp_path_factory.mktemp("outputs")

    def run(argv: list[str]) -> tuple[int, str, str]:
        case = {"argv": argv, "stdout": str(outputs / "out"), "stderr": str(outputs / "err")}
        server.stdin.write(json.dumps(case) + "\n")
        server.stdin.flush()
        status = int(server.stdout.readline())
        return status, (outputs / "out").read_text(), (outputs / "err").read_text()

    yield run
    server.stdin.close()
    server.wait(timeout=60)


def _write(path, text=""):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture()
def places(tmp_path):
    """Paths the cases refer to: an empty directory, a file, a missing path, and a workdir
    holding a run saved with --prompts_per_step=8."""
    empty = tmp_path / "empty"
    empty.mkdir()
    saved = tmp_path / "saved_run"
    (saved / "checkpoints" / "4").mkdir(parents=True)
    config = config_lib.Config(
        run=config_lib.RunConfig(workdir=str(saved)), rollout=RolloutConfig(prompts_per_step=8)
    )
    config.save(str(saved / "config.json"))
    return {
        "empty": str(empty),
        "file": str(_write(tmp_path / "a_file", "not a directory")),
        "missing": str(tmp_path / "missing"),
        "saved": str(saved),
        "tfds": str(tmp_path / "tfds"),
    }


# (flags, the error line after "error: "); {name} is a path of `places`.
CASES = [
    # values the flag parser rejects
    (["--alpha=abc"], "flag --alpha=abc: must be a number"),
    (["--steps=1.5"], "flag --steps=1.5: must be an integer"),
    (["--mesh=2,2"], "flag --mesh=2,2: needs 3 comma-separated values, got 2"),
    (["--semantics=bogus"], "flag --semantics=bogus: must be one of official, improved"),
    (["--nosuchflag=1"], "Unknown command line flag 'nosuchflag'"),
    (["stray"], "unexpected arguments ['stray']: flags are written --name=value"),
    (["--flagfile={missing}/x.flags"], "Unable to open flagfile: [Errno 2] No such file"),
    # values a config section rejects
    (["--alpha=1.5"], "--alpha=1.5: mixture alpha must lie in [0, 1], got 1.5"),
    (["--steps=-3"], "--steps=-3: must be >= 0"),
    (["--mesh=0,1,1"], "--mesh=0,1,1: sizes must be >= 1, one of them may be -1"),
    (["--mesh=-1,-1,1"], "--mesh=-1,-1,1: sizes must be >= 1, one of them may be -1"),
    (["--keep_checkpoints=0"], "--keep_checkpoints=0: must be >= 1"),
    (["--log_every=0"], "--log_every=0: must be >= 1"),
    (["--samples_every=0"], "--samples_every=0: must be >= 1"),
    (["--checkpoint_every=0"], "--checkpoint_every=0: must be >= 1"),
    (["--keep_period=-1"], "--keep_period=-1: must be >= 0 (0: none)"),
    (["--eval_num_problems=-5"], "--eval_num_problems=-5: must be >= 0 (0: all)"),
    (["--eval_benchmarks=nope"], "--eval_benchmarks=nope: unknown benchmarks ['nope']"),
    (["--overlap_chunks=3"], "--overlap_chunks=3: must divide prompts_per_step (16), got 3"),
    (["--temperature=-1"], "--temperature=-1.0: must be >= 0 (0: greedy)"),
    (["--warm_start_batch_size=0"], "--warm_start_batch_size=0: must be >= 1"),
    (["--synthetic_families=nope"], "--synthetic_families=nope: synthetic families must be"),
    # the machine, the filesystem, and rules across sections (coderl_jax.preflight)
    (["--mesh=3,1,1"], "--mesh=3,1,1: data x fsdp x tensor must use all 8 devices"),
    (
        ["--prompts_per_step=3", "--num_samples=3", "--overlap_chunks=1"],
        "--prompts_per_step=3: prompts_per_step x num_samples = 9 rows must divide over 8",
    ),
    (["--num_samples=1"], "--num_samples=1: must be >= 2 with advantage_estimator=grpo"),
    (["--num_sandbox_workers=0"], "--num_sandbox_workers=0: must be >= 1 (or none"),
    (["--hf_dir={missing}"], "--hf_dir={missing}: {missing} does not exist"),
    (["--hf_dir={empty}"], "--hf_dir={empty}: not a supported HF model directory: "),
    (["--init_from={empty}"], "--init_from={empty}: {empty} holds no finished checkpoint"),
    (["--dataset=nope"], "--dataset=nope: unknown dataset 'nope'; expected one of"),
    (["--data_dir={file}"], "--data_dir={file}: {file} is a file; give a directory"),
    (["--workdir={file}"], "--workdir={file}: {file} is a file; give a directory"),
    (
        ["--dataset=prime_code", "--manual_dir={missing}"],
        "--manual_dir={missing}: {missing} does not exist",
    ),
    (
        ["--dataset=prime_code", "--manual_dir={empty}"],
        "--dataset=prime_code: the training dataset needs its files "
        "(prime_code/train.parquet or prime_code/train-*.parquet) in {empty}",
    ),
    (
        ["--eval_benchmarks=synthetic,leetcode_contest"],
        "--eval_benchmarks=synthetic,leetcode_contest: benchmark leetcode_contest needs its "
        "files (leetcode_contest/*.jsonl or leetcode_contest/*.jsonl.gz) in {tfds}/downloads/manual",
    ),
    (
        ["--alignment_pool_files={missing}.jsonl"],
        "--alignment_pool_files={missing}.jsonl: {missing}.jsonl does not exist",
    ),
    (
        ["--workdir={saved}"],
        "--workdir={saved} holds a run saved with other flags: --prompts_per_step 8 -> 16. "
        "Pass --allow_config_change to resume it with the new values, or give another --workdir.",
    ),
]


def _snapshot(path: str) -> dict[str, bytes] | None:
    if not os.path.exists(path):
        return None
    if os.path.isfile(path):
        return {"": open(path, "rb").read()}
    return {
        os.path.relpath(os.path.join(root, name), path): open(os.path.join(root, name), "rb").read()
        for root, _, names in os.walk(path)
        for name in names
    }


@pytest.mark.parametrize("argv, message", CASES, ids=[" ".join(a) for a, _ in CASES])
def test_a_bad_input_is_one_line_naming_the_flag_and_nothing_is_written(
    run_py, places, tmp_path, argv, message
):
    argv = [arg.format(**places) for arg in argv]
    workdir = next((a.split("=", 1)[1] for a in argv if a.startswith("--workdir=")), None)
    if workdir is None:
        workdir = str(tmp_path / "workdir")
        argv.append(f"--workdir={workdir}")
    if not any(a.startswith("--data_dir=") for a in argv):
        argv.append(f"--data_dir={places['tfds']}")
    before = _snapshot(workdir), _snapshot(places["tfds"])
    status, out, err = run_py(argv)
    assert status == 2, (status, out, err)
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("error: "), err
    assert err.removeprefix("error: ").startswith(message.format(**places)), err
    assert (_snapshot(workdir), _snapshot(places["tfds"])) == before


def test_an_error_from_a_fresh_python_is_one_line_without_the_usage_text(tmp_path):
    result = subprocess.run(
        [sys.executable, RUN_PY, "--alpha=1.5", f"--workdir={tmp_path / 'w'}"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=ENV,
        timeout=300,
    )
    line = "error: --alpha=1.5: mixture alpha must lie in [0, 1], got 1.5\n"
    assert (result.returncode, result.stdout, result.stderr) == (2, "", line)
    assert not os.path.exists(tmp_path / "w")

r"""α ablation sweep: runs (or prints, or submits) a grid of α x seeds, then tabulates it.

    python experiments/sweep_alpha.py --base_flagfile=experiments/configs/tiny_cpu.flags \
        --alphas=1.0,0.6,alignment_only --seeds=0,1,2 --sweep_dir=runs/sweep_alpha \
        --launcher=local

Each run gets its own workdir under --sweep_dir (``alpha_0.6_seed_1``,
``alignment_only_seed_0``, ...); runs whose ``summary.md`` exists are finished and skipped.
With --shared_warm_start (the default) each seed's warm start runs once
(``warm_start_seed_<S>``, ``--steps=0``) and that seed's α runs start from it
(``--init_from``); the runs are the same as with their own warm starts, only cheaper.
Launchers: ``local`` runs them one after another here (each a subprocess of
experiments/run.py, its output in ``<workdir>/launch.log``) and then collects; ``print``
writes the commands; ``slurm`` submits each run with ``sbatch launch/slurm_gpu.sbatch``.
``--collect`` (alone) tabulates the finished runs: ``--results_dir/--results_name`` .md, .csv,
_runs.csv and .png, mean ± std over seeds per α (see coderl_jax/sweeps.py).
Hardware and time (tiny_cpu.flags, 2 CPU cores): see the flagfile's header for one run; with
a shared warm start the 9-run grid above costs 3 warm starts and 9 RL phases.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time

import sweeps  # experiments/sweeps.py (this script's directory is on sys.path)
from absl import app, flags

from coderl_jax.metrics import format_duration

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Relative to the working directory (paths in the flags are too): "experiments/run.py" when
# the sweep is started from the repository root, as documented.
RUN_SCRIPT = os.path.relpath(os.path.join(REPO, "experiments", "run.py"))
SBATCH_SCRIPT = os.path.relpath(os.path.join(REPO, "launch", "slurm_gpu.sbatch"))

F = flags
F.DEFINE_string("base_flagfile", None, "Flagfile every run starts from.", required=True)
F.DEFINE_list("alphas", ["1.0", "0.6", sweeps.ALIGNMENT_ONLY], "α values (or alignment_only).")
F.DEFINE_list("seeds", ["0", "1", "2"], "Seeds (--seed of run.py) per α.")
F.DEFINE_string("sweep_dir", "runs/sweep_alpha", "Parent directory of the runs' workdirs.")
F.DEFINE_multi_string(
    "overrides",
    [],
    "An extra run.py flag for every run (repeatable): --overrides=--steps=30. Flags after a "
    "lone -- are overrides too.",
)
F.DEFINE_enum("launcher", "print", ["local", "print", "slurm"], "How runs are started.")
F.DEFINE_bool(
    "shared_warm_start",
    True,
    "One warm-start run per seed (warm_start_seed_<S>, --steps=0) that the seed's α runs "
    "start from (--init_from); --noshared_warm_start: every run warm-starts itself.",
)
F.DEFINE_bool("collect", False, "Only tabulate the finished runs (no launching).")
F.DEFINE_list("metrics", list(sweeps.DEFAULT_METRICS), "Final metrics in the results table.")
F.DEFINE_string("results_dir", "experiments/results", "Where the table, CSV and plot go.")
F.DEFINE_string("results_name", "sweep_alpha", "File name stem of the results.")
F.DEFINE_string("python", sys.executable, "Interpreter of local runs (print shows 'python').")
FLAGS = F.FLAGS


def _command(
    run: sweeps.SweepRun, overrides: list[str], python: str, after_job: str | None = None
) -> list[str]:
    run_flags = sweeps.run_flags(run, FLAGS.base_flagfile, overrides, FLAGS.shared_warm_start)
    if FLAGS.launcher == "slurm":
        # The sbatch script takes the flagfile first, then the flags; logs in the workdir.
        return [
            "sbatch",
            "--parsable",
            *([f"--dependency=afterok:{after_job}"] if after_job else []),
            f"--job-name=coderl_{run.name}",
            f"--output={os.path.join(run.workdir, 'slurm-%j.out')}",
            f"--export=ALL,LOG_DIR={os.path.join(run.workdir, 'logs')}",
            SBATCH_SCRIPT,
            run_flags[0].removeprefix("--flagfile="),
            *run_flags[1:],
        ]
    return [python, RUN_SCRIPT, *run_flags]


def _run_locally(pending: list[sweeps.SweepRun], overrides: list[str]) -> list[str]:
    """Runs one after another; returns the names of runs that failed."""
    failed, start = [], time.monotonic()
    for i, run in enumerate(pending):
        if sweeps.SweepRun(None, run.seed, run.sweep_dir).name in failed:
            print(f"[{i + 1}/{len(pending)}] {run.name}: skipped, its warm start failed")
            failed.append(run.name)
            continue
        os.makedirs(run.workdir, exist_ok=True)
        log_path = os.path.join(run.workdir, "launch.log")
        print(f"[{i + 1}/{len(pending)}] {run.name}: running (log {log_path})", flush=True)
        with open(log_path, "a", encoding="utf-8") as log:
            code = subprocess.call(
                _command(run, overrides, FLAGS.python), stdout=log, stderr=subprocess.STDOUT
            )
        elapsed = time.monotonic() - start
        eta = elapsed / (i + 1) * (len(pending) - i - 1)
        status = "done" if code == 0 else f"FAILED (exit {code}, see {log_path})"
        print(
            f"[{i + 1}/{len(pending)}] {run.name}: {status}; elapsed "
            f"{format_duration(elapsed)}, ETA {format_duration(eta)}",
            flush=True,
        )
        if code != 0:
            failed.append(run.name)
    return failed


def main(argv: list[str]) -> None:
    overrides = [*FLAGS.overrides, *argv[1:]]
    try:
        runs = sweeps.plan(FLAGS.alphas, [int(s) for s in FLAGS.seeds], FLAGS.sweep_dir)
        for run in runs:  # validates the overrides before anything starts
            sweeps.run_flags(run, FLAGS.base_flagfile, overrides)
    except ValueError as e:
        raise app.UsageError(str(e)) from e
    failed: list[str] = []
    if not FLAGS.collect:
        pending = [r for r in runs if not r.is_finished()]
        warm = sweeps.warm_start_runs(pending) if FLAGS.shared_warm_start else []
        for run in [*warm, *runs]:
            if run.is_finished():
                print(f"# {run.name}: finished, skipped ({run.workdir})")
        # A seed's warm start goes first (its α runs start from it).
        pending = [r for r in warm if not r.is_finished()] + pending
        if FLAGS.launcher == "print":
            for run in pending:
                print(shlex.join(_command(run, overrides, "python")))
            return
        if FLAGS.launcher == "slurm":
            if pending and shutil.which("sbatch") is None:
                raise app.UsageError("--launcher=slurm: no sbatch on PATH (run on a login node)")
            warm_jobs: dict[int, str] = {}  # seed -> job id of its warm start
            for run in pending:
                os.makedirs(run.workdir, exist_ok=True)
                command = _command(run, overrides, "python", warm_jobs.get(run.seed))
                print(shlex.join(command), flush=True)
                job = subprocess.run(command, check=True, capture_output=True, text=True)
                if run.alpha_token is None:
                    warm_jobs[run.seed] = job.stdout.strip().split(";")[0]
            print("submitted; tabulate later with the same flags and --collect")
            return
        failed = _run_locally(pending, overrides)
        if failed:
            print(f"{len(failed)} run(s) failed: {', '.join(failed)}", file=sys.stderr)
    paths = sweeps.write_results(runs, FLAGS.metrics, FLAGS.results_dir, FLAGS.results_name)
    with open(paths["md"], encoding="utf-8") as f:
        print(f.read())
    print("wrote " + ", ".join(paths.values()))
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    app.run(main)

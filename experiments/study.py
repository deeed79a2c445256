r"""Runs a study (arms x seeds from one shared warm start per seed), then tabulates it.

    python experiments/study.py --base_flagfile=experiments/configs/tiny_cpu.flags \
        --seeds=0,1,2,3,4 --study_dir=runs/study --launcher=local --parallel=2
    python experiments/study.py --study_dir=runs/study --collect   # the table again

Arms (default all four): sft_continue (the warm start continued with supervised training
for the RL phase's updates and sequences, same data mix), grpo (α=1), coderl_plus
(α=--coderl_plus_alpha, by default the base's), alignment_only (α=0); alpha_<A> adds an
α ablation. The runs, their flags and the SFT-continue protocol: experiments/study_plan.py;
the statistics (mean ± standard error per arm, paired differences with 95% t intervals):
experiments/study_results.py.

Launchers: ``print`` writes the run.py commands (seed by seed, the warm start first);
``local`` runs them here, up to --parallel at a time (each arm once its seed's warm start is
done; the very first run alone when nothing of the study has finished yet, as it builds the
shared dataset cache), each one's output in ``<workdir>/launch.log``, then tabulates; ``slurm`` submits
each run with ``sbatch launch/slurm_gpu.sbatch``, the arms ``afterok`` their warm start.
Finished runs are skipped; unfinished ones run again and resume from their checkpoint (with
slurm, launch again only once the earlier jobs have ended, or a run is submitted twice).
Results: ``--results_dir/--results_name`` .md, .csv, _runs.csv and .png.
Hardware and time: one warm start plus the arms per seed, each as long as the base
flagfile's run (its header says); sft_continue costs about a warm start of its updates.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys

import study_plan  # experiments/ (this script's directory is on sys.path)
import study_results
from absl import app, flags
from study_plan import Study, StudyRun

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Relative to the working directory (paths in the flags are too): "experiments/run.py" when
# the study is started from the repository root, as documented.
RUN_SCRIPT = os.path.relpath(os.path.join(REPO, "experiments", "run.py"))
SBATCH_SCRIPT = os.path.relpath(os.path.join(REPO, "launch", "slurm_gpu.sbatch"))

F = flags
F.DEFINE_string("base_flagfile", None, "Flagfile every run starts from (not with --collect).")
F.DEFINE_list("arms", list(study_plan.DEFAULT_ARMS), "Arms: names or alpha_<A>.")
F.DEFINE_float(
    "coderl_plus_alpha",
    None,
    "α of the coderl_plus arm and of sft_continue's data mix (default: the base's α when it "
    "lies in (0, 1), else the paper's 0.6).",
)
F.DEFINE_list("seeds", ["0", "1", "2", "3", "4"], "Seeds: model init, data order, sampling.")
F.DEFINE_string("study_dir", "runs/study", "Parent directory of the runs' workdirs.")
F.DEFINE_multi_string(
    "overrides",
    [],
    "An extra run.py flag for every run (repeatable): --overrides=--steps=30. Flags after a "
    "lone -- are overrides too.",
)
F.DEFINE_multi_string(
    "sft_overrides", [], "An extra run.py flag for sft_continue runs only (after the protocol's)."
)
F.DEFINE_enum("launcher", "print", ["local", "print", "slurm"], "How runs are started.")
F.DEFINE_integer("parallel", 1, "--launcher=local: runs at a time.", lower_bound=1)
F.DEFINE_bool("collect", False, "Only tabulate the study in --study_dir (its study.json).")
F.DEFINE_list("metrics", list(study_results.DEFAULT_METRICS), "Final metrics in the table.")
F.DEFINE_string("results_dir", "experiments/results", "Where the table, CSV and plot go.")
F.DEFINE_string("results_name", "study", "File name stem of the results.")
F.DEFINE_string("python", sys.executable, "Interpreter of local runs (print shows 'python').")
FLAGS = F.FLAGS


def define_study(overrides: list[str]) -> tuple[Study, dict[str, list[str]]]:
    """The study of the flags, merged with the one saved in --study_dir, and every run's
    run.py flags (each validated by building its config, as run.py would)."""
    if FLAGS.base_flagfile is None:
        raise ValueError("--base_flagfile is required to launch (or --collect)")
    base = study_plan.resolve_config([f"--flagfile={FLAGS.base_flagfile}", *overrides])
    alpha = FLAGS.coderl_plus_alpha
    if alpha is None:
        alpha = base.alignment.mixture.alpha if 0 < base.alignment.mixture.alpha < 1 else 0.6
    arms = study_plan.parse_arms(FLAGS.arms, alpha)
    study = Study(
        study_dir=FLAGS.study_dir,
        base_flagfile=FLAGS.base_flagfile,
        overrides=tuple(overrides),
        sft_overrides=tuple(FLAGS.sft_overrides),
        coderl_plus_alpha=alpha,
        arms=tuple(a.name for a in arms),
        seeds=tuple(int(s) for s in FLAGS.seeds),
        sft_settings=study_plan.sft_continue_settings(base, alpha),
    )
    saved = Study.load(FLAGS.study_dir)
    study = saved.merged(study) if saved else study
    run_flags = {}
    for run in study.runs():
        run_flags[run.name] = study_plan.run_flags(
            run,
            study.base_flagfile,
            study.overrides,
            study.sft_settings,
            study.sft_overrides,
            tiny_model=base.model.hf_dir is None,
        )
        try:
            study_plan.resolve_config(run_flags[run.name])
        except ValueError as e:
            raise ValueError(f"{run.name}: {e}") from None
    return study, run_flags


def command(run: StudyRun, run_flags: list[str], python: str, after: str | None = None):
    if FLAGS.launcher != "slurm":
        return [python, RUN_SCRIPT, *run_flags]
    # The sbatch script takes the flagfile first, then the flags; logs in the workdir.
    return [
        "sbatch",
        "--parsable",
        *([f"--dependency=afterok:{after}"] if after else []),
        f"--job-name=coderl_{run.name}",
        f"--output={os.path.join(run.workdir, 'slurm-%j.out')}",
        f"--export=ALL,LOG_DIR={os.path.join(run.workdir, 'logs')}",
        SBATCH_SCRIPT,
        run_flags[0].removeprefix("--flagfile="),
        *run_flags[1:],
    ]


def submit_slurm(pending: list[StudyRun], run_flags) -> None:
    if pending and shutil.which("sbatch") is None:
        raise app.UsageError("--launcher=slurm: no sbatch on PATH (run on a login node)")
    warm_jobs: dict[int, str] = {}  # seed -> job id of its warm start
    for run in pending:
        os.makedirs(run.workdir, exist_ok=True)
        cmd = command(run, run_flags[run.name], "python", warm_jobs.get(run.seed))
        print(shlex.join(cmd), flush=True)
        job = subprocess.run(cmd, check=True, capture_output=True, text=True)
        if run.arm is None:
            warm_jobs[run.seed] = job.stdout.strip().split(";")[0]
    print("submitted; tabulate later with: " + collect_command(), flush=True)


def collect_command() -> str:
    """The one command that regenerates the results from the finished runs."""
    parts = ["python", "experiments/study.py", f"--study_dir={FLAGS.study_dir}", "--collect"]
    for name in ("results_dir", "results_name", "metrics"):
        if FLAGS[name].value != FLAGS[name].default:
            value = FLAGS[name].value
            parts.append(f"--{name}={','.join(value) if isinstance(value, list) else value}")
    return shlex.join(parts)


def main(argv: list[str]) -> None:
    overrides = [*FLAGS.overrides, *argv[1:]]
    failed: list[str] = []
    try:
        if FLAGS.collect:
            study = Study.load(FLAGS.study_dir)
            if study is None:
                raise ValueError(f"--collect: no {study_plan.STUDY_FILE} in {FLAGS.study_dir}")
        else:
            study, run_flags = define_study(overrides)
    except ValueError as e:
        raise app.UsageError(str(e)) from e
    if not FLAGS.collect:
        runs = study.runs()
        for run in runs:
            if run.is_finished():
                print(f"# {run.name}: finished, skipped ({run.workdir})")
        pending = [r for r in runs if not r.is_finished()]
        study.save()
        if FLAGS.launcher == "print":
            for run in pending:
                print(shlex.join(command(run, run_flags[run.name], "python")))
            return
        if FLAGS.launcher == "slurm":
            submit_slurm(pending, run_flags)
            return
        alone_first = not any(r.is_finished() for r in runs)
        commands = {r.name: command(r, run_flags[r.name], FLAGS.python) for r in pending}
        failed = study_plan.run_locally(pending, commands, FLAGS.parallel, alone_first)
        if failed:
            print(f"{len(failed)} run(s) failed: {', '.join(failed)}", file=sys.stderr)
    paths = study_results.write_results(
        study, FLAGS.metrics, FLAGS.results_dir, FLAGS.results_name, collect_command()
    )
    with open(paths["md"], encoding="utf-8") as f:
        print(f.read())
    print("wrote " + ", ".join(paths.values()))
    print("regenerate with: " + collect_command())
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    app.run(main)

r"""Runs CodeRL+ (or a baseline) from flags: flags -> `Config` -> `coderl_jax.loop.run`.

    python experiments/run.py --flagfile=experiments/configs/tiny_cpu.flags
    python experiments/run.py --flagfile=experiments/configs/tiny_cpu.flags \
        --alpha=0.4 --workdir=runs/alpha_0.4

Later flags override the flagfile. Every flag is one `Config` setting, generated from the
config dataclasses (experiments/config_flags.py; the names: coderl_jax/config.py).

Workdir: --workdir, else runs/<flagfile name> (runs/tiny_cpu for the first command),
else runs/default. It receives config.json (the resolved config) and flags.txt (this
command line, flagfiles expanded). Running again on a workdir that holds a checkpoint
resumes it; if the flags differ in a setting that changes the run (not just its length or
cadences), the run stops and lists them (old -> new) unless --allow_config_change.

At the end it prints every evaluation score (pass@k, rewards, accuracies; greedy and
sampled) at the first evaluation (before RL) and the last (after RL), with the change.

Errors: a bad flag, a missing path or missing data stops the run before anything loads,
with one line naming the flag (exit status 2). Logs: library INFO lines are off; raise
them with --verbosity=0 (1: debug).
"""

from __future__ import annotations

import os
import shlex
import sys

import config_flags
import script_setup
from absl import app, flags

from coderl_jax.checkpoint import CheckpointError
from coderl_jax.settings import ConfigError

config_flags.define_config_flags()
flags.adopt_module_key_flags(config_flags)  # --help lists them
flags.declare_key_flag("verbosity")  # absl's: -1 (default here) warnings, 0 info, 1 debug
flags.DEFINE_bool(
    "distributed", False, "Call jax.distributed.initialize (multi-host; env from SLURM/TPU)."
)
FLAGS = flags.FLAGS


def main(argv: list[str]) -> None:
    script_setup.setup_logging()
    script_setup.check_no_arguments(argv)
    if FLAGS.distributed:
        from coderl_jax.parallel import multihost

        multihost.initialize_distributed()
    from coderl_jax import loop

    workdir = config_flags.default_workdir(sys.argv)
    try:
        config = config_flags.config_from_flags(workdir=workdir)
        run_flags = config_flags.expanded_flags(sys.argv)
        if not FLAGS["workdir"].present:  # so that flags.txt reruns this run
            run_flags.append(f"--workdir={config.run.workdir}")
        loop.run(config, run_flags, shlex.join(["python", *sys.argv]))
    except config_flags.FlagValueError as e:
        script_setup.fail(e)
    except ConfigError as e:
        script_setup.fail(config_flags.flag_error(e))
    except CheckpointError as e:
        script_setup.fail(e)
    import jax

    from coderl_jax.metrics import METRICS_FILENAME
    from coderl_jax.reports import eval_before_after

    if jax.process_index() != 0:  # process 0 writes the metrics
        return
    table = eval_before_after(os.path.join(config.run.workdir, METRICS_FILENAME))
    if table:
        print(f"\nEvaluation scores (first column: before RL, last: after it)\n{table}", end="")


if __name__ == "__main__":
    app.run(main, flags_parser=script_setup.parse_flags)

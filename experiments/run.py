r"""Runs CodeRL+ (or a baseline) from flags: flags -> `Config` -> `coderl_jax.loop.run`.

    python experiments/run.py --flagfile=experiments/configs/tiny_cpu.flags
    python experiments/run.py --flagfile=experiments/configs/tiny_cpu.flags \
        --alpha=0.4 --workdir=runs/alpha_0.4

Later flags override the flagfile. Running again with the same --workdir resumes from
its latest checkpoint. Every flag is one `Config` setting, generated from the config
dataclasses (experiments/config_flags.py; the names: coderl_jax/config.py).
"""

from __future__ import annotations

import logging

import config_flags
from absl import app, flags
from absl import logging as absl_logging
from config_flags import FlagValueError, config_from_flags

config_flags.define_config_flags()
flags.adopt_module_key_flags(config_flags)  # --help lists them
flags.DEFINE_bool(
    "distributed", False, "Call jax.distributed.initialize (multi-host; env from SLURM/TPU)."
)
FLAGS = flags.FLAGS


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments (not flags): {argv[1:]}")
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # Libraries that log through absl (orbax: a dozen INFO lines per checkpoint) only warn;
    # set_verbosity also lowers the root logger, so coderl_jax's INFO is restored after it.
    absl_logging.set_verbosity(absl_logging.WARNING)
    logging.getLogger().setLevel(logging.INFO)
    if FLAGS.distributed:
        from coderl_jax.parallel import multihost

        multihost.initialize_distributed()
    try:
        config = config_from_flags()
    except FlagValueError as e:
        raise app.UsageError(str(e)) from e
    from coderl_jax import loop  # after flag parsing: jax initialises devices on import

    final = loop.run(config)
    for name, value in sorted(final.items()):
        print(f"{name} = {value:.4f}")


if __name__ == "__main__":
    app.run(main)

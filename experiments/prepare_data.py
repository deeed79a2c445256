r"""Builds every dataset a run needs, before the run: no model, no TensorFlow, no accelerator.

    python experiments/prepare_data.py --flagfile=experiments/configs/tiny_cpu.flags
    TFDS_DATA_DIR=/shared/tfds coderl-prepare-data \
        --flagfile=experiments/configs/coderl_plus_qwen25_coder_7b_a100x8.flags \
        --manual_dir=/shared/coderl_manual

It takes run.py's flags, so any run.py command line works with run.py replaced by this
script (on a cluster: on the login node, into the ``data_dir`` the jobs share). Of those,
the data flags count: --dataset, --train_split, --data_dir (default $TFDS_DATA_DIR, else
~/.cache/coderl_jax/tensorflow_datasets), --manual_dir, --synthetic_sizes,
--synthetic_families, --skip_bad_rows and --eval_benchmarks. It builds (or finds built)
the training dataset and the data of every evaluation benchmark
(`coderl_jax.data.prepare`) and prints one line per dataset.

Exit status 0 when the run will find all its data; 1 when a dataset it cannot do without
is missing (a manual dataset whose files are absent: the line names the file and the
directory) or failed to build. A manual source that its benchmark can leave out (e.g.
LiveCodeBench's part of ``code_reasoning``) is reported as optional and does not fail.
"""

from __future__ import annotations

import sys

import config_flags
import run  # noqa: F401  (defines run.py's flags, so every run.py command line parses here)
from absl import app, flags
from absl import logging as absl_logging

FLAGS = flags.FLAGS


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        sys.exit(f"prepare_data: unexpected arguments (not flags): {argv[1:]}")
    if not FLAGS["verbosity"].present:
        absl_logging.set_verbosity(absl_logging.WARNING)  # TFDS's INFO lines per split
    try:
        config = config_flags.config_from_flags()
    except config_flags.FlagValueError as e:
        sys.exit(f"prepare_data: {e}")
    from coderl_jax.data import prepare

    try:
        needs = prepare.datasets_needed(config)
    except ValueError as e:
        sys.exit(f"prepare_data: {e}")
    data = config.data
    manual = data.manual_dir or "<data_dir>/downloads/manual"
    print(f"data_dir {data.data_dir}, manual_dir {manual}: {len(needs)} datasets", flush=True)
    results = []
    for result in prepare.prepare_needed(needs, data):
        print(result.line(), flush=True)
        results.append(result)
    blocking = [r.need.key for r in results if r.blocks_the_run]
    if blocking:
        sys.exit(f"prepare_data: the run would stop: not ready: {', '.join(blocking)}")
    ready = sum(r.status == "ready" for r in results)
    print(f"prepare_data: the run's data is ready ({ready} of {len(results)} datasets built)")


if __name__ == "__main__":
    app.run(main)

r"""Exports a run's latest policy as a Hugging Face directory (transformers / vLLM load it).

python experiments/export_hf.py --workdir=runs/tiny_cpu --out_dir=runs/tiny_cpu/hf

Reads the params only (not the optimizer state). The export's generation_config.json is
the source model's (its eos list and sampling defaults), or, for a source without one,
one built from the run's tokenizer and sampling settings. --workdir and --out_dir may be
local or any etils.epath path (gs://bucket/...).
"""

from __future__ import annotations

import script_setup
from absl import app, flags

flags.DEFINE_string("workdir", None, "Run directory with checkpoints.", required=True)
flags.DEFINE_string("out_dir", None, "Directory to write the HF checkpoint to.", required=True)
flags.DEFINE_enum(
    "dtype", None, ["float32", "bfloat16"], "Saved weight dtype (default: the model's)."
)
flags.declare_key_flag("verbosity")  # absl's: -1 (default here) warnings, 0 info, 1 debug
FLAGS = flags.FLAGS


def main(argv: list[str]) -> None:
    script_setup.setup_logging()
    script_setup.check_no_arguments(argv)
    from coderl_jax import learner as learner_lib
    from coderl_jax import storage
    from coderl_jax import workdir as workdir_lib
    from coderl_jax.checkpoint import CheckpointError
    from coderl_jax.models import hf_io

    if not workdir_lib.checkpoint_steps(FLAGS.workdir):
        script_setup.fail(f"--workdir={FLAGS.workdir}: no finished checkpoint there")
    if not (storage.as_path(FLAGS.workdir) / workdir_lib.CONFIG_FILE).is_file():
        script_setup.fail(
            f"--workdir={FLAGS.workdir}: no {workdir_lib.CONFIG_FILE} (not a run workdir)"
        )
    try:
        policy = learner_lib.load_policy(FLAGS.workdir)
    except CheckpointError as e:
        script_setup.fail(e)
    config = learner_lib.saved_config(FLAGS.workdir)
    generation = hf_io.generation_config_for(
        policy.hf_dir,
        policy.model_config,
        policy.special.stop_ids,
        policy.special.pad_id,
        config.rollout.sampling,
    )
    hf_io.save_pretrained(
        FLAGS.out_dir,
        policy.model_config,
        policy.params,
        policy.tokenizer,
        dtype=FLAGS.dtype,
        generation_config=generation,
    )
    print(f"exported step {policy.step} of {FLAGS.workdir} to {FLAGS.out_dir}")


if __name__ == "__main__":
    app.run(main, flags_parser=script_setup.parse_flags)

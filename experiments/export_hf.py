r"""Exports a run's latest policy as a Hugging Face directory (transformers / vLLM load it).

python experiments/export_hf.py --workdir=runs/tiny_cpu --out_dir=runs/tiny_cpu/hf
"""

from __future__ import annotations

from absl import app, flags

flags.DEFINE_string("workdir", None, "Run directory with checkpoints.", required=True)
flags.DEFINE_string("out_dir", None, "Directory to write the HF checkpoint to.", required=True)
flags.DEFINE_enum(
    "dtype", None, ["float32", "bfloat16"], "Saved weight dtype (default: the model's)."
)
FLAGS = flags.FLAGS


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from coderl_jax import loop
    from coderl_jax.models import hf_io

    learner = loop.load(FLAGS.workdir)
    hf_io.save_pretrained(
        FLAGS.out_dir,
        learner.model_config,
        learner.state.params,
        learner.tokenizer,
        dtype=FLAGS.dtype,
    )
    print(f"exported step {learner.next_step} of {FLAGS.workdir} to {FLAGS.out_dir}")


if __name__ == "__main__":
    app.run(main)

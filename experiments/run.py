r"""Runs CodeRL+ (or a baseline) from flags: flags -> `Config` -> `coderl_jax.loop.run`.

    python experiments/run.py --flagfile=experiments/configs/tiny_cpu.flags
    python experiments/run.py --flagfile=experiments/configs/tiny_cpu.flags \
        --alpha=0.4 --workdir=runs/alpha_0.4

Later flags override the flagfile. Running again with the same --workdir resumes from
its latest checkpoint. Every flag maps to one `Config` field (see coderl_jax/config.py).
"""

from __future__ import annotations

import dataclasses
import logging

from absl import app, flags
from absl import logging as absl_logging

from coderl_jax import config as config_lib
from coderl_jax.models.tiny import TinyModelSpec
from coderl_jax.train.config import TrainConfig

_D = config_lib
F = flags

# ---------------------------------------------------------------- run
F.DEFINE_string(
    "workdir", _D.RunConfig.workdir, "Run directory (checkpoints, metrics); reused to resume."
)
F.DEFINE_integer("steps", _D.RunConfig.steps, "RL steps.")
F.DEFINE_integer("seed", _D.RunConfig.seed, "Seed of sampling, initialisation and data order.")
F.DEFINE_list("mesh", ["-1", "1", "1"], "Mesh sizes data,fsdp,tensor (-1: remaining devices).")
F.DEFINE_integer("log_every", _D.RunConfig.log_every, "Console line every N steps.")
F.DEFINE_integer(
    "samples_every", _D.RunConfig.samples_every, "Write sample generations every N steps."
)
F.DEFINE_integer("checkpoint_every", _D.RunConfig.checkpoint_every, "Checkpoint every N steps.")
F.DEFINE_integer("keep_checkpoints", _D.RunConfig.keep_checkpoints, "Checkpoints kept.")
F.DEFINE_bool(
    "export_hf", _D.RunConfig.export_hf, "Write an HF directory of the final policy to WORKDIR/hf."
)
F.DEFINE_bool(
    "distributed", False, "Call jax.distributed.initialize (multi-host; env from SLURM/TPU)."
)

# ---------------------------------------------------------------- model
F.DEFINE_string("hf_dir", None, "HF checkpoint directory; unset: the embedded tiny model.")
F.DEFINE_string(
    "tiny_dir", _D.ModelSourceConfig.tiny_dir, "Where the tiny model is built and cached."
)
F.DEFINE_integer("tiny_seed", TinyModelSpec.seed, "Seed of the tiny model's weights and tokenizer.")
F.DEFINE_enum(
    "param_dtype", None, ["float32", "bfloat16"], "Override the checkpoint's weight dtype."
)
F.DEFINE_enum("compute_dtype", None, ["float32", "bfloat16"], "Override the compute dtype.")
F.DEFINE_integer(
    "scan_unroll",
    0,
    "Decoder layers per scan iteration; 0 unrolls all layers (faster steps on GPU and CPU, "
    "longer compiles); 1 compiles a single layer.",
)
F.DEFINE_enum(
    "attention_impl",
    "xla",
    ["xla", "cudnn"],
    "Training/scoring attention: xla (einsum with a mask; any device) or cudnn (fused flash "
    "attention; GPU with bf16/fp16 compute; rows are right-aligned by the rollout).",
)
F.DEFINE_string("init_from", None, "Start from the latest params of another run's workdir.")

# ---------------------------------------------------------------- data
F.DEFINE_string(
    "dataset",
    _D.DataConfig.dataset,
    "TFDS dataset of code problems (coderl_synthetic, prime_code, ...).",
)
F.DEFINE_string("data_dir", _D.DataConfig.data_dir, "TFDS data_dir.")
F.DEFINE_string("manual_dir", None, "Directory with user-provided files of manual datasets.")
F.DEFINE_string("train_split", _D.DataConfig.train_split, "Split RL draws prompts from.")
F.DEFINE_integer(
    "max_prompt_tokens", _D.DataConfig.max_prompt_tokens, "Longer prompts are skipped (counted)."
)
F.DEFINE_bool(
    "skip_bad_rows", False, "Skip (count, log) malformed dataset rows instead of failing."
)
F.DEFINE_list(
    "synthetic_sizes",
    [str(n) for n in _D.DataConfig.synthetic_sizes],
    "coderl_synthetic train,validation,test,heldout sizes.",
)
F.DEFINE_list(
    "synthetic_families",
    [],
    "coderl_synthetic: trained families to draw problems from (default: all 62).",
)

# ---------------------------------------------------------------- rollout
F.DEFINE_integer(
    "prompts_per_step", _D.RolloutConfig.prompts_per_step, "B: prompts per step (code + alignment)."
)
F.DEFINE_integer("num_samples", _D.RolloutConfig.num_samples, "G: completions per prompt.")
F.DEFINE_integer("max_new_tokens", 96, "Completion length limit.")
F.DEFINE_float("temperature", 1.0, "Sampling temperature (0: greedy).")
F.DEFINE_float("top_p", 1.0, "Nucleus sampling mass (1: off).")
F.DEFINE_integer("top_k", 0, "Top-k sampling (0: off).")
F.DEFINE_list(
    "prompt_buckets",
    ["64", "128", "256", "512", "1024", "2048", "4096", "8192"],
    "Prompt widths that compile (smallest that fits is used).",
)
F.DEFINE_enum(
    "advantage_estimator", "grpo", list(config_lib.ADVANTAGE_ESTIMATORS), "Advantage estimator."
)
F.DEFINE_float("exec_timeout_s", _D.RolloutConfig.exec_timeout_s, "Wall-clock limit per program.")
F.DEFINE_integer("num_sandbox_workers", None, "Sandbox worker processes (default: CPU count).")
F.DEFINE_integer(
    "overlap_chunks",
    _D.RolloutConfig.overlap_chunks,
    "Generation chunks overlapped with execution.",
)
F.DEFINE_enum(
    "alignment_reward_mode", "official", ["official", "paper"], "Alignment reward formula."
)
F.DEFINE_integer("overlong_buffer_len", 0, "DAPO soft overlong punishment window (0: off).")
F.DEFINE_bool("dynamic_sampling", False, "DAPO dynamic sampling (drop groups with equal rewards).")
F.DEFINE_integer(
    "max_sampling_rounds",
    _D.RolloutConfig.max_sampling_rounds,
    "Dynamic sampling: rounds per step at most.",
)

# ---------------------------------------------------------------- alignment
F.DEFINE_float(
    "alpha", 0.6, "Fraction of code-generation prompts (1: plain GRPO; 0: alignment only)."
)
F.DEFINE_enum(
    "buffer_sampling", "recent", ["recent", "random", "balanced"], "Alignment buffer sampling."
)
F.DEFINE_integer(
    "buffer_capacity", _D.AlignmentTaskConfig.buffer_capacity, "Alignment buffer capacity."
)
F.DEFINE_integer("max_variables", 3, "K: variables asked per alignment task.")
F.DEFINE_enum("variable_policy", "official", ["official", "loops"], "Which variables to ask.")
F.DEFINE_enum(
    "alignment_prompt_style",
    "full",
    ["full", "concise"],
    "Alignment prompt wording (concise: small models).",
)
F.DEFINE_list("alignment_pool_files", [], "alignment_only: buffer JSONL files of earlier runs.")

# ---------------------------------------------------------------- train step
_T = TrainConfig
F.DEFINE_float("learning_rate", _T.learning_rate, "Peak learning rate.")
F.DEFINE_integer("warmup_steps", _T.warmup_steps, "Learning-rate warmup (optimizer updates).")
F.DEFINE_enum("lr_schedule", _T.lr_schedule, ["constant", "cosine"], "Schedule after warmup.")
F.DEFINE_float("weight_decay", _T.weight_decay, "AdamW weight decay (not on norms/biases).")
F.DEFINE_float("max_grad_norm", _T.max_grad_norm, "Global-norm clipping threshold.")
F.DEFINE_enum("policy_loss", _T.policy_loss, ["ppo_clip", "gspo"], "Policy loss.")
F.DEFINE_string(
    "loss_agg_mode", _T.loss_agg_mode, "Loss aggregation (token-mean, seq-mean-token-sum, ...)."
)
F.DEFINE_float("clip_ratio_low", _T.clip_ratio_low, "PPO lower clip.")
F.DEFINE_float("clip_ratio_high", _T.clip_ratio_high, "PPO upper clip (DAPO clip-higher: 0.28).")
F.DEFINE_float("kl_coef", _T.kl_coef, "KL loss coefficient (0 skips the reference model).")
F.DEFINE_string("kl_kind", _T.kl_kind, "KL estimator (k1, k2, k3, abs).")
F.DEFINE_float("entropy_coef", _T.entropy_coef, "Entropy bonus coefficient.")
F.DEFINE_integer("ppo_epochs", _T.ppo_epochs, "Passes over each rollout batch.")
F.DEFINE_integer("num_mini_batches", _T.num_mini_batches, "Optimizer updates per epoch.")
F.DEFINE_integer(
    "num_micro_batches", _T.num_micro_batches, "Gradient accumulation steps per update."
)
F.DEFINE_integer(
    "micro_batch_width_multiple",
    _T.micro_batch_width_multiple,
    "> 0: rows are grouped by length into micro-batches and each micro-batch is cut after "
    "its last real token, rounded up to a multiple of this (one compiled width each); "
    "0: every micro-batch spans all columns.",
)
F.DEFINE_integer(
    "logprob_chunk_size",
    _T.logprob_chunk_size,
    "Sequence positions per chunk of the vocabulary projection (0: all at once).",
)
F.DEFINE_bool(
    "master_weights_fp32", _T.master_weights_fp32, "Keep fp32 params and optimizer state."
)
F.DEFINE_enum(
    "remat_policy", None, ["none", "full", "dots"], "Gradient checkpointing of each layer."
)

# ---------------------------------------------------------------- warm start, evaluation
F.DEFINE_integer("warm_start_steps", 0, "Supervised warm-start steps (0: none).")
F.DEFINE_integer("warm_start_batch_size", _D.WarmStartConfig.batch_size, "Warm-start batch size.")
F.DEFINE_float(
    "warm_start_learning_rate", _D.WarmStartConfig.learning_rate, "Warm-start peak learning rate."
)
F.DEFINE_integer(
    "warm_start_num_problems", 0, "Training problems whose references the warm start uses (0: all)."
)
F.DEFINE_float(
    "warm_start_alignment_fraction",
    _D.WarmStartConfig.alignment_fraction,
    "Share of alignment examples in the warm start.",
)
F.DEFINE_integer("eval_every", 0, "Evaluate every N steps (0: before and after RL only).")
F.DEFINE_integer(
    "eval_num_problems", _D.EvalConfig.num_problems, "Problems per benchmark (0: all)."
)
F.DEFINE_list(
    "eval_benchmarks",
    list(_D.EvalConfig.benchmarks),
    "Benchmarks of the periodic evaluation (coderl_jax.evals.BENCHMARKS), e.g. "
    "synthetic,synthetic_reasoning.",
)
F.DEFINE_integer(
    "eval_sampled_num_samples",
    _D.EvalConfig.sampled_num_samples,
    "Also report pass@1 of N samples per problem at --eval_sampled_temperature (0: greedy only).",
)
F.DEFINE_float(
    "eval_sampled_temperature",
    _D.EvalConfig.sampled_temperature,
    "Temperature of the sampled evaluation.",
)

FLAGS = F.FLAGS


def config_from_flags() -> config_lib.Config:
    """Builds the frozen Config; a bad value raises ValueError naming the flag."""
    sampling = dataclasses.replace(
        config_lib.RolloutConfig.sampling,
        max_new_tokens=FLAGS.max_new_tokens,
        temperature=FLAGS.temperature,
        top_p=FLAGS.top_p,
        top_k=FLAGS.top_k,
        prompt_buckets=tuple(int(b) for b in FLAGS.prompt_buckets),
    )
    mixture = config_lib.MixtureConfig(alpha=FLAGS.alpha, sampling=FLAGS.buffer_sampling)
    conversion = dataclasses.replace(
        config_lib.AlignmentConfig(),
        max_variables=FLAGS.max_variables,
        variable_policy=FLAGS.variable_policy,
        prompt_style=FLAGS.alignment_prompt_style,
    )
    return config_lib.Config(
        run=config_lib.RunConfig(
            workdir=FLAGS.workdir,
            steps=FLAGS.steps,
            seed=FLAGS.seed,
            mesh=tuple(int(x) for x in FLAGS.mesh),
            log_every=FLAGS.log_every,
            samples_every=FLAGS.samples_every,
            checkpoint_every=FLAGS.checkpoint_every,
            keep_checkpoints=FLAGS.keep_checkpoints,
            export_hf=FLAGS.export_hf,
        ),
        model=config_lib.ModelSourceConfig(
            hf_dir=FLAGS.hf_dir,
            tiny_dir=FLAGS.tiny_dir,
            tiny=dataclasses.replace(TinyModelSpec(), seed=FLAGS.tiny_seed),
            param_dtype=FLAGS.param_dtype,
            compute_dtype=FLAGS.compute_dtype,
            scan_unroll=FLAGS.scan_unroll,
            attention_impl=FLAGS.attention_impl,
            init_from=FLAGS.init_from,
        ),
        data=config_lib.DataConfig(
            dataset=FLAGS.dataset,
            data_dir=FLAGS.data_dir,
            manual_dir=FLAGS.manual_dir,
            train_split=FLAGS.train_split,
            max_prompt_tokens=FLAGS.max_prompt_tokens,
            skip_bad_rows=FLAGS.skip_bad_rows,
            seed=FLAGS.seed,
            synthetic_sizes=tuple(int(x) for x in FLAGS.synthetic_sizes),
            synthetic_families=tuple(FLAGS.synthetic_families),
        ),
        rollout=config_lib.RolloutConfig(
            prompts_per_step=FLAGS.prompts_per_step,
            num_samples=FLAGS.num_samples,
            sampling=sampling,
            advantage_estimator=FLAGS.advantage_estimator,
            exec_timeout_s=FLAGS.exec_timeout_s,
            num_sandbox_workers=FLAGS.num_sandbox_workers,
            overlap_chunks=FLAGS.overlap_chunks,
            alignment_reward_mode=FLAGS.alignment_reward_mode,
            overlong_buffer_len=FLAGS.overlong_buffer_len,
            dynamic_sampling=FLAGS.dynamic_sampling,
            max_sampling_rounds=FLAGS.max_sampling_rounds,
        ),
        alignment=config_lib.AlignmentTaskConfig(
            mixture=mixture,
            conversion=conversion,
            buffer_capacity=FLAGS.buffer_capacity,
            pool_files=tuple(FLAGS.alignment_pool_files),
        ),
        train=TrainConfig(
            learning_rate=FLAGS.learning_rate,
            warmup_steps=FLAGS.warmup_steps,
            lr_schedule=FLAGS.lr_schedule,
            decay_steps=max(1, FLAGS.steps * FLAGS.ppo_epochs * FLAGS.num_mini_batches),
            weight_decay=FLAGS.weight_decay,
            max_grad_norm=FLAGS.max_grad_norm,
            policy_loss=FLAGS.policy_loss,
            loss_agg_mode=FLAGS.loss_agg_mode,
            clip_ratio_low=FLAGS.clip_ratio_low,
            clip_ratio_high=FLAGS.clip_ratio_high,
            kl_coef=FLAGS.kl_coef,
            kl_kind=FLAGS.kl_kind,
            entropy_coef=FLAGS.entropy_coef,
            temperature=FLAGS.temperature if FLAGS.temperature > 0 else 1.0,
            ppo_epochs=FLAGS.ppo_epochs,
            num_mini_batches=FLAGS.num_mini_batches,
            num_micro_batches=FLAGS.num_micro_batches,
            micro_batch_width_multiple=FLAGS.micro_batch_width_multiple,
            logprob_chunk_size=FLAGS.logprob_chunk_size,
            master_weights_fp32=FLAGS.master_weights_fp32,
            remat_policy=FLAGS.remat_policy,
        ),
        warm_start=config_lib.WarmStartConfig(
            steps=FLAGS.warm_start_steps,
            batch_size=FLAGS.warm_start_batch_size,
            learning_rate=FLAGS.warm_start_learning_rate,
            alignment_fraction=FLAGS.warm_start_alignment_fraction,
            num_problems=FLAGS.warm_start_num_problems,
        ),
        eval=config_lib.EvalConfig(
            every_steps=FLAGS.eval_every,
            benchmarks=tuple(FLAGS.eval_benchmarks),
            num_problems=FLAGS.eval_num_problems,
            sampled_num_samples=FLAGS.eval_sampled_num_samples,
            sampled_temperature=FLAGS.eval_sampled_temperature,
        ),
    )


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
    except ValueError as e:
        raise app.UsageError(str(e)) from e
    from coderl_jax import loop  # after flag parsing: jax initialises devices on import

    final = loop.run(config)
    for name, value in sorted(final.items()):
        print(f"{name} = {value:.4f}")


if __name__ == "__main__":
    app.run(main)

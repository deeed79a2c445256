"""Tunix's GRPO train step on our config, weights and batch: the baseline of train_step.py.

What is timed is what Tunix's trainer runs per GRPO update: ``algo_core.grpo_loss_fn``
(Tunix's per-token log-probs from full logits, PPO clip with dual clip, KL, entropy) under
``nnx.value_and_grad``, then ``nnx.Optimizer.update`` with the same optax AdamW chain as
ours, in one ``nnx.jit`` with the optimizer donated (as ``PeftTrainer`` does). The weights are
ours, written as a HF safetensors directory and read by Tunix's own Qwen2 loader.

`cross_check` is the check that both compute the same objective: on a batch where every
term of it matters (prompts and completions of unequal lengths, so both sides' padding
is exercised; group-normalised advantages of graded rewards, none zero; old log-probs
away from the current ones, so the PPO clip and the dual clip both act; a KL term), it
compares our loss (`coderl_jax.train.loss.rl_loss`) and its gradient with Tunix's
``grpo_loss_fn`` under ``nnx.value_and_grad``, leaf by leaf, at full precision, and raises
when they differ by more than float32 rounding. Our gradient is mapped onto Tunix's
parameters by the same HF conversion as the weights (transposes and reshapes only, so a
gradient maps exactly like a weight).

``tunix/__init__.py`` imports every trainer and their dependencies (grain, metrax, qwix,
datasets, sentencepiece, ...), which a plain install here does not bring in without
replacing packages the project pins. Only the modules the GRPO step needs are imported:
the package is registered without running its ``__init__``.
"""

from __future__ import annotations

import functools
import importlib.util
import sys
import tempfile
import time
import types

import jax
import jax.numpy as jnp
import numpy as np

from coderl_jax.models import hf_io
from coderl_jax.models.config import ModelConfig
from coderl_jax.rl.batch import TrainBatch
from coderl_jax.train import loss as loss_lib
from coderl_jax.train.config import TrainConfig
from coderl_jax.train.optim import make_optimizer
from coderl_jax.train.state import training_model_config


def _import_tunix():
    spec = importlib.util.find_spec("tunix")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("google-tunix is not installed (pip install google-tunix)")
    if "tunix" not in sys.modules:
        package = types.ModuleType("tunix")
        package.__path__ = list(spec.submodule_search_locations)
        sys.modules["tunix"] = package
    from flax import nnx
    from tunix.models.qwen2 import model as qwen2_model
    from tunix.models.qwen2 import params as qwen2_params
    from tunix.rl import algo_core, common

    return nnx, qwen2_model, qwen2_params, algo_core, common


nnx, qwen2_model, qwen2_params, algo_core, common = _import_tunix()


def tunix_config(config: ModelConfig) -> qwen2_model.ModelConfig:
    """Tunix's Qwen2 config with our shape (fp32)."""
    return qwen2_model.ModelConfig(
        num_layers=config.num_layers,
        vocab_size=config.vocab_size,
        embed_dim=config.hidden_size,
        hidden_dim=config.intermediate_size,
        num_heads=config.num_heads,
        head_dim=config.head_dim,
        num_kv_heads=config.num_kv_heads,
        rope_theta=int(config.rope_theta),
        norm_eps=config.rms_norm_eps,
        use_tied_embedding=config.tie_word_embeddings,
    )


def tunix_model(model_config: ModelConfig, params):
    """Tunix's Qwen2 model holding ``params`` (our layout), through a HF directory."""
    with tempfile.TemporaryDirectory() as hf_dir:
        # save_pretrained takes jax arrays (it gathers sharded ones), not numpy.
        device_params = jax.tree.map(jax.numpy.asarray, params)
        hf_io.save_pretrained(hf_dir, model_config.replace(param_dtype="float32"), device_params)
        return qwen2_params.create_model_from_safe_tensors(hf_dir, tunix_config(model_config))


def tunix_algo_config(train_config: TrainConfig) -> types.SimpleNamespace:
    """Tunix's GRPO settings equal to ours (k3 is Tunix's low_var_kl)."""
    return types.SimpleNamespace(
        beta=train_config.kl_coef,
        epsilon=train_config.clip_ratio_low,
        epsilon_high=train_config.clip_ratio_high,
        epsilon_c=train_config.clip_ratio_c,
        loss_algo="grpo",
        loss_agg_mode=train_config.loss_agg_mode,
        temperature=train_config.temperature,
        kl_loss_mode="low_var_kl",
        kl_clamp_value=None,
    )


# ----------------------------------------------------------------------- the cross-check
PAD_ID = 0  # padding token of the cross-check batch; real tokens are 1 .. V - 1
# Largest differences float32 rounding explains (see `cross_check`).
LOSS_TOLERANCE = 1e-5  # relative to |loss|
GRADIENT_TOLERANCE = 1e-4  # per leaf, max |difference| relative to max |gradient|


def cross_check_batch(
    model_config: ModelConfig,
    params,
    temperature: float,
    rows: int = 8,
    prompt_width: int = 24,
    completion_width: int = 40,
    group_size: int = 4,
    seed: int = 0,
) -> TrainBatch:
    """A GRPO batch in the sampler's layout in which every term of the loss is non-zero.

    Prompts of ``prompt_width / 3 .. prompt_width`` tokens (left-padded with `PAD_ID`) and
    completions of ``8 .. completion_width`` tokens (right-padded), so both sides' padding
    and masks matter; rewards graded in [0, 1], advantages normalised per group of
    ``group_size`` (none zero); the reference log-probs are the current ones (at
    ``temperature``) plus N(0, 0.2) noise and the old ones plus N(0, 0.5), so about a
    third of the tokens are clipped and a few negative-advantage ones dual-clipped.
    """
    rng = np.random.default_rng(seed)
    width = prompt_width + completion_width
    prompt_lengths = rng.integers(prompt_width // 3, prompt_width + 1, rows)
    completion_lengths = rng.integers(8, completion_width + 1, rows)
    columns = np.arange(width)
    attention = (columns >= prompt_width - prompt_lengths[:, None]) & (
        columns < prompt_width + completion_lengths[:, None]
    )
    tokens = np.where(attention, rng.integers(1, model_config.vocab_size, (rows, width)), PAD_ID)
    loss_mask = attention & (columns >= prompt_width)
    rewards = rng.random(rows).astype(np.float32)
    groups = rewards.reshape(-1, group_size)
    advantages = (groups - groups.mean(-1, keepdims=True)) / (groups.std(-1, keepdims=True) + 1e-6)
    batch = TrainBatch(
        tokens=tokens.astype(np.int32),
        attention_mask=attention.astype(np.int32),
        positions=np.maximum(np.cumsum(attention, axis=1) - 1, 0).astype(np.int32),
        loss_mask=loss_mask.astype(np.float32),
        advantages=advantages.reshape(rows).astype(np.float32),
        rewards=rewards,
        task_kind=np.zeros(rows, np.int32),
        response_start=prompt_width,
    )
    current, _ = jax.jit(
        functools.partial(
            loss_lib.sequence_logprobs,
            model_config=model_config,
            temperature=temperature,
            chunk_size=0,
            compute_entropy=False,
        )
    )(params, batch=batch)
    current = np.asarray(current)

    def perturbed(scale):
        noise = scale * rng.standard_normal(current.shape)
        return np.where(loss_mask, current + noise, 0.0).astype(np.float32)

    return batch.replace(ref_logprobs=perturbed(0.2), old_logprobs=perturbed(0.5))


def _max_differences(ours, theirs) -> tuple[float, float]:
    """(max |ours - theirs|, that divided by max |theirs|)."""
    ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    diff = float(np.max(np.abs(ours - theirs)))
    return diff, diff / max(float(np.max(np.abs(theirs))), np.finfo(np.float32).tiny)


def cross_check(
    model_config: ModelConfig, train_config: TrainConfig, params, log=print
) -> dict[str, float]:
    """Our GRPO loss and gradient against Tunix's on `cross_check_batch`; raises
    AssertionError naming the loss term or gradient leaf that differs by more than float32
    rounding explains. ``train_config``'s loss settings are used, except: two epochs (the
    old log-probs enter the ratio), kl_coef 0.1 and temperature 0.7.

    Tolerances: both sides compute the same float32 function in a different order (our
    chunked log-prob kernel and fused projections vs Tunix's full logits). A loss is a mean
    of a few hundred per-token terms, each from a forward pass of sums over D, T and V
    terms; a gradient entry sums B x T products of such terms. Rounding each sum in another
    order moves it by ~ sqrt(n) u relative (u = 2^-24 = 6e-8; n up to 1e4 here: 6e-6), so
    `LOSS_TOLERANCE` (1e-5 relative) and `GRADIENT_TOLERANCE` (1e-4 of a leaf's largest
    entry, for entries that cancel) bound rounding (measured on tiny, 5m and 100m: 3e-7 and
    4e-6 at most). A wrong setting on one side fails it: Tunix with clip-higher 0.28, dual
    clip 2.5, temperature 0.75 or the k1 KL estimator instead of ours moves the loss by 2e-2
    to 0.27 relative and the gradient leaves by 8e-2 to 0.31.

    Returns:
      the compared numbers: loss terms and their differences, per-leaf differences, and
      the fractions of tokens where the clips act.
    """
    # Two epochs: the loss then takes the batch's old log-probs (one update would use its
    # own); kl_coef 0.1 makes the KL term's gradient a sizable share of the total; T=0.7 is
    # the embedded default's (Tunix skips the division at T=1).
    config = train_config.replace(ppo_epochs=2, kl_coef=0.1, temperature=0.7)
    train_model = training_model_config(model_config, config)
    params = jax.tree.map(lambda p: jnp.asarray(p, jnp.float32), params)
    batch = cross_check_batch(train_model, params, config.temperature)
    one = jnp.ones((), jnp.float32)
    ours_fn = jax.jit(
        jax.value_and_grad(loss_lib.rl_loss, has_aux=True),
        static_argnames=("model_config", "config"),
    )
    (our_loss, our_metrics), our_grads = ours_fn(
        params, batch, one, one, model_config=train_model, config=config
    )

    prompt = batch.response_start
    example = common.TrainExample(
        prompt_ids=batch.tokens[:, :prompt],
        prompt_mask=batch.attention_mask[:, :prompt],
        completion_ids=batch.tokens[:, prompt:],
        completion_mask=batch.loss_mask[:, prompt:],
        advantages=batch.advantages,
        ref_per_token_logps=batch.ref_logprobs[:, prompt:],
        old_per_token_logps=batch.old_logprobs[:, prompt:],
    )
    algo_config = tunix_algo_config(config)

    def tunix_loss(model, example):
        return algo_core.grpo_loss_fn(model, example, algo_config, PAD_ID, PAD_ID)

    model = tunix_model(model_config, params)
    (tunix_total, aux), tunix_grads = nnx.jit(nnx.value_and_grad(tunix_loss, has_aux=True))(
        model, example
    )
    # Our gradient in Tunix's parameter layout: the weights' HF conversion, applied to it.
    mapped = nnx.state(tunix_model(model_config, our_grads), nnx.Param)
    theirs = nnx.state(tunix_grads, nnx.Param)

    results = {
        "loss_ours": float(our_loss),
        "loss_tunix": float(tunix_total),
        "pg_loss_ours": float(our_metrics["pg_loss"]),
        "pg_loss_tunix": float(aux["pg_loss"]),
        "kl_ours": float(our_metrics["kl"]),
        "kl_tunix": float(aux["kl_loss"]),
        "pg_clipfrac": float(aux["pg_clipfrac"]),
        "pg_clipfrac_lower": float(aux["pg_clipfrac_lower"]),
        "tokens": float(batch.loss_mask.sum()),
    }
    failures = []
    log(
        f"  cross-check batch: {batch.tokens.shape[0]} rows x {batch.tokens.shape[1]} columns, "
        f"{int(results['tokens'])} loss tokens (prompts {batch.attention_mask[:, :prompt].sum(1).tolist()}, "
        f"completions {batch.loss_mask.sum(1).astype(int).tolist()}), T={config.temperature}, "
        f"kl_coef={config.kl_coef}; clipped tokens {results['pg_clipfrac']:.3f}, dual-clipped "
        f"{results['pg_clipfrac_lower']:.3f}"
    )
    for name, ours, tunix in [
        ("loss", our_loss, tunix_total),
        ("policy term", our_metrics["pg_loss"], aux["pg_loss"]),
        ("KL term", our_metrics["kl"], aux["kl_loss"]),
    ]:
        diff, rel = _max_differences(ours, tunix)
        results[f"{name} abs"], results[f"{name} rel"] = diff, rel
        log(
            f"  {name:<12} ours {float(ours)!r:<22} tunix {float(tunix)!r:<22} abs {diff:.3e} rel {rel:.3e}"
        )
        if rel > LOSS_TOLERANCE:
            failures.append(f"{name}: relative difference {rel:.3e} > {LOSS_TOLERANCE:g}")
    leaves = jax.tree_util.tree_leaves_with_path(theirs)
    mapped_leaves = jax.tree_util.tree_leaves(mapped)
    if len(leaves) != len(mapped_leaves):
        raise AssertionError(
            f"Tunix's gradient has {len(leaves)} leaves, ours mapped onto its model {len(mapped_leaves)}"
        )
    for (path, tunix_leaf), our_leaf in zip(leaves, mapped_leaves):
        name = jax.tree_util.keystr(path)
        if np.shape(tunix_leaf) != np.shape(our_leaf):
            raise AssertionError(
                f"gradient {name}: shape {np.shape(our_leaf)} vs Tunix {np.shape(tunix_leaf)}"
            )
        diff, rel = _max_differences(our_leaf, tunix_leaf)
        results[f"grad {name} abs"], results[f"grad {name} rel"] = diff, rel
        scale = float(np.max(np.abs(np.asarray(tunix_leaf))))
        log(f"  grad {name:<48} max|g| {scale:.3e} abs {diff:.3e} rel {rel:.3e}")
        if rel > GRADIENT_TOLERANCE:
            failures.append(
                f"gradient {name}: relative difference {rel:.3e} > {GRADIENT_TOLERANCE:g}"
            )
    if results["pg_clipfrac"] == 0 or results["pg_clipfrac_lower"] == 0:
        failures.append("the batch did not exercise both clips (a weaker check)")
    if failures:
        raise AssertionError("ours and Tunix's GRPO objective disagree: " + "; ".join(failures))
    return results


def prepare_tunix_grpo_step(
    model_config: ModelConfig,
    train_config: TrainConfig,
    params,
    batch: TrainBatch,
):
    """Compiles Tunix's GRPO step and runs it twice (the second call compiles again: the
    optimizer state's types change after the first update).

    The batch's first quarter of columns is the prompt (no padding), the rest the
    completion, as `train_step.grpo_batch` builds it.

    Returns:
      ``(compile_s, loss of the first step, run_once)``; ``run_once()`` makes one more
      update and blocks until it is done.
    """
    model = tunix_model(model_config, params)
    optimizer = nnx.Optimizer(model, make_optimizer(train_config), wrt=nnx.Param)
    algo_config = tunix_algo_config(train_config)
    prompt = batch.tokens.shape[1] - int(batch.loss_mask[0].sum())
    example = common.TrainExample(
        prompt_ids=batch.tokens[:, :prompt],
        prompt_mask=np.ones_like(batch.tokens[:, :prompt]),
        completion_ids=batch.tokens[:, prompt:],
        completion_mask=batch.loss_mask[:, prompt:],
        advantages=batch.advantages,
        ref_per_token_logps=batch.ref_logprobs[:, prompt:],
        old_per_token_logps=None,
    )
    pad_id = model_config.vocab_size  # never a real token: no position is padding

    def loss_fn(model, example):
        return algo_core.grpo_loss_fn(model, example, algo_config, pad_id, pad_id + 1)

    def train_step(model, optimizer, example):
        (loss, _aux), grads = nnx.value_and_grad(loss_fn, has_aux=True)(model, example)
        optimizer.update(model, grads)
        return loss

    step_fn = nnx.jit(train_step, donate_argnames=("optimizer",))
    start = time.perf_counter()
    loss = float(step_fn(model, optimizer, example))
    compile_s = time.perf_counter() - start

    def run_once():
        jax.block_until_ready(step_fn(model, optimizer, example))

    run_once()
    return compile_s, loss, run_once

"""Tunix's GRPO train step on our config, weights and batch: the baseline of train_step.py.

What is timed is what Tunix's trainer runs per GRPO update: ``algo_core.grpo_loss_fn``
(Tunix's per-token log-probs from full logits, PPO clip with dual clip, KL, entropy) under
``nnx.value_and_grad``, then ``nnx.Optimizer.update`` with the same optax AdamW chain as
ours, in one ``nnx.jit`` with the optimizer donated (as ``PeftTrainer`` does). The weights are
ours, written as a HF safetensors directory and read by Tunix's own Qwen2 loader, so the two
losses of the first step must agree (a check that both compute the same objective).

``tunix/__init__.py`` imports every trainer and their dependencies (grain, metrax, qwix,
datasets, sentencepiece, ...), which a plain install here does not bring in without
replacing packages the project pins. Only the modules the GRPO step needs are imported:
the package is registered without running its ``__init__``.
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
import time
import types

import jax
import numpy as np

from coderl_jax.models import hf_io
from coderl_jax.models.config import ModelConfig
from coderl_jax.rl.batch import TrainBatch
from coderl_jax.train.config import TrainConfig
from coderl_jax.train.optim import make_optimizer


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
    with tempfile.TemporaryDirectory() as hf_dir:
        # save_pretrained takes jax arrays (it gathers sharded ones), not numpy.
        device_params = jax.tree.map(jax.numpy.asarray, params)
        hf_io.save_pretrained(hf_dir, model_config.replace(param_dtype="float32"), device_params)
        model = qwen2_params.create_model_from_safe_tensors(hf_dir, tunix_config(model_config))
    optimizer = nnx.Optimizer(model, make_optimizer(train_config), wrt=nnx.Param)
    algo_config = types.SimpleNamespace(
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

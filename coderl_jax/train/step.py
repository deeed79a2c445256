"""The train step: one rollout batch -> PPO epochs x mini-batch updates -> new state.

``train_step(state, batch) -> (state, metrics)`` is pure; `make_train_step` jits it with
explicit in/out shardings and a donated state. Inside:

- the rollout batch of B rows is split into ``num_mini_batches`` mini-batches, each one
  optimizer update, and the pass is repeated ``ppo_epochs`` times with the old log-probs
  fixed (PPO / verl ``ppo_mini_batch_size`` and ``ppo_epochs``); with a single update the
  old log-probs are the current ones under stop-gradient;
- each mini-batch is split into ``num_micro_batches`` micro-batches whose gradients are
  summed in float32 by a ``lax.scan`` (gradient accumulation); the micro losses are
  weighted so the sum is exactly the mini-batch gradient (`coderl_jax.train.loss`);
- with ``micro_batch_width_multiple`` k > 0, each micro-batch runs only up to its last
  real token, rounded up to a multiple of k: a ``lax.switch`` picks one of the T / k
  compiled widths at run time (`micro_batch_widths`), so short rows cost less and no
  batch recompiles. Exact for any layout (`coderl_jax.rl.batch.trim_columns` drops
  only columns after every row's last real token); it saves compute when rows are
  left-aligned and rows of similar length share micro-batches
  (`coderl_jax.rl.batch.group_rows_by_length`, which the trainer applies).

Splits interleave rows: mini-batch ``j`` of ``M`` holds rows ``j, j + M, j + 2M, ...``.
Rows are laid out contiguously over the (data, fsdp) devices, so every device keeps an
equal share of every split without moving data (rows of one GRPO group end up in
different mini-batches; the advantages are already computed, so this changes nothing).

Metrics are averaged over the updates; ``train/nonfinite`` is 1 when any update's loss or
gradient was NaN/Inf, and `coderl_jax.train.metrics.check_finite` raises on the host.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from coderl_jax.models.config import ModelConfig
from coderl_jax.parallel import mesh as mesh_lib
from coderl_jax.rl.batch import TrainBatch, trim_columns
from coderl_jax.rl.losses import safe_divide
from coderl_jax.train import loss as loss_lib
from coderl_jax.train import metrics as metrics_lib
from coderl_jax.train.config import TrainConfig
from coderl_jax.train.optim import learning_rate_schedule, make_optimizer
from coderl_jax.train.state import TrainState, state_shardings, training_model_config


def split_rows(batch: Any, num_splits: int, mesh: Mesh | None = None) -> Any:
    """Every leaf ``[B, ...] -> [num_splits, B / num_splits, ...]``, rows interleaved."""

    def split(x):
        rows = x.shape[0]
        if rows % num_splits:
            raise ValueError(f"batch of {rows} rows does not split into {num_splits} equal parts")
        y = x.reshape(rows // num_splits, num_splits, *x.shape[1:]).swapaxes(0, 1)
        if mesh is not None:
            spec = PartitionSpec(None, mesh_lib.BATCH_AXES, *([None] * (x.ndim - 1)))
            y = jax.lax.with_sharding_constraint(y, NamedSharding(mesh, spec))
        return y

    return jax.tree.map(split, batch)


def micro_batch_rows(
    rows: int, num_mini_batches: int, num_micro_batches: int, mini: int, micro: int
) -> np.ndarray:
    """Indices of the rows (of ``rows``) that form micro-batch ``micro`` of mini-batch
    ``mini``, as `split_rows` splits a batch twice (host-side; every process's share of
    rows is a whole number of ``num_mini_batches * num_micro_batches`` blocks, so the same
    indices select this process's share of that micro-batch from its local rows)."""
    return np.arange(rows)[mini::num_mini_batches][micro::num_micro_batches]


def micro_batch_widths(config: TrainConfig, batch: TrainBatch) -> tuple[int, ...]:
    """The column counts a micro-batch of ``batch`` may be cut to, ascending, ending at T:
    multiples of ``micro_batch_width_multiple`` beyond ``response_start`` (just T when
    the multiple is 0)."""
    t, multiple = batch.tokens.shape[1], config.micro_batch_width_multiple
    if not multiple:
        return (t,)
    return tuple(w for w in range(multiple, t, multiple) if w > batch.response_start) + (t,)


def micro_batch_width_index(widths: tuple[int, ...], attention_mask_BxT: jax.Array) -> jax.Array:
    """Index into ``widths`` of the narrowest width that keeps every real token of the rows
    (int32 scalar; traceable)."""
    t = attention_mask_BxT.shape[1]
    ends = jnp.where(attention_mask_BxT != 0, jnp.arange(1, t + 1), 0)
    return jnp.sum(jnp.asarray(widths[:-1]) < jnp.max(ends)).astype(jnp.int32)


def _accumulated_gradient(params, mini_batch: TrainBatch, model_config, config, mesh):
    """Gradient and summed metrics of one mini-batch, over its micro-batches."""
    mode = config.loss_agg_mode
    denominator = loss_lib.aggregation_denominator(mini_batch.loss_mask, mode)
    tokens = jnp.sum(mini_batch.loss_mask)
    grad_fn = jax.value_and_grad(loss_lib.rl_loss, has_aux=True)
    t = mini_batch.tokens.shape[1]
    widths = micro_batch_widths(config, mini_batch)
    loss_config = config
    if mode == "seq-mean-token-sum-norm" and config.loss_scale_factor is None:
        loss_config = config.replace(loss_scale_factor=float(t))  # T, whatever the cut

    def micro_gradient(micro: TrainBatch):
        weight = safe_divide(loss_lib.aggregation_denominator(micro.loss_mask, mode), denominator)
        token_weight = safe_divide(jnp.sum(micro.loss_mask), tokens)

        def gradient_at(width):
            def run(micro):
                cut = micro if width == t else trim_columns(micro, width)
                (_, metrics), grads = grad_fn(
                    params, cut, weight, token_weight, model_config, loss_config
                )
                return jax.tree.map(lambda g: g.astype(jnp.float32), grads), metrics

            return run

        if len(widths) == 1:
            return gradient_at(t)(micro)
        index = micro_batch_width_index(widths, micro.attention_mask)
        return jax.lax.switch(index, [gradient_at(w) for w in widths], micro)

    if config.num_micro_batches == 1:
        return micro_gradient(mini_batch)

    def accumulate(carry, micro):
        grads, metrics = micro_gradient(micro)
        return jax.tree.map(jnp.add, carry, grads), metrics

    zeros = jax.tree.map(lambda p: jnp.zeros(p.shape, jnp.float32), params)
    micro_batches = split_rows(mini_batch, config.num_micro_batches, mesh)
    grads, metrics = jax.lax.scan(accumulate, zeros, micro_batches)
    return grads, jax.tree.map(lambda m: jnp.sum(m, axis=0), metrics)


def train_step(
    state: TrainState,
    batch: TrainBatch,
    model_config: ModelConfig,
    config: TrainConfig,
    mesh: Mesh | None = None,
) -> tuple[TrainState, dict[str, jax.Array]]:
    """All updates from one rollout batch (pure; see module docstring).

    Args:
      state: current state (params stored as `training_model_config` says).
      batch: the rollout batch ``[B, T]``; ``B`` must split into mini- and micro-batches.
      model_config: the *training* model config (`state.training_model_config`).
      config: optimizer/loss/update settings.
      mesh: when given, splits are constrained to keep rows over (data, fsdp).

    Returns:
      ``(new_state, metrics)``: scalar metrics, namespaced ``train/...`` and
      ``rollout/{code,align}/...``.
    """
    rows = batch.tokens.shape[0]
    micro_rows = rows // (config.num_mini_batches * config.num_micro_batches)
    if micro_rows * config.num_mini_batches * config.num_micro_batches != rows:
        raise ValueError(
            f"batch of {rows} rows does not split into num_mini_batches="
            f"{config.num_mini_batches} x num_micro_batches={config.num_micro_batches} equal parts"
        )
    if mesh is not None and micro_rows % mesh_lib.batch_divisor(mesh):
        raise ValueError(
            f"micro-batches of {micro_rows} rows cannot be spread evenly over the "
            f"{mesh_lib.batch_divisor(mesh)} data x fsdp devices; choose B a multiple of "
            f"{mesh_lib.batch_divisor(mesh) * config.num_mini_batches * config.num_micro_batches}"
        )
    optimizer = make_optimizer(config)
    schedule = learning_rate_schedule(config)
    mini_batches = split_rows(batch, config.num_mini_batches, mesh)

    def update(carry, mini_batch):
        params, opt_state, update_index = carry
        grads, metrics = _accumulated_gradient(params, mini_batch, model_config, config, mesh)
        grad_norm = optax.global_norm(grads)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        metrics["grad_norm"] = grad_norm
        metrics["lr"] = schedule(update_index)
        metrics["nonfinite"] = jnp.logical_not(
            jnp.isfinite(metrics["loss"]) & jnp.isfinite(grad_norm)
        ).astype(jnp.float32)
        return (params, opt_state, update_index + 1), metrics

    def epoch(carry, _):
        return jax.lax.scan(update, carry, mini_batches)

    first_update = state.step * config.updates_per_batch
    (params, opt_state, _), metrics = jax.lax.scan(
        epoch, (state.params, state.opt_state, first_update), None, length=config.ppo_epochs
    )
    summary = {f"train/{name}": jnp.mean(value) for name, value in metrics.items()}
    summary["train/nonfinite"] = jnp.max(metrics["nonfinite"])
    summary["train/grad_norm_max"] = jnp.max(metrics["grad_norm"])
    summary["train/updates"] = jnp.asarray(config.updates_per_batch, jnp.float32)
    summary.update(metrics_lib.rollout_metrics(batch))
    summary["train/step"] = state.step
    new_state = TrainState(step=state.step + 1, params=params, opt_state=opt_state)
    return new_state, summary


def make_train_step(
    model_config: ModelConfig, config: TrainConfig, mesh: Mesh
) -> Callable[[TrainState, TrainBatch], tuple[TrainState, dict[str, jax.Array]]]:
    """``train_step`` jitted for ``mesh``: state in/out with its shardings (donated), batch
    rows over (data, fsdp), metrics replicated. ``model_config`` is the model's own config;
    the training variant is derived here."""
    train_model_config = training_model_config(model_config, config)
    shardings = state_shardings(train_model_config, config, mesh)
    replicated = mesh_lib.replicated(mesh)
    rows = NamedSharding(mesh, PartitionSpec(mesh_lib.BATCH_AXES))
    step = functools.partial(train_step, model_config=train_model_config, config=config, mesh=mesh)
    return jax.jit(
        traced_under(mesh, step),
        in_shardings=(shardings, rows),
        out_shardings=(shardings, replicated),
        donate_argnums=0,
    )


def make_logprobs_fn(
    model_config: ModelConfig, config: TrainConfig, mesh: Mesh
) -> Callable[[Any, TrainBatch], jax.Array]:
    """Jitted ``(params, batch) -> [B, T]`` fp32 token log-probs (no gradient, no entropy).

    Used for the reference model (frozen params; skip it entirely when ``kl_coef == 0``)
    and to recompute the behaviour policy's log-probs before a multi-update step. Params
    may be stored in any float dtype; the shardings follow the logical-axis rules. Rows run
    in as many passes as the train step has micro-batches (a `lax.map` over interleaved
    splits, exact: rows are independent), so scoring a whole rollout batch needs no more
    activation memory than one micro-batch's forward.
    """
    train_model_config = training_model_config(model_config, config)
    rows = NamedSharding(mesh, PartitionSpec(mesh_lib.BATCH_AXES))

    def one_pass(params, batch):
        logp, _ = loss_lib.sequence_logprobs(
            params,
            train_model_config,
            batch,
            config.temperature,
            config.logprob_chunk_size,
            compute_entropy=False,
        )
        return logp

    def logprobs(params, batch):
        # As many passes as the train step has micro-batches (whose activations must fit),
        # fewer when the rows do not split evenly over them and the devices.
        num_rows, divisor = batch.tokens.shape[0], mesh_lib.batch_divisor(mesh)
        passes = config.num_mini_batches * config.num_micro_batches
        while passes > 1 and num_rows % (passes * divisor):
            passes -= 1
        if passes == 1:
            return one_pass(params, batch)
        out = jax.lax.map(lambda part: one_pass(params, part), split_rows(batch, passes, mesh))
        return out.swapaxes(0, 1).reshape(num_rows, -1)  # undoes split_rows's interleaving

    param_shardings = mesh_lib.param_shardings(train_model_config, mesh)
    return jax.jit(
        traced_under(mesh, logprobs), in_shardings=(param_shardings, rows), out_shardings=rows
    )


def traced_under(mesh: Mesh, fn: Callable) -> Callable:
    """``fn`` traced with ``mesh`` as the context mesh, so the model keeps its activations'
    rows over the batch axes (`coderl_jax.models.layers.rows_over_batch_axes`)."""

    @functools.wraps(fn)
    def traced(*args, **kwargs):
        with jax.sharding.use_abstract_mesh(mesh.abstract_mesh):
            return fn(*args, **kwargs)

    return traced

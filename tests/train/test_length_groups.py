"""Micro-batches cut to their rows' length: `group_rows_by_length`, `trim_columns` and the
train step's ``micro_batch_width_multiple``, which must change no value."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from train_batches import rollout_batch
from update_checks import SMOOTH_ADAM, assert_same_update

from coderl_jax.models import transformer
from coderl_jax.parallel import mesh as mesh_lib
from coderl_jax.rl.batch import (
    device_put_batch,
    group_rows_by_length,
    left_align,
    row_ends,
    trim_columns,
    with_response_start,
)
from coderl_jax.train import state as state_lib
from coderl_jax.train import step as step_lib
from coderl_jax.train.config import TrainConfig


def _aligned_batch(rows=16, length=32, seed=0):
    """Left-aligned rows ending between columns 6 and 16 of 32, with reference log-probs."""
    batch = left_align(rollout_batch(rows=rows, length=length, seed=seed))
    ref = np.random.default_rng(seed + 1).normal(-3.0, 0.5, (rows, length)).astype(np.float32)
    return batch.replace(ref_logprobs=ref)


@pytest.mark.parametrize("mini,micro", [(1, 4), (2, 2), (2, 4)])
def test_grouping_fills_each_micro_batch_from_one_length_quantile(mini, micro):
    batch = _aligned_batch(rows=16)
    lengths = np.random.default_rng(3).permutation(np.arange(3, 19))  # distinct row ends
    mask = (np.arange(32)[None, :] < lengths[:, None]).astype(np.int32)
    batch = batch.replace(attention_mask=mask)
    grouped = group_rows_by_length(batch, mini, micro)
    # Same rows, reordered: every per-row value moves with its row.
    order = [int(np.flatnonzero((batch.tokens == row).all(axis=1))[0]) for row in grouped.tokens]
    assert sorted(order) == list(range(16))
    np.testing.assert_array_equal(grouped.advantages, batch.advantages[order])
    np.testing.assert_array_equal(grouped.ref_logprobs, batch.ref_logprobs[order])
    # The train step's split: mini-batch j = rows j::mini; micro-batch i = its rows i::micro.
    ends = row_ends(grouped.attention_mask)
    quantiles = np.sort(row_ends(mask)).reshape(micro, -1)
    for j in range(mini):
        for i in range(micro):
            got = ends[j::mini][i::micro]
            assert set(got) <= set(quantiles[i]), (j, i, got, quantiles[i])
    with pytest.raises(ValueError, match="does not split into 12 equal parts"):
        group_rows_by_length(batch, 3, 4)


def test_trim_columns_keeps_the_first_columns_of_per_token_fields():
    batch = with_response_start(_aligned_batch(), multiple=4)
    cut = trim_columns(batch, 16)
    assert cut.tokens.shape == (16, 16) and cut.ref_logprobs.shape == (16, 16)
    np.testing.assert_array_equal(cut.loss_mask, batch.loss_mask[:, :16])
    np.testing.assert_array_equal(cut.advantages, batch.advantages)  # per row: untouched
    with pytest.raises(ValueError, match="must be in"):
        trim_columns(batch, batch.response_start)


def test_widths_are_multiples_beyond_the_response_start():
    batch = _aligned_batch().replace(response_start=9)
    config = TrainConfig(micro_batch_width_multiple=8)
    assert step_lib.micro_batch_widths(config, batch) == (16, 24, 32)
    assert step_lib.micro_batch_widths(TrainConfig(), batch) == (32,)


CASES = {
    "token-mean, 4 micro-batches": TrainConfig(
        learning_rate=1.0, num_micro_batches=4, kl_coef=0.01, **SMOOTH_ADAM
    ),
    "seq-mean-token-sum-norm, 2 mini x 2 micro": TrainConfig(
        learning_rate=1.0,
        **SMOOTH_ADAM,
        num_mini_batches=2,
        num_micro_batches=2,
        loss_agg_mode="seq-mean-token-sum-norm",
        kl_coef=0.01,
        entropy_coef=0.01,
    ),
}


@pytest.mark.parametrize("config", CASES.values(), ids=CASES.keys())
def test_cut_micro_batches_make_the_same_update(model_config, config):
    mesh = mesh_lib.make_mesh(1, 1, 1, devices=jax.devices()[:1])
    params = jax.device_get(
        jax.jit(transformer.init_params, static_argnums=0)(model_config, jax.random.key(4))
    )
    batch = group_rows_by_length(
        _aligned_batch(), config.num_mini_batches, config.num_micro_batches
    )
    # The cut runs each micro-batch on 8 or 16 of the 32 columns, never all of them.
    widths = step_lib.micro_batch_widths(config.replace(micro_batch_width_multiple=8), batch)
    micros = [
        mini[i :: config.num_micro_batches]
        for j in range(config.num_mini_batches)
        for mini in [batch.attention_mask[j :: config.num_mini_batches]]
        for i in range(config.num_micro_batches)
    ]
    chosen = {widths[int(step_lib.micro_batch_width_index(widths, m))] for m in micros}
    assert chosen <= {8, 16}, chosen
    if config.updates_per_batch > 1:
        logprobs = step_lib.make_logprobs_fn(model_config, config, mesh)
        old = logprobs(params, device_put_batch(batch, mesh))
        batch = batch.replace(old_logprobs=np.asarray(old))
    results = {}
    for multiple in (0, 8):
        run_config = config.replace(micro_batch_width_multiple=multiple)
        state = state_lib.create_train_state(params, model_config, run_config, mesh)
        step_fn = step_lib.make_train_step(model_config, run_config, mesh)
        results[multiple] = jax.device_get(step_fn(state, device_put_batch(batch, mesh)))
    (full_state, full_metrics), (cut_state, cut_metrics) = results[0], results[8]
    for name, value in full_metrics.items():
        assert cut_metrics[name] == pytest.approx(value, rel=1e-5, abs=1e-7), name
    assert_same_update(cut_state.params, full_state.params, params)

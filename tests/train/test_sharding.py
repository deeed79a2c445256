"""The sharded train step equals the single-device one, and weights sit where the rules say.

Needs 8 devices: tests/conftest.py sets XLA_FLAGS for 8 fake CPU devices.
"""

from __future__ import annotations

import jax
import numpy as np
import optax
import pytest
from jax.sharding import PartitionSpec as P
from update_checks import SMOOTH_ADAM, assert_same_update

from coderl_jax.models import transformer
from coderl_jax.parallel import mesh as mesh_lib
from coderl_jax.rl.batch import device_put_batch, group_rows_by_length, left_align
from coderl_jax.train import state as state_lib
from coderl_jax.train import step as step_lib
from coderl_jax.train.config import TrainConfig

# Every loss term, micro-batch accumulation and clipping active.
# Adam made smooth in the gradient (tests/train/update_checks.py), so the sharded and
# single-device updates can be compared on any machine.
CONFIG = TrainConfig(
    learning_rate=1.0,
    kl_coef=0.05,
    entropy_coef=0.01,
    num_micro_batches=2,
    max_grad_norm=0.5,
    **SMOOTH_ADAM,
)
ROWS = 16  # micro-batches of 8 rows: one per device on every mesh


def run_step(model_config, params, batch, mesh, config=CONFIG):
    """One train step on ``mesh`` from host ``params``; returns host (params, metrics, state)."""
    state = state_lib.create_train_state(params, model_config, config, mesh)
    device_batch = device_put_batch(batch, mesh)
    new_state, metrics = step_lib.make_train_step(model_config, config, mesh)(state, device_batch)
    return jax.device_get(new_state.params), jax.device_get(metrics), new_state


def with_reference(batch):
    """Reference log-probs away from the policy's (about -log V), so the KL term has a
    gradient; their values need not come from a model for this comparison."""
    rng = np.random.default_rng(7)
    ref = -np.log(96.0) + 0.3 * rng.standard_normal(batch.tokens.shape)
    return batch.replace(ref_logprobs=ref.astype(np.float32))


@pytest.fixture(scope="module")
def single_device_result():
    from train_batches import rollout_batch, small_model_config

    config = small_model_config().replace(num_layers=1)  # compile time
    params = jax.device_get(transformer.init_params(config, jax.random.key(1)))
    mesh = mesh_lib.make_mesh(1, 1, 1, devices=jax.devices()[:1])
    new_params, metrics, _ = run_step(config, params, with_reference(rollout_batch(ROWS)), mesh)
    return config, params, new_params, metrics


@pytest.mark.parametrize("shape", [(8, 1, 1), (2, 4, 1), (2, 2, 2)])
def test_sharded_step_matches_single_device(shape, single_device_result):
    from train_batches import rollout_batch

    batch = with_reference(rollout_batch(ROWS))
    config, params, expected_params, expected_metrics = single_device_result
    mesh = mesh_lib.make_mesh(*shape)
    new_params, metrics, state = run_step(config, params, batch, mesh)

    assert metrics["train/loss"] == pytest.approx(expected_metrics["train/loss"], rel=1e-5)
    assert metrics["train/grad_norm"] == pytest.approx(
        expected_metrics["train/grad_norm"], rel=1e-5
    )
    assert_same_update(new_params, expected_params, params)

    data, fsdp, tensor = shape
    q_spec = state.params["layers"]["attn"]["q_proj"]["kernel"].sharding.spec
    # [L, D, H, Dh]: embed over fsdp, heads over tensor (axes of size 1 stay unnamed).
    assert q_spec == P(None, "fsdp" if fsdp > 1 else None, "tensor" if tensor > 1 else None, None)
    embedding_spec = state.params["embedding"].sharding.spec
    assert embedding_spec == P("tensor" if tensor > 1 else None, "fsdp" if fsdp > 1 else None)
    norm_spec = state.params["layers"]["input_norm"]["scale"].sharding.spec
    assert all(axis is None for axis in norm_spec)
    # AdamW moments are sharded like their parameters.
    adam_state = state.opt_state[1][0]
    assert isinstance(adam_state, optax.ScaleByAdamState)
    mu_spec = adam_state.mu["layers"]["attn"]["q_proj"]["kernel"].sharding.spec
    assert mu_spec == q_spec
    shard = state.params["layers"]["mlp"]["gate_proj"]["kernel"].addressable_shards[0].data
    assert shard.shape == (1, 32 // fsdp, 64 // tensor)


def test_micro_batches_cut_to_length_on_a_sharded_mesh(single_device_result):
    """The switch over micro-batch widths under GSPMD: a (2, 2, 2) mesh with cut
    micro-batches makes the single device's uncut update."""
    from train_batches import rollout_batch

    config, params, _, _ = single_device_result
    batch = group_rows_by_length(left_align(with_reference(rollout_batch(ROWS, length=32))), 1, 2)
    expected, expected_metrics, _ = run_step(
        config, params, batch, mesh_lib.make_mesh(1, 1, 1, devices=jax.devices()[:1])
    )
    cut = CONFIG.replace(micro_batch_width_multiple=8)
    got, metrics, _ = run_step(config, params, batch, mesh_lib.make_mesh(2, 2, 2), cut)
    assert metrics["train/loss"] == pytest.approx(expected_metrics["train/loss"], rel=1e-5)
    assert_same_update(got, expected, params)

"""Sampler vs trainer log-probs on real rollouts: the bound behind ``train/logprob_diff_max``.

A small decoder samples real rollouts (the sampler's own log-probs), packed as the RL step
packs them (left-aligned, grouped by length, on the mesh); the train path scores them with
`make_logprobs_fn`. Both compute ``z_y / T - logsumexp(z / T)`` in float32 from the same
weights, in a different order (one token at a time from a KV cache vs one causal pass over
the row; the sampler's blocked inverse-CDF normaliser vs a logsumexp), so they differ by
rounding only. Both terms of that difference are at most ``S = max|z| / T + log V`` in
magnitude, and each float32 rounding is off by at most ``u = 2^-24`` relative, so the
tolerance is ``32 u S``: 32 roundings at the scale of the largest logit, against about 2
measured (the small model's 2 layers hold about a dozen reductions on the path from the
embedding to a log-prob; the rest is headroom). With the model's logits sharpened to a
trained model's range that is 2e-5 here (measured: 2e-6); a real mismatch is 5 decades
larger (below: the trainer at the other temperature; bfloat16 logits would be off by
``2^-8 S`` ~ 0.04).
"""

from __future__ import annotations

import functools
import math
import types

import jax
import numpy as np
import pytest
from train_batches import small_model_config

from coderl_jax.models import transformer
from coderl_jax.models.sampler import Sampler, SamplingConfig
from coderl_jax.parallel import mesh as mesh_lib
from coderl_jax.rl.batch import (
    TrainBatch,
    device_put_batch,
    group_rows_by_length,
    left_align,
    shared_response_start,
)
from coderl_jax.rl.step import RLStep
from coderl_jax.train import step as step_lib
from coderl_jax.train.config import TrainConfig
from coderl_jax.train.metrics import logprob_diff_max

UNIT_ROUNDOFF = 2.0**-24  # float32
ROUNDINGS = 32  # allowed roundings at the scale of the largest logit (module docstring)
PROMPTS, SAMPLES, MAX_NEW_TOKENS, MICRO_BATCHES = 8, 4, 24, 4
TEMPERATURES = (0.7, 1.0)


@pytest.fixture(scope="module")
def model():
    config = small_model_config()
    params = random_params(config)
    # A random model's logits are nearly uniform (log-probs near -log V). Scaling the final
    # norm by 8 scales every logit by 8: sampled tokens' log-probs then reach about -10 with
    # most near 0, as the trained tiny default's do, and rounding errors grow with them.
    params["final_norm"] = {"scale": params["final_norm"]["scale"] * 8.0}
    return config, params


def random_params(config, seed: int = 0):
    """The initialiser's distribution (normal(0, 0.02) weights, zero biases, unit norm scales)
    drawn with numpy: compiling the Flax init takes longer than this whole test otherwise."""
    rng = np.random.default_rng(seed)

    def draw(path, leaf):
        name = jax.tree_util.keystr(path)
        if "scale" in name:
            return np.ones(leaf.shape, np.float32)
        if "bias" in name:
            return np.zeros(leaf.shape, np.float32)
        return (0.02 * rng.standard_normal(leaf.shape)).astype(np.float32)

    shapes = jax.eval_shape(lambda: transformer.init_params(config, jax.random.key(0)))
    return jax.tree_util.tree_map_with_path(draw, shapes)


@pytest.fixture(scope="module")
def mesh():
    return mesh_lib.make_mesh(-1, 1, 1)


@pytest.fixture(scope="module")
def rollouts(model):
    """Real rollouts at temperatures 0.7 and 1.0 (`real_rollout`)."""
    return {t: real_rollout(*model, t) for t in TEMPERATURES}


@pytest.fixture(scope="module")
def scorers(model, mesh):
    """The train path's log-prob function at each temperature."""
    config, _ = model
    return {
        t: step_lib.make_logprobs_fn(config, TrainConfig(temperature=t), mesh) for t in TEMPERATURES
    }


def real_rollout(config, params, temperature: float) -> TrainBatch:
    """P prompts x G samples from the sampler, packed as `RolloutRunner` and the RL step's
    pack stage do: left-aligned, response_start set, rows grouped by length (host)."""
    rng = np.random.default_rng(0)
    prompts = [
        rng.integers(3, config.vocab_size, rng.integers(4, 30)).tolist() for _ in range(PROMPTS)
    ]
    sampling = SamplingConfig(
        MAX_NEW_TOKENS, temperature=temperature, prompt_buckets=(32,), decoder="static"
    )  # the RL default's decoder (tests/models/sampler: the continuous one draws the same)
    out = Sampler(config, sampling).sample(params, prompts, SAMPLES, jax.random.key(1))
    out = jax.tree.map(np.asarray, out)
    rows = PROMPTS * SAMPLES
    batch = TrainBatch(
        tokens=out.tokens,
        attention_mask=out.attention_mask,
        positions=out.positions,
        loss_mask=out.loss_mask.astype(np.float32),
        advantages=np.linspace(-1, 1, rows, dtype=np.float32),
        rewards=np.zeros(rows, np.float32),
        task_kind=np.zeros(rows, np.int32),
        old_logprobs=np.asarray(out.token_logprobs(), np.float32),
    )
    batch = left_align(batch).replace(response_start=shared_response_start(min(map(len, prompts))))
    return group_rows_by_length(batch, 1, MICRO_BATCHES)


@functools.partial(jax.jit, static_argnums=0)
def _logits(config, params, tokens, positions, attention_mask):
    return transformer.Transformer(config).apply(
        {"params": params}, tokens, positions, attention_mask
    )


def tolerance(config, params, batch: TrainBatch, temperature: float) -> float:
    """``ROUNDINGS * u * S``, S = the largest |logit| / T at a scored position + log V."""
    logits = _logits(config, params, batch.tokens, batch.positions, batch.attention_mask)
    scored = np.asarray(batch.loss_mask)[:, 1:] > 0  # position t - 1 predicts token t
    largest = np.abs(np.asarray(logits)[:, :-1]).max(axis=-1)[scored].max() / temperature
    return ROUNDINGS * UNIT_ROUNDOFF * (largest + math.log(config.vocab_size))


@pytest.mark.parametrize("temperature", TEMPERATURES)
def test_trainer_logprobs_equal_the_samplers_up_to_rounding(
    model, mesh, rollouts, scorers, temperature
):
    config, params = model
    batch = rollouts[temperature]
    device = device_put_batch(batch, mesh)
    tol = tolerance(config, params, batch, temperature)

    def diff_max(trainer_temperature):
        trainer = scorers[trainer_temperature](params, device.sequences)
        return float(logprob_diff_max(device.old_logprobs, trainer, device.loss_mask))

    diff = diff_max(temperature)
    (other,) = set(TEMPERATURES) - {temperature}
    wrong = diff_max(other)  # negative control: the trainer at the other temperature
    print(
        f"T={temperature}: max |sampler - trainer| {diff:.3g}, tolerance {tol:.3g}, "
        f"trainer at T={other} {wrong:.3g}"
    )
    assert np.asarray(batch.loss_mask).sum() > 200  # real tokens scored
    assert np.min(np.where(batch.loss_mask > 0, batch.old_logprobs, 0)) < -5  # sharp logits
    assert diff <= tol
    assert wrong > 1000 * tol  # the check fails when the temperatures differ


@pytest.mark.parametrize("num_mini_batches", [1, 2])
def test_pack_checks_one_micro_batch_against_the_sampler(
    model, mesh, rollouts, scorers, num_mini_batches
):
    """`RLStep.pack` reports the difference on the last micro-batch of the first mini-batch:
    from a separate forward with one update, from the behaviour log-probs (which then
    replace the sampler's) with several."""
    config, params = model
    temperature = 0.7
    batch = rollouts[temperature]
    num_micro_batches = MICRO_BATCHES // num_mini_batches  # micro-batches of 8 rows (devices)
    train = TrainConfig(
        temperature=temperature, num_mini_batches=num_mini_batches,
        num_micro_batches=num_micro_batches, micro_batch_width_multiple=8,
    )  # fmt: skip
    step = RLStep.__new__(RLStep)  # pack reads only these attributes
    step.config = types.SimpleNamespace(train=train)
    step.learner = types.SimpleNamespace(mesh=mesh)
    step.score = scorers[temperature]
    step.behaviour_score = step.score if train.updates_per_batch > 1 else None
    packed, checks = step.pack(params, batch)

    grouped = group_rows_by_length(batch, num_mini_batches, num_micro_batches)
    rows = step_lib.micro_batch_rows(
        len(grouped.tokens), num_mini_batches, num_micro_batches, 0, num_micro_batches - 1
    )
    micro = device_put_batch(jax.tree.map(lambda x: x[rows], grouped), mesh)
    trainer = np.asarray(step.score(params, micro.sequences))
    expected = np.abs(trainer - grouped.old_logprobs[rows])[grouped.loss_mask[rows] > 0].max()
    reported = float(checks["train/logprob_diff_max"])
    tol = tolerance(config, params, batch, temperature)
    assert reported <= tol
    if num_mini_batches == 1:  # the same forward as pack's
        assert reported == expected
        np.testing.assert_array_equal(np.asarray(packed.old_logprobs), grouped.old_logprobs)
    else:  # pack's came from the whole batch's forward: equal up to rounding
        np.testing.assert_allclose(reported, expected, atol=tol)
        behaviour = np.asarray(packed.old_logprobs)
        np.testing.assert_allclose(behaviour[rows], trainer, atol=tol)
        assert not np.array_equal(behaviour, grouped.old_logprobs)


def test_micro_batch_rows_are_the_rows_split_rows_makes():
    batch = np.arange(48)
    for mini, micro in [(1, 4), (2, 3), (3, 2)]:
        last_mini = step_lib.split_rows(batch, mini)[mini - 1]
        expected = np.asarray(step_lib.split_rows(last_mini, micro)[micro - 1])
        rows = step_lib.micro_batch_rows(48, mini, micro, mini - 1, micro - 1)
        np.testing.assert_array_equal(rows, expected)

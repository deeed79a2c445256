"""Sampling math: greedy, top-k / top-p filtering, inverse-CDF draws, per-sample uniforms."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from coderl_jax.models import sampler as sampler_lib
from coderl_jax.models.sampler import SamplingConfig


def test_uniforms_depend_only_on_key_sample_and_position():
    key = jax.random.key(7)
    samples, positions = jnp.asarray([3, 0, 9, 3]), jnp.asarray([5, 5, 0, 6])
    got = np.asarray(sampler_lib.sample_uniforms(key, samples, positions))
    for i in range(4):  # one row at a time, in another batch: the same number
        alone = sampler_lib.sample_uniforms(key, samples[i : i + 1], positions[i : i + 1])
        expected = jax.random.uniform(
            jax.random.fold_in(jax.random.fold_in(key, int(samples[i])), int(positions[i]))
        )
        assert got[i] == float(alone[0]) == float(expected)
    assert len(set(got.tolist())) == 4 and np.all((got >= 0) & (got < 1))


def test_temperature_zero_is_argmax():
    logits = jnp.asarray([[0.1, 2.0, -1.0], [3.0, 2.9, 0.0]])
    tokens, logprobs = sampler_lib.sample_tokens(
        logits, jnp.zeros(2), SamplingConfig(temperature=0.0)
    )
    np.testing.assert_array_equal(np.asarray(tokens), [1, 0])
    expected = jax.nn.log_softmax(logits)[jnp.arange(2), jnp.asarray([1, 0])]
    np.testing.assert_allclose(np.asarray(logprobs), np.asarray(expected), rtol=1e-6)


PROBS = np.asarray([0.15, 0.5, 0.05, 0.3])  # sorted: 0.5 (id 1), 0.3 (id 3), 0.15, 0.05


@pytest.mark.parametrize(
    "top_p, nucleus", [(0.45, [1]), (0.79, [1, 3]), (0.81, [0, 1, 3]), (1.0, [0, 1, 2, 3])]
)
def test_top_p_keeps_exactly_the_nucleus(top_p, nucleus):
    logits = jnp.log(jnp.asarray(PROBS, jnp.float32))[None]
    log_probs = sampler_lib.sampling_log_probs(logits, SamplingConfig(top_p=top_p))[0]
    kept = np.flatnonzero(np.isfinite(np.asarray(log_probs)))
    np.testing.assert_array_equal(kept, nucleus)
    renormalised = PROBS[nucleus] / PROBS[nucleus].sum()
    np.testing.assert_allclose(np.exp(np.asarray(log_probs)[nucleus]), renormalised, rtol=1e-5)


@pytest.mark.parametrize("top_p", [0.1, 0.5, 0.9, 0.99])
def test_top_p_without_sorting_equals_sorted_nucleus(top_p):
    logits = np.asarray(jax.random.normal(jax.random.key(2), (16, 1000))) * 3
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    cfg = SamplingConfig(top_p=top_p)
    kept = np.isfinite(np.asarray(sampler_lib.sampling_log_probs(jnp.asarray(logits), cfg)))
    for row in range(16):
        order = np.argsort(-probs[row], kind="stable")
        mass_before = np.cumsum(probs[row, order]) - probs[row, order]
        # float32 sums may decide a token whose preceding mass is within 1e-5 of top_p
        # either way (as would a float32 sort-and-cumsum); every other token must agree.
        assert kept[row, order[mass_before < top_p - 1e-5]].all()
        assert not kept[row, order[mass_before > top_p + 1e-5]].any()
        assert abs(kept[row].sum() - (mass_before < top_p).sum()) <= 1


def _chi_square(counts: np.ndarray, probs: np.ndarray) -> float:
    expected = counts.sum() * probs
    support = probs > 0
    assert counts[~support].sum() == 0, "sampled a token outside the distribution's support"
    return float(((counts[support] - expected[support]) ** 2 / expected[support]).sum())


# Chi-square critical values at p = 0.001 (df = support size - 1): a correct sampler fails
# with probability 0.1%, and the fixed key makes the outcome deterministic.
CHI2_CRITICAL_0_001 = {2: 13.82, 4: 18.47, 5: 20.52}


@pytest.mark.parametrize(
    "cfg, expected",
    [
        (SamplingConfig(temperature=1.0), [0.4, 0.25, 0.15, 0.1, 0.06, 0.04]),
        # T=0.5 squares the probabilities: 0.16, 0.0625, 0.0225, ... / sum; top_k=4 keeps the
        # first four; top_p=0.9 then keeps 0.16/0.2550 + 0.0625/0.2550 + 0.0225/0.2550
        # (mass before the third = 0.8725 < 0.9; before the fourth = 0.9608 >= 0.9).
        (
            SamplingConfig(temperature=0.5, top_k=4, top_p=0.9),
            [0.16 / 0.245, 0.0625 / 0.245, 0.0225 / 0.245, 0.0, 0.0, 0.0],
        ),
    ],
)
def test_sampled_frequencies_match_distribution(cfg, expected):
    probs = np.asarray([0.4, 0.25, 0.15, 0.1, 0.06, 0.04])
    expected = np.asarray(expected)
    draws = 20000
    logits = jnp.tile(jnp.log(jnp.asarray(probs, jnp.float32)), (draws, 1))
    uniforms = jax.random.uniform(jax.random.key(42), (draws,))
    tokens, logprobs = sampler_lib.sample_tokens(logits, uniforms, cfg)
    tokens, logprobs = np.asarray(tokens), np.asarray(logprobs)
    counts = np.bincount(tokens, minlength=probs.size)
    df = int((expected > 0).sum()) - 1
    assert _chi_square(counts, expected) < CHI2_CRITICAL_0_001[df]
    np.testing.assert_allclose(np.exp(logprobs), expected[tokens], rtol=1e-5)


def test_large_vocab_frequencies_match_softmax():
    """V = 1000 takes the two-level (block) path, with a partial last block."""
    vocab, draws = 1000, 20000
    logits = np.zeros(vocab, np.float32)
    heavy = np.asarray([5, 300, 777, 999])  # in different blocks, the last in the partial one
    logits[heavy] = [6.0, 5.5, 5.0, 4.0]
    logits[[10, 11]] = -np.inf  # never drawn
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    tokens, logprobs = sampler_lib.sample_tokens(
        jnp.tile(jnp.asarray(logits), (draws, 1)),
        jax.random.uniform(jax.random.key(9), (draws,)),
        SamplingConfig(),
    )
    tokens, logprobs = np.asarray(tokens), np.asarray(logprobs)
    assert not np.isin(tokens, [10, 11]).any()
    # Bins: each heavy token, then all the rest (each light token is too rare to bin alone).
    counts = np.asarray([*((tokens == t).sum() for t in heavy), (~np.isin(tokens, heavy)).sum()])
    expected = np.asarray([*probs[heavy], 1 - probs[heavy].sum()])
    assert _chi_square(counts, expected) < CHI2_CRITICAL_0_001[4]
    np.testing.assert_allclose(logprobs, np.log(probs[tokens]), rtol=1e-4, atol=1e-5)

"""KL estimators, loss aggregation, PPO clip and GSPO against hand-computed numbers."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from coderl_jax.rl.losses import aggregate_loss, gspo_loss, kl_penalty, masked_mean, ppo_clip_loss


def _close(actual, expected, tol=1e-6):
    assert np.asarray(actual).dtype == np.float32
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected, np.float32), atol=tol)


LOGP = jnp.array([[-1.0, -2.0]])
REF_LOGP = jnp.array([[-1.5, -1.0]])  # d = logp - ref = [.5, -1]


@pytest.mark.parametrize(
    "kinds, expected",
    [
        (("k1", "kl"), [[0.5, -1.0]]),
        (("abs",), [[0.5, 1.0]]),
        (("k2", "mse"), [[0.125, 0.5]]),  # d^2 / 2
        # x = ref - logp = [-.5, 1]: e^-.5 + .5 - 1 = .10653066, e^1 - 1 - 1 = .71828183.
        (("k3", "low_var_kl"), [[np.exp(-0.5) - 0.5, np.e - 2.0]]),
    ],
)
def test_kl_penalty_kinds(kinds, expected):
    for kind in kinds:
        _close(kl_penalty(LOGP, REF_LOGP, kind), expected)
        _close(jax.jit(kl_penalty, static_argnums=2)(LOGP, REF_LOGP, kind), expected)


def test_k3_clamps():
    # ref - logp = 30 -> x clipped to 20, e^20 - 21 -> clipped to 10;
    # ref - logp = -30 -> x = -20, e^-20 + 20 - 1 = 19.0 -> clipped to 10.
    out = kl_penalty(jnp.array([[0.0, 0.0]]), jnp.array([[30.0, -30.0]]), "k3")
    _close(out, [[10.0, 10.0]])


def test_kl_penalty_rejects_unknown_kind_and_shape_mismatch():
    with pytest.raises(ValueError, match="kind='k4'"):
        kl_penalty(LOGP, REF_LOGP, "k4")
    with pytest.raises(ValueError, match="one shape"):
        kl_penalty(LOGP, REF_LOGP[:, :1], "k1")


LOSS = jnp.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]])
MASK = jnp.array([[1.0, 1.0, 0.0], [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])  # middle row empty


@pytest.mark.parametrize(
    "mode, factor, expected",
    [
        ("token-mean", None, 27.0 / 5.0),  # (1 + 2 + 7 + 8 + 9) / 5 tokens
        ("seq-mean-token-sum", None, 13.5),  # rows 3 and 24 (empty row skipped) -> 27 / 2
        ("seq-mean-token-mean", None, 4.75),  # row means 1.5 and 8 -> 9.5 / 2
        ("seq-mean-token-sum-norm", None, 9.0),  # 27 / T = 27 / 3
        ("seq-mean-token-sum-norm", 4.5, 6.0),  # 27 / 4.5
    ],
)
def test_aggregate_loss_modes(mode, factor, expected):
    _close(aggregate_loss(LOSS, MASK, mode, factor), expected)
    jitted = jax.jit(aggregate_loss, static_argnums=(2, 3))
    _close(jitted(LOSS, MASK, mode, factor), expected)


@pytest.mark.parametrize(
    "mode", ["token-mean", "seq-mean-token-sum", "seq-mean-token-mean", "seq-mean-token-sum-norm"]
)
def test_aggregate_loss_all_empty_is_zero_with_finite_grad(mode):
    value, grad = jax.value_and_grad(lambda x: aggregate_loss(x, jnp.zeros((3, 3)), mode))(LOSS)
    _close(value, 0.0)
    _close(grad, np.zeros((3, 3)))


def test_aggregate_loss_gradient_weights():
    # token-mean: every valid token 1/5. seq-mean-token-mean: row 0 tokens 1/(2*2), row 2 1/(3*2).
    grad = jax.grad(lambda x: aggregate_loss(x, MASK, "token-mean"))(LOSS)
    _close(grad, MASK / 5.0)
    grad = jax.grad(lambda x: aggregate_loss(x, MASK, "seq-mean-token-mean"))(LOSS)
    _close(grad, [[0.25, 0.25, 0.0], [0.0, 0.0, 0.0], [1 / 6, 1 / 6, 1 / 6]])


def test_aggregate_loss_rejects_bad_mode():
    with pytest.raises(ValueError, match="mode='mean'"):
        aggregate_loss(LOSS, MASK, "mean")
    with pytest.raises(ValueError, match="loss_scale_factor"):
        aggregate_loss(LOSS, MASK, "seq-mean-token-sum-norm", 0.0)


def test_masked_mean_empty_is_zero():
    _close(masked_mean(jnp.ones((2, 2)), jnp.zeros((2, 2))), 0.0)
    _close(masked_mean(LOSS, MASK, axis=-1), [1.5, 0.0, 8.0])


# Tokens (A, ratio) with lo = hi = .2 and c = 3, arranged with padding at both ends:
#   t1 (+1, 1.5): -1.5 vs -1.2 -> -1.2, clipped.
#   t2 (+1, 0.5): -0.5 vs -0.8 -> -0.5.
#   t3 (-1, 0.5): 0.5 vs 0.8 -> 0.8, clipped; dual bound 3 not reached.
#   t4 (-1, 5.0): 5.0 vs 1.2 -> 5.0; dual clip min(5, 3) = 3, clipfrac_lower.
#   t5 (+2, 1.1): -2.2 both -> -2.2.
#   pads carry A = 100, ratio 10 and must not count.
RATIOS = np.array([[1.5, 0.5, 0.5, 10.0], [10.0, 5.0, 1.1, 10.0]])
ADV = jnp.array([[1.0, 1.0, -1.0, 100.0], [100.0, -1.0, 2.0, 100.0]])
PPO_MASK = jnp.array([[1.0, 1.0, 1.0, 0.0], [0.0, 1.0, 1.0, 0.0]])
OLD_LOGP = jnp.full((2, 4), -2.0)
LOGP_PPO = OLD_LOGP + jnp.log(jnp.asarray(RATIOS, jnp.float32))


def test_ppo_clip_loss_hand_computed():
    loss, metrics = ppo_clip_loss(LOGP_PPO, OLD_LOGP, ADV, PPO_MASK)
    _close(loss, (-1.2 - 0.5 + 0.8 + 3.0 - 2.2) / 5, tol=1e-5)  # -0.1 / 5 = -0.02
    _close(metrics["clipfrac"], 2 / 5)  # t1, t3
    _close(metrics["clipfrac_lower"], 1 / 5)  # t4
    # ppo_kl = mean(-log ratio) = -log(1.5 * .5 * .5 * 5 * 1.1) / 5 = -log(2.0625) / 5.
    _close(metrics["ppo_kl"], -np.log(2.0625) / 5, tol=1e-5)


def test_ppo_clip_loss_gradient_only_through_unclipped_tokens():
    # d/dlogp of -A * ratio is -A * ratio: t2 -.5, t5 -2.2; divided by 5 tokens.
    grad = jax.grad(lambda lp: ppo_clip_loss(lp, OLD_LOGP, ADV, PPO_MASK)[0])(LOGP_PPO)
    _close(grad, [[0.0, -0.1, 0.0, 0.0], [0.0, 0.0, -0.44, 0.0]], tol=1e-5)


def test_ppo_clip_higher_dapo_and_seq_mode():
    # hi = .28: t1 becomes -1.28; other tokens unchanged -> (-1.28 - .5 + .8 + 3 - 2.2) / 5.
    loss, _ = ppo_clip_loss(LOGP_PPO, OLD_LOGP, ADV, PPO_MASK, clip_ratio_high=0.28)
    _close(loss, -0.18 / 5, tol=1e-5)
    # seq-mean-token-mean: row means (-1.2 - .5 + .8)/3 = -.3 and (3 - 2.2)/2 = .4 -> .05.
    loss, _ = ppo_clip_loss(LOGP_PPO, OLD_LOGP, ADV, PPO_MASK, agg_mode="seq-mean-token-mean")
    _close(loss, 0.05, tol=1e-5)


def test_ppo_clip_loss_jit_and_validation():
    fn = jax.jit(functools.partial(ppo_clip_loss, clip_ratio_high=0.28))
    loss, metrics = fn(LOGP_PPO, OLD_LOGP, ADV, PPO_MASK)
    _close(loss, -0.18 / 5, tol=1e-5)
    _close(metrics["clipfrac"], 2 / 5)
    with pytest.raises(ValueError, match="clip_ratio_c"):
        ppo_clip_loss(LOGP_PPO, OLD_LOGP, ADV, PPO_MASK, clip_ratio_c=1.0)


# GSPO, lo = hi = .2. Row 0 log ratios [ln 2, 0, pad] -> s = exp(ln 2 / 2) = sqrt 2, A = +1:
#   -1.414 vs -1.2 -> -1.2 for both tokens (clipped). Row 1 [pad 5.0, ln .9, ln .9] -> s = .9,
#   A = -1: .9 vs .9 -> .9, not clipped. seq-mean-token-mean: (-1.2 + .9) / 2 = -.15.
GSPO_LOG_RATIO = np.array([[np.log(2.0), 0.0, 3.0], [5.0, np.log(0.9), np.log(0.9)]])
GSPO_MASK = jnp.array([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]])
GSPO_ADV = jnp.array([[1.0, 1.0, 1.0], [-1.0, -1.0, -1.0]])
GSPO_OLD = jnp.full((2, 3), -1.0)
GSPO_LOGP = GSPO_OLD + jnp.asarray(GSPO_LOG_RATIO, jnp.float32)


def test_gspo_loss_hand_computed():
    loss, metrics = gspo_loss(
        GSPO_LOGP, GSPO_OLD, GSPO_ADV, GSPO_MASK, clip_ratio_low=0.2, clip_ratio_high=0.2
    )
    _close(loss, -0.15, tol=1e-5)
    _close(metrics["clipfrac"], 2 / 4)
    _close(metrics["ppo_kl"], -(np.log(2.0) + 2 * np.log(0.9)) / 4, tol=1e-5)


def test_gspo_gradient_is_sequence_ratio_times_token_grad():
    # Row 1: d(-A s_t)/dlogp_t = -A s = .9 per token; token mean (1/2), row mean (1/2) -> .225.
    # Row 0 is clipped -> 0; pads -> 0.
    def loss_fn(lp):
        return gspo_loss(
            lp, GSPO_OLD, GSPO_ADV, GSPO_MASK, clip_ratio_low=0.2, clip_ratio_high=0.2
        )[0]

    grad = jax.jit(jax.grad(loss_fn))(GSPO_LOGP)
    _close(grad, [[0.0, 0.0, 0.0], [0.0, 0.225, 0.225]], tol=1e-5)


def test_gspo_paper_clip_range_default():
    # Default (3e-4, 4e-4): row 0 clipped at 1.0004 -> -1.0004; row 1 s = .9 clipped at .9997
    # for A < 0: max(.9, .9997) = .9997. Loss (-1.0004 + .9997) / 2 = -.00035.
    loss, metrics = gspo_loss(GSPO_LOGP, GSPO_OLD, GSPO_ADV, GSPO_MASK)
    _close(loss, -0.00035, tol=1e-6)
    _close(metrics["clipfrac"], 1.0)

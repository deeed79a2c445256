"""Checks that two computations of a train step make the same parameter update.

Adam's first update is lr·g/(|g| + ε), about lr·sign(g) wherever |g| ≫ ε: a gradient entry
near 0 changes sign under a last-bit difference in summation order (another CPU, another
XLA code path, another micro-batch split) and moves its parameter by up to 2·lr. A test
that compared parameters after such an update would pass only on the machine it was
written on. So the equivalence tests run Adam with ε far above every gradient entry
(entries are at most ``max_grad_norm`` = 1 after clipping): the update is then
lr·g/(|g| + ε), smooth in g with slope at most lr/ε, i.e. momentum SGD, and two updates
agree to lr/ε times the gradients' rounding difference.
"""

from __future__ import annotations

import jax
import numpy as np

# Adam with this ε is momentum SGD with step lr·g/(|g| + ε) (see the module docstring);
# it needs gradient clipping at a global norm ≤ 1 (TrainConfig's default: 1.0).
SMOOTH_ADAM = {"adam_eps": 1.0}

# float32 gradients summed in another order differ by ~1e-6 of their scale at most (a few
# thousand terms of 6e-8 relative rounding, mostly cancelling); the updated parameters add
# 6e-8·|param| of rounding, ~1e-6 of an update of 1e-1 for parameters under 1. Measured on
# the cut micro-batch test: 2e-7 of the update's scale.
UPDATE_RTOL = 1e-5


def assert_same_update(got_params, want_params, start_params, rtol: float = UPDATE_RTOL):
    """``got − start`` equals ``want − start`` (see `assert_updates_close`)."""
    start = jax.tree.leaves(jax.device_get(start_params))
    got, want = (
        [np.asarray(p, np.float64) - s for p, s in zip(jax.tree.leaves(jax.device_get(t)), start)]
        for t in (got_params, want_params)
    )
    assert_updates_close(got, want, rtol)


def assert_updates_close(got_updates, want_updates, rtol: float = UPDATE_RTOL):
    """Two lists of update arrays agree to ``rtol`` of the largest entry of ``want``.

    Also asserts that update is large enough (≥ 1e-2 at its largest entry) for the
    parameters' own float32 rounding to sit well inside the tolerance.
    """
    want_updates = [np.asarray(u, np.float64) for u in want_updates]
    scale = max(float(np.abs(u).max()) for u in want_updates)
    assert scale >= 1e-2, f"the update is too small to compare ({scale:.2e}): raise the lr"
    assert len(got_updates) == len(want_updates)
    for got, want in zip(got_updates, want_updates):
        np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=0, atol=rtol * scale)

"""SamplingConfig validation and page arithmetic; the output layout (`output.assemble`)."""

from __future__ import annotations

import numpy as np
import pytest

from coderl_jax.models.sampler import FINISH_LENGTH, FINISH_STOP, SamplingConfig, left_pad
from coderl_jax.models.sampler.output import assemble


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(decoder="paged"), "^decoder: must be one of"),
        (dict(page_size=0), "^page_size: must be >= 1"),
        (dict(num_slots=-1), "^num_slots: must be >= 0"),
        (dict(max_new_tokens=40, page_size=8, num_pages=4), "cannot hold one completion"),
    ],
)
def test_config_rejects_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SamplingConfig(**kwargs)


def test_pages_per_row_holds_the_keys_of_all_but_the_last_token():
    # 40 tokens: keys of the first 39 are stored (the last is never fed): 5 pages of 8.
    assert SamplingConfig(40, page_size=8).pages_per_row == 5
    assert SamplingConfig(41, page_size=8).pages_per_row == 5
    assert SamplingConfig(42, page_size=8).pages_per_row == 6
    assert SamplingConfig(1, page_size=8).pages_per_row == 1
    SamplingConfig(40, page_size=8, num_pages=5)  # exactly one completion: accepted


def test_left_pad_and_assemble_layout():
    tokens, mask = left_pad([[5, 6, 7], [9]], 4, pad_id=0)
    np.testing.assert_array_equal(tokens, [[0, 5, 6, 7], [0, 0, 0, 9]])
    np.testing.assert_array_equal(mask, [[0, 1, 1, 1], [0, 0, 0, 1]])
    completion = np.asarray([[11, 12, 0], [13, 0, 0], [14, 15, 16], [17, 18, 0]])
    lengths = np.asarray([2, 1, 3, 2])
    logprobs = np.where(completion > 0, -1.0, 0.0)
    out = assemble(
        np, tokens, mask, 2, completion, lengths, logprobs, np.asarray([1, 0, 0, 1], bool)
    )
    np.testing.assert_array_equal(
        out.finish_reason, [FINISH_STOP, FINISH_LENGTH, FINISH_LENGTH, FINISH_STOP]
    )
    np.testing.assert_array_equal(out.tokens[2], [0, 0, 0, 9, 14, 15, 16])
    np.testing.assert_array_equal(out.attention_mask[0], [0, 1, 1, 1, 1, 1, 0])
    np.testing.assert_array_equal(out.positions[0], [0, 0, 1, 2, 3, 4, 4])
    np.testing.assert_array_equal(out.loss_mask[1], [0, 0, 0, 0, 1, 0, 0])
    assert out.prompt_width == 4
    np.testing.assert_array_equal(out.token_logprobs()[3], [0, 0, 0, 0, -1, -1, 0])

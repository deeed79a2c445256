"""Alignment answer parsing and both reward modes, on hand-computed cases."""

import numpy as np
import pytest

from coderl_jax.rl.rewards import (
    PARSE_REASONS,
    alignment_reward,
    alignment_rewards,
    parse_alignment_answer,
)

EXPECTED_OUTPUT = "6\n"
EXPECTED_VARIABLES = {"i": 3, "total": 6}

RIGHT = 'Let me trace.\n{"final_output": "6", "variables": {"i": 3, "total": 6}}'
ONE_VAR_WRONG = '{"final_output": "6", "variables": {"i": 2, "total": 6}}'
OUTPUT_WRONG = '{"final_output": "7", "variables": {"i": 3, "total": 6.0}}'
ALL_WRONG = '{"final_output": "0", "variables": {"i": 0, "total": 0}}'
MISSING_VAR = '{"final_output": "6", "variables": {"total": 6}}'


@pytest.mark.parametrize(
    "completion, official, paper",
    [
        (RIGHT, 1.0, 1.0),
        (ONE_VAR_WRONG, 0.1 + 0.9 * 2 / 3, 0.5),  # 0.7
        (OUTPUT_WRONG, 0.1 + 0.9 * 2 / 3, 1.0),
        (ALL_WRONG, 0.1, 0.0),  # format bonus only
        (MISSING_VAR, 0.1 + 0.9 * 2 / 3, 0.5),
        ("no json here", 0.0, 0.0),
        ('{"final_output": "6"}', 0.0, 0.0),
    ],
)
def test_reward_modes_hand_computed(completion, official, paper):
    assert alignment_reward(completion, EXPECTED_OUTPUT, EXPECTED_VARIABLES) == pytest.approx(
        official
    )
    assert alignment_reward(
        completion, EXPECTED_OUTPUT, EXPECTED_VARIABLES, mode="paper"
    ) == pytest.approx(paper)


def test_reward_three_variables_and_return_output():
    labels = {"a": {"__tuple__": [1, 2]}, "b": {"__set__": [3, 4]}, "c": None}
    answer = '{"final_output": [1, 2], "variables": {"a": [1, 2], "b": [4, 3], "c": 0}}'
    # final_output is an encoded return value here: [1, 2] vs tuple (1, 2) is right.
    got = alignment_reward(answer, {"__tuple__": [1, 2]}, labels, output_kind="return")
    assert got == pytest.approx(0.1 + 0.9 * 3 / 4)  # 0.775
    assert alignment_reward(answer, {"__tuple__": [1, 2]}, labels, "paper", "return") == (
        pytest.approx(2 / 3)
    )


def test_reward_rejects_bad_arguments():
    with pytest.raises(ValueError, match="mode"):
        alignment_reward(RIGHT, EXPECTED_OUTPUT, EXPECTED_VARIABLES, mode="strict")
    with pytest.raises(ValueError, match="at least one variable"):
        alignment_reward(RIGHT, EXPECTED_OUTPUT, {}, mode="paper")
    with pytest.raises(ValueError, match="output_kind"):
        alignment_reward(RIGHT, EXPECTED_OUTPUT, EXPECTED_VARIABLES, output_kind="file")
    # Official mode with no variables scores the output alone.
    assert alignment_reward('{"final_output": "6", "variables": {}}', "6", {}) == 1.0


@pytest.mark.parametrize(
    "completion",
    [
        '{"final_output": "6", "variables": {"i": 3}}',
        'Reasoning...\n\n{"final_output": "6", "variables": {"i": 3}}\n\n',
        '```json\n{"final_output": "6", "variables": {"i": 3}}\n```',
        '```json\n{"final_output": "6", "variables": {"i": 3}}\n```\n',
        '`{"final_output": "6", "variables": {"i": 3}}`',
        '```{"final_output": "6", "variables": {"i": 3}}```',
        '  {"final_output": "6", "variables": {"i": 3}}  \r\n',
    ],
)
def test_parse_tolerated_forms(completion):
    answer, reason = parse_alignment_answer(completion)
    assert reason == "ok"
    assert answer == {"final_output": "6", "variables": {"i": 3}}


@pytest.mark.parametrize(
    "completion, reason",
    [
        ("", "empty_completion"),
        ("\n  \n```\n", "empty_completion"),
        ('Answer: {"final_output": "6", "variables": {}}', "invalid_json"),
        ('{"final_output": "6", "variables": {}}\nDone.', "invalid_json"),
        ('{"final_output": "6",\n "variables": {}}', "invalid_json"),  # not one line
        ('{"final_output": "6", "variables": {}}\n```\n```', "invalid_json"),  # two fences
        ("[1, 2]", "not_an_object"),
        ('{"variables": {}}', "missing_final_output"),
        ('{"final_output": 1}', "missing_variables"),
        ('{"final_output": 1, "variables": [1]}', "variables_not_an_object"),
    ],
)
def test_parse_failures_and_reasons(completion, reason):
    assert parse_alignment_answer(completion) == (None, reason)
    assert alignment_reward(completion, "6", {"i": 3}) == 0.0


def test_batch_rewards_and_counts():
    completions = [RIGHT, ONE_VAR_WRONG, "oops", '{"variables": {}}']
    rewards_N, counts = alignment_rewards(
        completions,
        [EXPECTED_OUTPUT] * 4,
        [EXPECTED_VARIABLES] * 4,
        ["stdout"] * 4,
    )
    np.testing.assert_allclose(rewards_N, [1.0, 0.7, 0.0, 0.0], rtol=1e-6)
    assert rewards_N.dtype == np.float32
    assert set(f"parse/{r}" for r in PARSE_REASONS) <= set(counts)
    assert counts["parse/ok"] == 2
    assert counts["parse/invalid_json"] == 1
    assert counts["parse/missing_final_output"] == 1
    assert counts["parse/empty_completion"] == 0
    assert counts["items/output_correct"] == 2
    assert counts["items/variables_correct"] == 3
    assert counts["items/variables_asked"] == 8
    paper_N, _ = alignment_rewards(
        completions, [EXPECTED_OUTPUT] * 4, [EXPECTED_VARIABLES] * 4, ["stdout"] * 4, "paper"
    )
    np.testing.assert_allclose(paper_N, [1.0, 0.5, 0.0, 0.0])


def test_batch_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="2 completions but 1 outputs"):
        alignment_rewards([RIGHT, RIGHT], ["6"], [{}, {}], ["stdout", "stdout"])

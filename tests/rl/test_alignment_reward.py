"""Alignment answer parsing and the three reward modes: hand-computed cases, and the official
mode case by case against the official CodeRL+ reward (tests/execution/official_cases)."""

import json
import pathlib

import numpy as np
import pytest

from coderl_jax.rl.rewards import (
    PARSE_REASONS,
    alignment_reward,
    alignment_rewards,
    parse_alignment_answer,
    parse_official_answer,
)

CASES = pathlib.Path(__file__).parents[1] / "execution" / "official_cases" / "reward.json"
with open(CASES) as _f:
    OFFICIAL_CASES = json.load(_f)

EXPECTED_OUTPUT = "6\n"
EXPECTED_VARIABLES = {"i": 3, "total": 6}

RIGHT = 'Let me trace.\n{"final_output": "6", "variables": {"i": 3, "total": 6}}'
ONE_VAR_WRONG = '{"final_output": "6", "variables": {"i": 2, "total": 6}}'
OUTPUT_WRONG = '{"final_output": "7", "variables": {"i": 3, "total": 6.0}}'
ALL_WRONG = '{"final_output": "0", "variables": {"i": 0, "total": 0}}'
MISSING_VAR = '{"final_output": "6", "variables": {"total": 6}}'


@pytest.mark.parametrize(
    "completion, improved, paper",
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
def test_reward_modes_hand_computed(completion, improved, paper):
    assert alignment_reward(
        completion, EXPECTED_OUTPUT, EXPECTED_VARIABLES, mode="improved"
    ) == pytest.approx(improved)
    # The same scores officially: these answers only use rules both modes share.
    assert alignment_reward(completion, EXPECTED_OUTPUT, EXPECTED_VARIABLES) == pytest.approx(
        improved
    )
    assert alignment_reward(
        completion, EXPECTED_OUTPUT, EXPECTED_VARIABLES, mode="paper"
    ) == pytest.approx(paper)


def test_reward_three_variables_and_return_output():
    labels = {"a": {"__tuple__": [1, 2]}, "b": {"__set__": [3, 4]}, "c": None}
    answer = '{"final_output": [1, 2], "variables": {"a": [1, 2], "b": [4, 3], "c": 0}}'
    # final_output is an encoded return value here: [1, 2] vs tuple (1, 2) is right.
    got = alignment_reward(answer, {"__tuple__": [1, 2]}, labels, "improved", "return")
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
    # Official and improved modes with no variables score the output alone.
    assert alignment_reward('{"final_output": "6", "variables": {}}', "6", {}) == 1.0
    assert alignment_reward('{"final_output": "6", "variables": {}}', "6", {}, "improved") == 1.0


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
    assert alignment_reward(completion, "6", {"i": 3}, mode="improved") == 0.0
    # Officially a list of variables is read by membership: the name is missing, 0.1 remains.
    official = 0.1 if reason == "variables_not_an_object" else 0.0
    assert alignment_reward(completion, "6", {"i": 3}, mode="official") == official


def test_batch_rewards_and_counts():
    completions = [RIGHT, ONE_VAR_WRONG, "oops", '{"variables": {}}']
    rewards_N, counts = alignment_rewards(
        completions,
        [EXPECTED_OUTPUT] * 4,
        [EXPECTED_VARIABLES] * 4,
        ["stdout"] * 4,
        "improved",
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


@pytest.mark.parametrize("case", OFFICIAL_CASES, ids=[c["id"] for c in OFFICIAL_CASES])
def test_reward_matches_the_official_code(case):
    args = case["completion"], case["expected_output"], case["expected_variables"]
    assert alignment_reward(*args, mode="official") == case["official"]["reward"]  # exactly
    assert alignment_reward(*args) == case["official"]["reward"]  # the default mode
    assert alignment_reward(*args, mode="improved") == pytest.approx(case["improved"]["reward"])


def test_official_cases_in_one_batch():
    rewards_N, counts = alignment_rewards(
        [c["completion"] for c in OFFICIAL_CASES],
        [c["expected_output"] for c in OFFICIAL_CASES],
        [c["expected_variables"] for c in OFFICIAL_CASES],
        ["stdout"] * len(OFFICIAL_CASES),
        "official",
    )
    np.testing.assert_array_equal(
        rewards_N, np.float32([c["official"]["reward"] for c in OFFICIAL_CASES])
    )
    assert sum(v for k, v in counts.items() if k.startswith("parse/")) == len(OFFICIAL_CASES)
    assert counts["parse/scoring_error"] >= 4  # variables null/number/string, float overflow


def test_official_parser_reads_what_the_improved_one_does_not():
    u2028 = '{"final_output": "a\u2028b", "variables": {}}'.replace("\\u2028", "\u2028")
    assert parse_official_answer("x\n" + u2028)[1] == "ok"  # split on "\n" only
    assert parse_alignment_answer("x\n" + u2028)[1] == "invalid_json"  # splitlines splits it
    fenced = '```json\n{"final_output": "6", "variables": {}}\n```'
    assert parse_official_answer(fenced) == (None, "invalid_json")
    assert parse_alignment_answer(fenced)[1] == "ok"
    assert parse_official_answer('{"final_output": "a\tb", "variables": {}}')[1] == "invalid_json"
    big = '{"final_output": "6", "variables": {"a": 1, "b": 1%s}}' % ("0" * 5000)
    assert parse_official_answer(big)[1] == "ok"  # the official process reads 50 000 digits
    assert parse_alignment_answer(big) == (None, "invalid_json")  # here: a format error


def test_the_mode_list():
    with pytest.raises(ValueError, match="official.*improved.*paper"):
        alignment_reward(RIGHT, EXPECTED_OUTPUT, EXPECTED_VARIABLES, mode="strict")

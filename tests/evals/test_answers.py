"""Reasoning answers: found in [ANSWER] tags / fences / assert lines, read, judged."""

import pytest

from coderl_jax.data.reasoning import ReasoningItem
from coderl_jax.evals.answers import find_answer, judge, read_value


def execution(expected: str, **metadata) -> ReasoningItem:
    return ReasoningItem(
        id="t/0", source="t", task="code_execution", program="def f(x): ...", input="f(1)",
        expected_output=expected, metadata=metadata,
    )  # fmt: skip


@pytest.mark.parametrize(
    "completion, answer, source",
    [
        ("I think\n[ANSWER]\nassert f(1) == 2\n[/ANSWER]", "assert f(1) == 2", "answer_tags"),
        ("[ANSWER]x[/ANSWER] then [ANSWER] 3 [/ANSWER]", "3", "answer_tags"),
        (
            "[ANSWER]\n```python\nassert f(1) == 'a'\n```\n[/ANSWER]",
            "assert f(1) == 'a'",
            "answer_tags",
        ),
        ("[ANSWER]\n7", "7", "answer_tags"),  # unterminated: to the end
        ("so:\n```python\nassert f(1) == [1]\n```", "assert f(1) == [1]", "fenced_block"),
        ("steps...\nassert f(1) == 5\nDone.", "assert f(1) == 5", "assert_line"),
        ("<think>[ANSWER]1[/ANSWER]</think>\n[ANSWER]2[/ANSWER]", "2", "answer_tags"),
        ("I do not know.", None, "no_answer"),
        ("", None, "no_answer"),
    ],
)
def test_find_answer(completion, answer, source):
    assert find_answer(completion) == (answer, source)


def test_read_value_takes_the_asserted_right_hand_side_or_the_literal():
    assert read_value("assert f(a=[1, 2], b='x') == (1, 'y')") == (1, "y")
    assert read_value("assert sorted(f(1)) == {3, 4}") == {3, 4}
    assert read_value("  -2.5 ") == -2.5
    assert read_value("true") is True  # JSON spellings
    assert read_value("assert f(1) == null") is None
    for bad in ("f(1)", "assert f(1) == g(2)", "x +", "assert f(1)"):
        with pytest.raises(ValueError):
            read_value(bad)


@pytest.mark.parametrize(
    "expected, completion, verdict",
    [
        ("[-1, 1, 3]", "[ANSWER]assert f(1) == [-1, 1, 3][/ANSWER]", "correct"),
        ("[-1, 1, 3]", "[ANSWER]assert f(1) == (-1, 1, 3)[/ANSWER]", "correct"),  # tuple ~ list
        ("3", "[ANSWER]assert f(1) == 3.0[/ANSWER]", "correct"),
        ("{'b': 1, 'a': 2}", "[ANSWER]{'a': 2, 'b': 1}[/ANSWER]", "correct"),
        ("{1, 2}", "[ANSWER]{2, 1}[/ANSWER]", "correct"),
        ("'ba'", "[ANSWER]assert f(1) == 'ab'[/ANSWER]", "wrong"),
        ("True", "[ANSWER]assert f(1) == 1[/ANSWER]", "wrong"),  # bool is not a number
        ("'3'", "[ANSWER]3[/ANSWER]", "wrong"),
        ("3", "[ANSWER]assert f(1) == three[/ANSWER]", "not_a_literal"),
        ("3", "the answer is three", "no_answer"),
        ("not a literal", "[ANSWER]3[/ANSWER]", "bad_label"),
    ],
)
def test_value_answers_use_the_alignment_equality_rules(expected, completion, verdict):
    judgement = judge(execution(expected), completion)
    assert judgement.verdict == verdict
    assert judgement.correct == (verdict == "correct")


def test_stdout_answers_keep_leading_spaces_and_ignore_trailing_ones():
    item = execution("   12\nok\n", input_kind="stdin", output_kind="stdout")
    assert judge(item, "[ANSWER]\n   12\nok  \n\n[/ANSWER]").correct
    assert judge(item, "```\n   12\nok\n```").correct
    assert judge(item, "[ANSWER]\nassert out == '   12\\nok'\n[/ANSWER]").correct
    assert not judge(item, "[ANSWER]\n12\nok\n[/ANSWER]").correct
    assert judge(item, "nothing").verdict == "no_answer"

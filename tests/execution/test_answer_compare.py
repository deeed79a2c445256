"""Alignment-answer rules of the comparison module (improved: answer_value_matches,
answer_stdout_matches) and the label decoding they rest on. The official rules are checked
case by case against the official code in test_official_cases.py."""

import math

import pytest

from coderl_jax.execution import compare
from coderl_jax.execution.compare import answer_stdout_matches, answer_value_matches
from coderl_jax.execution.encoding import TruncatedInt, Unrepresentable, decode_label

BIGINT = {"__bigint__": "12345", "digits": 5000}
UNREPR = {"__unrepresentable__": "function", "reason": "not data"}


def test_decode_label_tagged_objects():
    assert decode_label({"__tuple__": [1, {"__tuple__": []}]}) == (1, ())
    assert decode_label({"__set__": [1, 2]}) == frozenset({1, 2})
    assert decode_label({"__dict__": [[{"__tuple__": [1, 2]}, "a"], [3, "b"]]}) == {
        (1, 2): "a",
        3: "b",
    }
    assert math.isnan(decode_label({"__float__": "nan"}))
    assert decode_label({"__float__": "-inf"}) == -math.inf
    assert decode_label(BIGINT) == TruncatedInt("12345", 5000)
    assert decode_label(UNREPR) == Unrepresentable("function", "not data")
    # A dict with other keys besides a tag name is a plain dict.
    assert decode_label({"__tuple__": [1], "x": 2}) == {"__tuple__": [1], "x": 2}


def test_decode_label_rejects_malformed():
    with pytest.raises(ValueError, match="__float__"):
        decode_label({"__float__": "huge"})
    with pytest.raises(ValueError, match="JSON list"):
        decode_label({"__tuple__": 3})
    with pytest.raises(ValueError, match="pairs"):
        decode_label({"__dict__": [[1]]})


def test_rule_exact():
    assert answer_value_matches(5, 5)
    assert answer_value_matches("abc", "abc")
    assert answer_value_matches([1, [2, "x"]], [1, [2, "x"]])
    assert answer_value_matches({"a": 1}, {"a": 1})
    assert not answer_value_matches(5, 6)


def test_rule_numbers_within_tolerance():
    assert answer_value_matches(3, 3.0)
    assert answer_value_matches(3.0, 3)
    assert answer_value_matches(0.1 + 0.2, 0.3)
    assert answer_value_matches(1.0 + 5e-10, 1)
    assert not answer_value_matches(1.0 + 5e-9, 1)
    assert answer_value_matches(1e20 * (1 + 5e-10), 1e20)  # relative tolerance for large floats
    assert not answer_value_matches(10**30 + 1, 10**30)  # ints compare exactly
    assert not answer_value_matches(1e308, 10**400)  # too large for a float: not equal
    assert not answer_value_matches("3", 3)  # no string -> number coercion


def test_rule_bool_is_not_a_number():
    assert not answer_value_matches(1, True)
    assert not answer_value_matches(True, 1)
    assert not answer_value_matches(0.0, False)


def test_rule_nonfinite_floats():
    nan = {"__float__": "nan"}
    assert answer_value_matches(float("nan"), nan)  # json.loads("NaN")
    assert answer_value_matches("nan", nan)
    assert answer_value_matches(" NaN ", nan)
    assert answer_value_matches("Infinity", {"__float__": "inf"})
    assert answer_value_matches(float("-inf"), {"__float__": "-inf"})
    assert answer_value_matches("-inf", {"__float__": "-inf"})
    assert not answer_value_matches("inf", {"__float__": "-inf"})
    assert not answer_value_matches(0, nan)
    assert not answer_value_matches(1e308, {"__float__": "inf"})


def test_rule_bool_vs_words():
    assert answer_value_matches("true", True)
    assert answer_value_matches(" True", True)
    assert answer_value_matches("false", False)
    assert not answer_value_matches("false", True)
    assert not answer_value_matches("yes", True)
    assert answer_value_matches(True, "true")  # either direction
    assert answer_value_matches(False, "False")


def test_rule_none_vs_words():
    assert answer_value_matches(None, None)
    assert answer_value_matches("null", None)
    assert answer_value_matches("None", None)
    assert answer_value_matches(None, "null")
    assert not answer_value_matches("", None)
    assert not answer_value_matches(0, None)
    assert not answer_value_matches(None, 0)


def test_rule_strings_stripped():
    assert answer_value_matches("  hello \n", "hello")
    assert answer_value_matches("hello", " hello ")
    assert not answer_value_matches("hel lo", "hello")
    assert not answer_value_matches("Hello", "hello")


def test_rule_tuples_as_lists():
    assert answer_value_matches([1, 2], {"__tuple__": [1, 2]})
    assert answer_value_matches([[1, "a"]], [{"__tuple__": [1, "a"]}])
    assert not answer_value_matches([2, 1], {"__tuple__": [1, 2]})
    assert not answer_value_matches([1, 2, 3], {"__tuple__": [1, 2]})
    assert not answer_value_matches({"0": 1}, [1])


def test_rule_sets_order_insensitive():
    s = {"__set__": [1, 2, 3]}
    assert answer_value_matches([3, 1, 2], s)
    assert answer_value_matches([3.0, 1, 2], s)
    assert not answer_value_matches([1, 2], s)
    assert not answer_value_matches([1, 1, 2, 3], s)
    assert not answer_value_matches([1, 2, 4], s)
    # Fuzzy matches are one to one: [1, 1.0] cannot cover {1, 2}.
    assert not answer_value_matches([1, 1.0], {"__set__": [1, 2]})
    # A set of tuples.
    assert answer_value_matches(
        [[2, 3], [0, 1]], {"__set__": [{"__tuple__": [0, 1]}, {"__tuple__": [2, 3]}]}
    )


def test_matching_needs_augmenting_paths():
    # Expected True matches both predictions; "TRUE" only the bool. Greedy in order would
    # give True the bool and leave "TRUE" unmatched; the augmenting path reassigns.
    assert compare._match_unordered([True, "true"], [True, "TRUE"])
    assert not compare._match_unordered(["true", "true"], [True, "TRUE"])


def test_rule_dict_keys_as_strings():
    int_keys = {"__dict__": [[1, "a"], [2, "b"]]}
    assert answer_value_matches({"1": "a", "2": "b"}, int_keys)
    assert answer_value_matches({"2": "b", " 1 ": "a"}, int_keys)
    assert not answer_value_matches({"1": "a"}, int_keys)
    assert not answer_value_matches({"1": "a", "3": "b"}, int_keys)
    tuple_keys = {"__dict__": [[{"__tuple__": [0, 1]}, 5]]}
    assert answer_value_matches({"[0, 1]": 5}, tuple_keys)
    assert answer_value_matches({"(0, 1)": 5}, tuple_keys)
    assert answer_value_matches({"true": 1}, {"__dict__": [[True, 1]]})
    assert answer_value_matches({"True": 1}, {"__dict__": [[True, 1]]})
    assert answer_value_matches({"None": 1}, {"__dict__": [[None, 1]]})
    assert answer_value_matches({"a": [1, 2]}, {"a": {"__tuple__": [1, 2]}})
    assert not answer_value_matches({"a": 1}, {"b": 1})


def test_rule_truncated_and_unrepresentable_never_match():
    assert not answer_value_matches(12345, BIGINT)
    assert not answer_value_matches("function", UNREPR)
    assert not answer_value_matches([1, 2], [1, UNREPR])


def test_stdout_normalisation():
    assert answer_stdout_matches("6", "6\n")
    assert answer_stdout_matches("a\nb", "a  \r\nb\r\n\r\n")
    assert answer_stdout_matches("a\r\nb  \n", "a\nb")
    assert not answer_stdout_matches(" 6", "6\n")  # leading whitespace matters on stdout
    assert not answer_stdout_matches("a\n\nb", "a\nb")  # inner blank lines matter
    assert answer_stdout_matches(6, "6\n")  # a number through its str
    assert answer_stdout_matches(2.5, "2.5\n")
    assert not answer_stdout_matches(True, "True\n")
    assert not answer_stdout_matches(["6"], "6\n")
    assert compare.normalize_stdout("x \r\ny\r\n\n") == "x\ny"

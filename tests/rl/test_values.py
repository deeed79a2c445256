"""Equality rules, decoding and prompt rendering of alignment labels (coderl_jax.rl.values)."""

import json
import math

import pytest

from coderl_jax.rl import values
from coderl_jax.rl.values import (
    TruncatedInt,
    Unrepresentable,
    decode_label,
    is_askable,
    stdout_equal,
    to_prompt_literal,
    values_equal,
)

BIGINT = {"__bigint__": "12345", "digits": 5000}
UNREPR = {"__unrepresentable__": "function", "reason": "not data"}


def test_decode_value_tagged_objects():
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


def test_decode_value_rejects_malformed():
    with pytest.raises(ValueError, match="__float__"):
        decode_label({"__float__": "huge"})
    with pytest.raises(ValueError, match="JSON list"):
        decode_label({"__tuple__": 3})
    with pytest.raises(ValueError, match="pairs"):
        decode_label({"__dict__": [[1]]})


def test_rule_exact():
    assert values_equal(5, 5)
    assert values_equal("abc", "abc")
    assert values_equal([1, [2, "x"]], [1, [2, "x"]])
    assert values_equal({"a": 1}, {"a": 1})
    assert not values_equal(5, 6)


def test_rule_numbers_within_tolerance():
    assert values_equal(3, 3.0)
    assert values_equal(3.0, 3)
    assert values_equal(0.1 + 0.2, 0.3)
    assert values_equal(1.0 + 5e-10, 1)
    assert not values_equal(1.0 + 5e-9, 1)
    assert values_equal(1e20 * (1 + 5e-10), 1e20)  # relative tolerance for large floats
    assert not values_equal(10**30 + 1, 10**30)  # ints compare exactly
    assert not values_equal(1e308, 10**400)  # too large for a float: not equal
    assert not values_equal("3", 3)  # no string -> number coercion


def test_rule_bool_is_not_a_number():
    assert not values_equal(1, True)
    assert not values_equal(True, 1)
    assert not values_equal(0.0, False)


def test_rule_nonfinite_floats():
    nan = {"__float__": "nan"}
    assert values_equal(float("nan"), nan)  # json.loads("NaN")
    assert values_equal("nan", nan)
    assert values_equal(" NaN ", nan)
    assert values_equal("Infinity", {"__float__": "inf"})
    assert values_equal(float("-inf"), {"__float__": "-inf"})
    assert values_equal("-inf", {"__float__": "-inf"})
    assert not values_equal("inf", {"__float__": "-inf"})
    assert not values_equal(0, nan)
    assert not values_equal(1e308, {"__float__": "inf"})


def test_rule_bool_vs_words():
    assert values_equal("true", True)
    assert values_equal(" True", True)
    assert values_equal("false", False)
    assert not values_equal("false", True)
    assert not values_equal("yes", True)
    assert values_equal(True, "true")  # either direction
    assert values_equal(False, "False")


def test_rule_none_vs_words():
    assert values_equal(None, None)
    assert values_equal("null", None)
    assert values_equal("None", None)
    assert values_equal(None, "null")
    assert not values_equal("", None)
    assert not values_equal(0, None)
    assert not values_equal(None, 0)


def test_rule_strings_stripped():
    assert values_equal("  hello \n", "hello")
    assert values_equal("hello", " hello ")
    assert not values_equal("hel lo", "hello")
    assert not values_equal("Hello", "hello")


def test_rule_tuples_as_lists():
    assert values_equal([1, 2], {"__tuple__": [1, 2]})
    assert values_equal([[1, "a"]], [{"__tuple__": [1, "a"]}])
    assert not values_equal([2, 1], {"__tuple__": [1, 2]})
    assert not values_equal([1, 2, 3], {"__tuple__": [1, 2]})
    assert not values_equal({"0": 1}, [1])


def test_rule_sets_order_insensitive():
    s = {"__set__": [1, 2, 3]}
    assert values_equal([3, 1, 2], s)
    assert values_equal([3.0, 1, 2], s)
    assert not values_equal([1, 2], s)
    assert not values_equal([1, 1, 2, 3], s)
    assert not values_equal([1, 2, 4], s)
    # Fuzzy matches are one to one: [1, 1.0] cannot cover {1, 2}.
    assert not values_equal([1, 1.0], {"__set__": [1, 2]})
    # A set of tuples.
    assert values_equal(
        [[2, 3], [0, 1]], {"__set__": [{"__tuple__": [0, 1]}, {"__tuple__": [2, 3]}]}
    )


def test_matching_needs_augmenting_paths():
    # Expected True matches both predictions; "TRUE" only the bool. Greedy in order would
    # give True the bool and leave "TRUE" unmatched; the augmenting path reassigns.
    assert values._match_unordered([True, "true"], [True, "TRUE"])
    assert not values._match_unordered(["true", "true"], [True, "TRUE"])


def test_rule_dict_keys_as_strings():
    int_keys = {"__dict__": [[1, "a"], [2, "b"]]}
    assert values_equal({"1": "a", "2": "b"}, int_keys)
    assert values_equal({"2": "b", " 1 ": "a"}, int_keys)
    assert not values_equal({"1": "a"}, int_keys)
    assert not values_equal({"1": "a", "3": "b"}, int_keys)
    tuple_keys = {"__dict__": [[{"__tuple__": [0, 1]}, 5]]}
    assert values_equal({"[0, 1]": 5}, tuple_keys)
    assert values_equal({"(0, 1)": 5}, tuple_keys)
    assert values_equal({"true": 1}, {"__dict__": [[True, 1]]})
    assert values_equal({"True": 1}, {"__dict__": [[True, 1]]})
    assert values_equal({"None": 1}, {"__dict__": [[None, 1]]})
    assert values_equal({"a": [1, 2]}, {"a": {"__tuple__": [1, 2]}})
    assert not values_equal({"a": 1}, {"b": 1})


def test_rule_truncated_and_unrepresentable_never_match():
    assert not values_equal(12345, BIGINT)
    assert not values_equal("function", UNREPR)
    assert not values_equal([1, 2], [1, UNREPR])


def test_stdout_normalisation():
    assert stdout_equal("6", "6\n")
    assert stdout_equal("a\nb", "a  \r\nb\r\n\r\n")
    assert stdout_equal("a\r\nb  \n", "a\nb")
    assert not stdout_equal(" 6", "6\n")  # leading whitespace matters on stdout
    assert not stdout_equal("a\n\nb", "a\nb")  # inner blank lines matter
    assert stdout_equal(6, "6\n")  # a number through its str
    assert stdout_equal(2.5, "2.5\n")
    assert not stdout_equal(True, "True\n")
    assert not stdout_equal(["6"], "6\n")
    assert values.normalize_stdout("x \r\ny\r\n\n") == "x\ny"


@pytest.mark.parametrize(
    "encoded, literal",
    [
        (5, "5"),
        ("héllo", '"héllo"'),
        (None, "null"),
        (True, "true"),
        ({"__tuple__": [1, {"__tuple__": [2]}]}, "[1, [2]]"),
        ({"__set__": ["b", "a"]}, '["a", "b"]'),
        ({"__dict__": [[1, "x"], [{"__tuple__": [0, 1]}, None]]}, '{"1": "x", "[0,1]": null}'),
        ({"__float__": "nan"}, '"nan"'),
        ([{"__float__": "-inf"}], '["-inf"]'),
        ({"a": {"__set__": []}}, '{"a": []}'),
    ],
)
def test_to_prompt_literal_and_round_trip(encoded, literal):
    assert to_prompt_literal(encoded) == literal
    assert values_equal(json.loads(literal), encoded)
    assert is_askable(encoded, max_chars=100)


def test_to_prompt_literal_rejects_unaskable():
    with pytest.raises(ValueError, match="never asked"):
        to_prompt_literal(BIGINT)
    with pytest.raises(ValueError, match="never asked"):
        to_prompt_literal([1, UNREPR])


def test_is_askable_filters():
    assert not is_askable(BIGINT, 100)
    assert not is_askable({"k": UNREPR}, 100)
    assert not is_askable(list(range(50)), max_chars=20)  # literal over the size cap
    assert is_askable(list(range(5)), max_chars=20)
    # Keys 1 and "1" collide as strings: cannot be answered in JSON, so not asked.
    assert not is_askable({"__dict__": [[1, "a"], ["1", "b"]]}, 100)

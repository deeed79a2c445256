"""Value encoding (inside the child) and comparisons (outside), without a sandbox."""

import json
import sys

from coderl_jax.execution import EncodeCaps, decode_value, encode_value
from coderl_jax.execution.compare import normalize_stdout, return_value_matches, stdout_matches


def test_encoding_of_plain_and_tagged_values():
    assert encode_value([1, "a", None, True, 2.5]) == [1, "a", None, True, 2.5]
    assert encode_value((1, 2)) == {"__tuple__": [1, 2]}
    assert encode_value({3, 1, 2}) == {"__set__": [1, 2, 3]}
    assert encode_value({"b": 1, "a": 2}) == {"b": 1, "a": 2}
    assert encode_value({(1, 2): "x", 3: "y"}) == {
        "__dict__": [[{"__tuple__": [1, 2]}, "x"], [3, "y"]]
    }
    assert encode_value(float("nan")) == {"__float__": "nan"}
    assert encode_value(float("-inf")) == {"__float__": "-inf"}


def test_decode_inverts_encode():
    value = {"k": [(1, 2), {3, 4}, {5: 6}], "inf": float("inf")}
    assert decode_value(encode_value(value)) == value


def test_big_int_is_marked_with_leading_digits_and_digit_count():
    value = 7**20000  # 16902 digits: 20000 * log10(7) = 16901.96...
    encoded = encode_value(value)
    assert encoded["digits"] == 16902
    sys.set_int_max_str_digits(0)
    try:
        exact_leading = str(value)[:8]
    finally:
        sys.set_int_max_str_digits(4300)
    assert encoded["__bigint__"][:8] == exact_leading
    assert encoded["__bigint__"].endswith("...")
    assert encode_value(-(7**20000))["__bigint__"].startswith("-" + exact_leading)
    assert encode_value(-(10**50)) == -(10**50)


def test_self_reference_depth_size_and_hostile_objects():
    a = [1]
    a.append(a)
    assert encode_value(a) == [1, {"__unrepresentable__": "list", "reason": "self-reference"}]
    caps = EncodeCaps(max_depth=3, max_items=5, max_str_chars=4)
    assert encode_value([[[[1]]]], caps)[0][0][0] == {
        "__unrepresentable__": "list",
        "reason": "nested deeper than 3",
    }
    assert encode_value(list(range(6)), caps)["reason"] == "6 items > 5"
    assert encode_value("hello", caps)["__unrepresentable__"] == "str"

    class Hostile:
        def __repr__(self):
            raise RuntimeError("no")

        def __eq__(self, other):
            return True

        __class__ = property(lambda self: int)  # tries to look like an int

    assert encode_value(Hostile()) == {
        "__unrepresentable__": "Hostile",
        "reason": "not a plain value",
    }

    class EvilList(list):
        def __iter__(self):
            raise RuntimeError("no")

    assert encode_value(EvilList([1, 2])) == [1, 2]
    shared = [0]
    assert encode_value([shared, shared]) == [[0], [0]]
    huge = [[0] * 1000 for _ in range(1000)]
    assert encode_value(huge)["reason"] == "more than 20000 nodes"


def test_return_value_matches_is_type_aware():
    enc = encode_value
    assert return_value_matches(enc(3), 3)
    assert return_value_matches(enc(3), 3.0)
    assert return_value_matches(enc(0.3), 0.1 + 0.2)
    assert not return_value_matches(enc(1), True)
    assert not return_value_matches(enc(True), 1)
    assert not return_value_matches(enc(1), "1")
    assert return_value_matches(enc((1, 2)), [1, 2])  # JSON has no tuples
    assert not return_value_matches(enc([1, 2]), {"__tuple__": [1, 2]})
    assert return_value_matches(enc({2, 1}), {"__set__": [1, 2]})
    assert not return_value_matches(enc({1, 2}), [1, 2])
    assert return_value_matches(enc({"b": [2], "a": 1}), {"a": 1, "b": [2]})
    assert not return_value_matches(enc({"a": 1, "b": 2}), {"a": 1})
    assert return_value_matches(enc({1: "x"}), json.loads('{"__dict__": [[1, "x"]]}'))
    assert return_value_matches(enc(float("nan")), {"__float__": "nan"})

    class AlwaysEqual:
        def __eq__(self, other):
            return True

    assert not return_value_matches(enc(AlwaysEqual()), 3)
    assert not return_value_matches(enc(AlwaysEqual()), None)


def test_stdout_normalisation_and_float_tolerance():
    assert normalize_stdout("a  \r\nb\t\n\n\n") == "a\nb"
    assert stdout_matches("1 2\n3\n", "1 2   \r\n3")
    assert not stdout_matches("1 2\n3", "1 2 3")
    assert not stdout_matches("0.333333", "0.3333")
    assert stdout_matches("0.333333", "0.3333", float_tolerance=1e-3)
    assert not stdout_matches("0.333333", "0.33", float_tolerance=1e-3)
    assert stdout_matches("1000000.0 x", "1000000.5 x", float_tolerance=1e-6)
    assert not stdout_matches("1 x", "1 y", float_tolerance=1.0)

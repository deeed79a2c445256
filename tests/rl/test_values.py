"""Prompt literals and askability of alignment labels (coderl_jax.rl.values)."""

import json

import pytest

from coderl_jax.execution.compare import answer_value_matches
from coderl_jax.rl.values import is_askable, to_prompt_literal

BIGINT = {"__bigint__": "12345", "digits": 5000}
UNREPR = {"__unrepresentable__": "function", "reason": "not data"}


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
    assert answer_value_matches(json.loads(literal), encoded)
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

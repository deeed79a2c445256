"""Judging a program's output against the expected one, outside the sandbox.

Two comparisons, shared by the test runner, rewards and evaluation:

* ``stdout_matches(expected, got, float_tolerance)``: both texts are normalised
  (``\\r\\n``/``\\r`` -> ``\\n``, trailing whitespace of every line and trailing blank lines
  removed) and compared exactly; with ``float_tolerance`` they must have the same lines and
  tokens per line, tokens equal as text or both floats with
  ``|a - b| <= tol * max(1, |a|, |b|)`` (absolute below 1, relative above).
* ``values_equal(expected, got)``: type-aware equality of two values in the encoding of
  ``spec.py`` (``expected`` from the dataset's JSON, ``got`` encoded in the child). Rules:
  bool is never equal to a number; int and float compare numerically, floats within
  ``1e-9 * max(1, |a|, |b|)``; a str never equals a number; a tuple the program returned
  equals an expected JSON list with equal items (JSON has no tuples), but an expected
  ``__tuple__`` needs a tuple; sets equal sets with the same canonical items; dicts
  compare as key -> value maps in any order; ``__unrepresentable__`` never equals
  anything, so an object with a rigged ``__eq__`` cannot pass.
"""

from __future__ import annotations

import math

from .encoding import canonical_json
from .spec import TAG_BIGINT, TAG_DICT, TAG_FLOAT, TAG_SET, TAG_TUPLE, TAG_UNREPRESENTABLE

VALUE_FLOAT_TOLERANCE = 1e-9
_OTHER_TAGS = (TAG_FLOAT, TAG_TUPLE, TAG_SET, TAG_BIGINT, TAG_UNREPRESENTABLE)


def normalise_stdout(text: str) -> str:
    """Line endings -> ``\\n``, trailing whitespace per line and trailing blank lines cut."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    lines = [line.rstrip() for line in lines]
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


def _floats_close(a: float, b: float, tolerance: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= tolerance * max(1.0, abs(a), abs(b))


def _as_float(token: str) -> float | None:
    try:
        return float(token)
    except ValueError:
        return None


def stdout_matches(expected: str, got: str, float_tolerance: float | None = None) -> bool:
    """Whether ``got`` equals ``expected`` after normalisation (see module docstring)."""
    expected, got = normalise_stdout(expected), normalise_stdout(got)
    if expected == got:
        return True
    if float_tolerance is None:
        return False
    expected_lines, got_lines = expected.split("\n"), got.split("\n")
    if len(expected_lines) != len(got_lines):
        return False
    for expected_line, got_line in zip(expected_lines, got_lines):
        expected_tokens, got_tokens = expected_line.split(), got_line.split()
        if len(expected_tokens) != len(got_tokens):
            return False
        for e, g in zip(expected_tokens, got_tokens):
            if e == g:
                continue
            ef, gf = _as_float(e), _as_float(g)
            if ef is None or gf is None or not _floats_close(ef, gf, float_tolerance):
                return False
    return True


def _tagged(value: object, tag: str) -> bool:
    return isinstance(value, dict) and tag in value


def _number(value: object) -> float | int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if _tagged(value, TAG_FLOAT) and len(value) == 1:
        return float(value[TAG_FLOAT])
    return None


def _as_map(value: dict) -> dict[str, object] | None:
    """A str-keyed dict or a ``__dict__`` pair list -> {canonical key text: value}."""
    if _tagged(value, TAG_DICT) and len(value) == 1:
        try:
            return {canonical_json(k): v for k, v in value[TAG_DICT]}
        except (TypeError, ValueError):
            return None
    if any(tag in value for tag in _OTHER_TAGS):
        return None
    return {canonical_json(k): v for k, v in value.items()}


def values_equal(expected: object, got: object) -> bool:
    """Type-aware equality of two encoded values (rules in the module docstring)."""
    if _tagged(expected, TAG_UNREPRESENTABLE) or _tagged(got, TAG_UNREPRESENTABLE):
        return False
    e_num, g_num = _number(expected), _number(got)
    if e_num is not None or g_num is not None:
        if e_num is None or g_num is None:
            return False
        if isinstance(e_num, int) and isinstance(g_num, int):
            return e_num == g_num
        return _floats_close(float(e_num), float(g_num), VALUE_FLOAT_TOLERANCE)
    if expected is None or isinstance(expected, (bool, str)):
        return type(expected) is type(got) and expected == got
    if _tagged(expected, TAG_BIGINT) or _tagged(got, TAG_BIGINT):
        return expected == got
    if isinstance(expected, list) or _tagged(expected, TAG_TUPLE):
        expected_items = expected if isinstance(expected, list) else expected[TAG_TUPLE]
        if isinstance(got, list) and isinstance(expected, list):
            got_items = got
        elif _tagged(got, TAG_TUPLE):
            got_items = got[TAG_TUPLE]
        else:
            return False
        return len(expected_items) == len(got_items) and all(
            values_equal(e, g) for e, g in zip(expected_items, got_items)
        )
    if _tagged(expected, TAG_SET):
        if not _tagged(got, TAG_SET):
            return False
        return sorted(map(canonical_json, expected[TAG_SET])) == sorted(
            map(canonical_json, got[TAG_SET])
        )
    if isinstance(expected, dict):
        if not isinstance(got, dict) or _tagged(got, TAG_TUPLE) or _tagged(got, TAG_SET):
            return False
        expected_map, got_map = _as_map(expected), _as_map(got)
        if expected_map is None or got_map is None or expected_map.keys() != got_map.keys():
            return False
        return all(values_equal(expected_map[k], got_map[k]) for k in expected_map)
    return False

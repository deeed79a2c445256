"""Every comparison that decides a reward, both rule sets side by side.

Arguments are always ``(got, expected)``: what the program or model produced, then what it
should be. One function per question and rule set (improved | official):

* stdout of a stdio test: ``stdout_matches`` | ``official_stdout_matches``
* return value of a call test: ``return_value_matches`` | ``official_return_matches``
* alignment answer, a value: ``answer_value_matches`` | ``check_value_equality``
* alignment answer, a program's stdout: ``answer_stdout_matches`` | ``check_value_equality``

The official rules are those of the official CodeRL+ code (github jiangxxxue/CODERLPLUS at
c574a90): its code judge, LiveCodeBench's ``testing_util`` as vendored in verl
``utils/reward_score/livecodebench``, and ``check_value_equality`` of
``recipe/reward/reward_function_coderlplus.py``. How they differ from the improved rules, and
why those are kept, is in the README ("Fidelity"). Standard library only (the sandbox worker
imports this module).
"""

from __future__ import annotations

import decimal
import json
import math
import re

from .encoding import (
    TruncatedInt,
    Unrepresentable,
    canonical_json,
    decode_label,
    decode_value,
    holds_marker,
    plain_key,
)
from .spec import TAG_BIGINT, TAG_DICT, TAG_FLOAT, TAG_SET, TAG_TUPLE, TAG_UNREPRESENTABLE

FLOAT_TOLERANCE = 1e-9  # improved rules: how close two float values must be
_OTHER_TAGS = (TAG_FLOAT, TAG_TUPLE, TAG_SET, TAG_BIGINT, TAG_UNREPRESENTABLE)

# =================================================================== code judge, improved


def normalize_stdout(text: str) -> str:
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


def stdout_matches(got: str, expected: str, float_tolerance: float | None = None) -> bool:
    """Improved stdio rule: equal after ``normalize_stdout``; with ``float_tolerance``, the
    same lines and tokens, tokens equal as text or both floats with
    ``|a - b| <= tol * max(1, |a|, |b|)`` (absolute below 1, relative above)."""
    got, expected = normalize_stdout(got), normalize_stdout(expected)
    if got == expected:
        return True
    if float_tolerance is None:
        return False
    got_lines, expected_lines = got.split("\n"), expected.split("\n")
    if len(got_lines) != len(expected_lines):
        return False
    for got_line, expected_line in zip(got_lines, expected_lines):
        got_tokens, expected_tokens = got_line.split(), expected_line.split()
        if len(got_tokens) != len(expected_tokens):
            return False
        for g, e in zip(got_tokens, expected_tokens):
            if g == e:
                continue
            gf, ef = _as_float(g), _as_float(e)
            if gf is None or ef is None or not _floats_close(gf, ef, float_tolerance):
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


def return_value_matches(got: object, expected: object) -> bool:
    """Improved call-test rule: type-aware equality of two encoded values (``got`` encoded in
    the child, ``expected`` the dataset's JSON). A bool never equals a number; ints and floats
    compare numerically, floats within ``1e-9 * max(1, |a|, |b|)``; a str never equals a
    number; a returned tuple equals an expected JSON list with equal items (JSON has no
    tuples), but an expected ``__tuple__`` needs a tuple; sets equal sets with the same
    canonical items; dicts compare as maps in any order; ``__unrepresentable__`` never equals
    anything, so an object with a rigged ``__eq__`` cannot pass."""
    if _tagged(expected, TAG_UNREPRESENTABLE) or _tagged(got, TAG_UNREPRESENTABLE):
        return False
    e_num, g_num = _number(expected), _number(got)
    if e_num is not None or g_num is not None:
        if e_num is None or g_num is None:
            return False
        if isinstance(e_num, int) and isinstance(g_num, int):
            return e_num == g_num
        return _floats_close(float(e_num), float(g_num), FLOAT_TOLERANCE)
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
            return_value_matches(g, e) for g, e in zip(got_items, expected_items)
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
        return all(return_value_matches(got_map[k], expected_map[k]) for k in expected_map)
    return False


# =================================================================== code judge, official


def _stripped_lines(text: str) -> list[str]:
    return [line.strip() for line in text.strip().split("\n")]


def _decimals(line: str) -> list[decimal.Decimal] | None:
    try:
        return [decimal.Decimal(token) for token in line.split()]
    except Exception:  # the official conversion treats every failure alike
        return None


def official_stdout_matches(got: str, expected: str) -> bool:
    """Official stdio rule: both texts stripped as a whole, split on ``\\n`` only, every line
    stripped; the line counts must agree; a line pair passes when equal as text, else when
    both lines are whitespace-separated tokens that all parse as ``Decimal`` and the two lists
    of Decimals are equal (exactly: ``1.0`` = ``1``, ``1e3`` = ``1000``, ``NaN`` never)."""
    got_lines, expected_lines = _stripped_lines(got), _stripped_lines(expected)
    if len(got_lines) != len(expected_lines):
        return False
    for got_line, expected_line in zip(got_lines, expected_lines):
        if got_line == expected_line:
            continue
        got_numbers, expected_numbers = _decimals(got_line), _decimals(expected_line)
        if got_numbers is None or expected_numbers is None:
            return False
        try:
            if not got_numbers == expected_numbers:
                return False
        except decimal.InvalidOperation:  # a signalling NaN: the official run errors out
            return False
    return True


def official_return_matches(got: object, expected: str) -> bool:
    """Official call-test rule: the returned value (``got``, encoded in the child) with a
    top-level tuple made a list, ``==`` the JSON-decoded expected text, as Python compares
    (``True == 1``, ``2.0 == 2``, ``(1, 2) != [1, 2]`` when nested, no float tolerance).
    Values that did not cross the sandbox as plain data (objects of other classes, ints past
    the encoding's digit cap) never match: their own ``__eq__`` is not run outside the
    sandbox. Raises ``ValueError`` when ``expected`` is not JSON."""
    expected_value = json.loads(expected)
    if holds_marker(got):
        return False
    value = decode_value(got)
    if isinstance(value, tuple):
        value = list(value)
    return bool(value == expected_value)


# ============================================================ alignment answers, improved

_FLOAT_WORDS = {"nan": "nan", "-inf": "-inf", "-infinity": "-inf"} | {
    w: "inf" for w in ("inf", "+inf", "infinity", "+infinity")
}
_WHITESPACE = re.compile(r"\s+")


def answer_value_matches(predicted: object, expected_encoded: object) -> bool:
    """Improved alignment rule: a predicted JSON value against an encoded label. In order,
    recursively inside containers:

    1. Same type and ``==`` (a ``bool`` is never a number: ``1`` does not equal ``True``).
    2. Numbers (not ``bool``): two ints exactly, else within ``1e-9`` absolutely or
       relatively (``3`` equals ``3.0``); ``nan``/``inf``/``-inf`` equal themselves and the
       strings ``"nan"``, ``"inf"``, ``"infinity"``, ``"-inf"``, ``"-infinity"`` (any case,
       stripped), as strict JSON cannot write them.
    3. ``True``/``False`` and ``"true"``/``"false"``; 4. ``None`` and ``"null"``/``"None"``
       (any case, stripped, either direction).
    5. Strings: equal after stripping both.
    6. Lists and tuples: a JSON list of the same length matching in order.
    7. Sets: a JSON list matched one to one in any order (a bipartite matching, so ``1`` and
       ``1.0`` cannot both claim one item).
    8. Dicts: as many keys; ``str`` keys as themselves (stripped), others as their JSON text
       (``1`` -> ``"1"``, ``(1, 2)`` -> ``"[1,2]"``) or Python repr (``"(1, 2)"``), whitespace
       removed; values recursively.
    9. A truncated (``__bigint__``) or unrepresentable label never matches.

    No other coercion: ``"3"`` does not equal ``3``, and a dict does not equal a list.
    """
    try:
        expected = decode_label(expected_encoded)
    except ValueError:
        return False
    return _matches(predicted, expected)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _as_float_word(value: object) -> str | None:
    if isinstance(value, str):
        return _FLOAT_WORDS.get(value.strip().lower())
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return None


def _numbers_equal(a: int | float, b: int | float) -> bool:
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    try:
        return math.isclose(float(a), float(b), rel_tol=FLOAT_TOLERANCE, abs_tol=FLOAT_TOLERANCE)
    except OverflowError:  # an int too large for a float cannot be within 1e-9 of one
        return False


def _bool_like(a: object, b: object) -> bool:
    """Rule 3 in either direction: ``b`` is a bool and ``a`` the matching word."""
    return isinstance(b, bool) and isinstance(a, str) and a.strip().lower() == str(b).lower()


def _none_like(a: object, b: object) -> bool:
    """Rule 4 in either direction: ``b`` is None and ``a`` is "null"/"None"."""
    return b is None and isinstance(a, str) and a.strip().lower() in ("null", "none")


def _matches(predicted: object, expected: object) -> bool:
    if isinstance(expected, (TruncatedInt, Unrepresentable)):
        return False
    if type(predicted) is type(expected) and isinstance(expected, (bool, int, str)):
        if predicted == expected:  # rule 1; containers and floats take their own rules
            return True
    if _bool_like(predicted, expected) or _bool_like(expected, predicted):
        return True
    if _none_like(predicted, expected) or _none_like(expected, predicted):
        return True
    if isinstance(expected, bool) or isinstance(predicted, bool):
        return predicted is expected
    if expected is None or predicted is None:
        return predicted is expected
    expected_word, predicted_word = _as_float_word(expected), _as_float_word(predicted)
    if isinstance(expected, float) and expected_word is not None:
        return predicted_word == expected_word
    if isinstance(predicted, float) and predicted_word is not None:
        return expected_word == predicted_word
    if _is_number(expected) or _is_number(predicted):
        return (
            _is_number(expected) and _is_number(predicted) and _numbers_equal(predicted, expected)
        )
    if isinstance(expected, str):
        return isinstance(predicted, str) and predicted.strip() == expected.strip()
    if isinstance(expected, (list, tuple)):
        return (
            isinstance(predicted, list)
            and len(predicted) == len(expected)
            and all(_matches(p, e) for p, e in zip(predicted, expected))
        )
    if isinstance(expected, frozenset):
        return isinstance(predicted, list) and _match_unordered(predicted, list(expected))
    if isinstance(expected, dict):
        return isinstance(predicted, dict) and _dicts_match(predicted, expected)
    return False


def _match_unordered(predicted: list, expected: list) -> bool:
    """Perfect one-to-one matching between the items (Kuhn's augmenting paths)."""
    if len(predicted) != len(expected):
        return False
    edges = [[j for j, p in enumerate(predicted) if _matches(p, e)] for e in expected]
    owner: dict[int, int] = {}  # predicted index -> expected index

    def augment(i: int, visited: set[int]) -> bool:
        for j in edges[i]:
            if j not in visited:
                visited.add(j)
                if j not in owner or augment(owner[j], visited):
                    owner[j] = i
                    return True
        return False

    return all(augment(i, set()) for i in range(len(expected)))


def _key_spellings(key: object) -> set[str]:
    """Accepted spellings of a non-``str`` expected key, whitespace removed."""
    spellings = {_WHITESPACE.sub("", plain_key(key))}
    if not isinstance(key, (TruncatedInt, Unrepresentable)):
        spellings.add(_WHITESPACE.sub("", repr(key)))
    return spellings


def _dicts_match(predicted: dict, expected: dict) -> bool:
    if len(predicted) != len(expected):
        return False
    used: set[str] = set()
    for key, value in expected.items():
        if isinstance(key, str):
            found = [k for k in predicted if k.strip() == key.strip() and k not in used]
        else:
            spellings = _key_spellings(key)
            found = [k for k in predicted if _WHITESPACE.sub("", k) in spellings and k not in used]
        if not found or not _matches(predicted[found[0]], value):
            return False
        used.add(found[0])
    return True


def answer_stdout_matches(predicted: object, expected_stdout: str) -> bool:
    """Improved alignment rule for a predicted ``final_output`` against a program's stdout:
    strings compare after ``normalize_stdout``, a JSON number through its ``str`` (what
    ``print`` shows); any other JSON value (list, object, bool, null) never matches."""
    if _is_number(predicted):
        predicted = str(predicted)
    if not isinstance(predicted, str):
        return False
    return normalize_stdout(predicted) == normalize_stdout(expected_stdout)


# ============================================================ alignment answers, official

_NONE_WORDS = frozenset({"None", "none", "null", "Null", "NULL"})
_TRUE_WORDS = frozenset({"True", "true", "TRUE", "1"})
_FALSE_WORDS = frozenset({"False", "false", "FALSE", "0"})
# The official reward process raises CPython's int<->str digit limit to this (LiveCodeBench's
# compute_code_generation_metrics does it on import); json.loads and str() obey it there.
OFFICIAL_INT_DIGITS = 50_000


def _official_str(value: object) -> str:
    """``str(value)`` under the official digit limit (this process's own limit may be lower)."""
    try:
        return str(value)
    except ValueError:  # an int past this process's limit, perhaps inside a container
        return _spelled(value)


def _spelled(value: object) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(map(_spelled, value)) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_spelled(k)}: {_spelled(v)}" for k, v in value.items()) + "}"
    if isinstance(value, int) and not isinstance(value, bool):
        text = str(decimal.Decimal(value))  # no digit limit on this path
        if len(text.lstrip("-")) > OFFICIAL_INT_DIGITS:
            raise ValueError(f"Exceeds the limit ({OFFICIAL_INT_DIGITS} digits) for an int")
        return text
    return repr(value)


def check_value_equality(predicted: object, expected: object) -> bool:
    """The official alignment comparator, rule by rule: (1) Python ``==`` (``1 == True``,
    ``1.0 == 1``, ``[1] == [True]``); (2) with ``p, e = str(predicted).strip(),
    str(expected).strip()``: both in ``{None, none, null, Null, NULL}``, both in
    ``{True, true, TRUE, 1}`` or both in ``{False, false, FALSE, 0}``; (3) unless a side is a
    ``bool``, ``float()`` of both raw values (numeric strings parse; lists, dicts, ``None``
    and other strings skip this step) within an absolute ``1e-9`` (ints go through float;
    ``nan``/``inf`` never pass here); (4) two lists: same length, items equal in order by
    these rules, and that result stands; (5) two dicts: the same keys, values equal by these
    rules, and that result stands; (6) otherwise ``p == e`` (``6`` equals ``"6"``, ``"[1, 2]"``
    equals ``[1, 2]``). It raises where the official code raises (``float`` of an int too
    large for a float: ``OverflowError``); the official reward makes any exception a 0.
    """
    if predicted == expected:
        return True
    p, e = _official_str(predicted).strip(), _official_str(expected).strip()
    for words in (_NONE_WORDS, _TRUE_WORDS, _FALSE_WORDS):
        if p in words and e in words:
            return True
    try:
        p_number = None if isinstance(predicted, bool) else float(predicted)
        e_number = None if isinstance(expected, bool) else float(expected)
    except (ValueError, TypeError):
        pass
    else:
        if p_number is not None and e_number is not None and abs(p_number - e_number) < 1e-9:
            return True
    if isinstance(predicted, list) and isinstance(expected, list):
        if len(predicted) != len(expected):
            return False
        return all(check_value_equality(a, b) for a, b in zip(predicted, expected))
    if isinstance(predicted, dict) and isinstance(expected, dict):
        if set(predicted) != set(expected):
            return False
        return all(check_value_equality(predicted[k], expected[k]) for k in predicted)
    return p == e

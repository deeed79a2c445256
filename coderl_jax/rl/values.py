"""Runtime values for the alignment task: decoding, rendering for prompts, and equality.

Labels of an alignment task (traced variable values, call-based return values) arrive in the
value encoding of :mod:`coderl_jax.execution.spec` (plain JSON plus tagged objects for
tuples, sets, non-``str``-key dicts, non-finite floats, truncated ints and unrepresentable
values). The model answers in plain JSON. This module connects the two:

* :func:`decode_label` turns an encoded value into Python objects (unlike
  ``execution.encoding.decode_value``, sets become hashable ``frozenset`` and truncated or
  unrepresentable values become marker objects that never equal anything).
* :func:`to_prompt_literal` renders an encoded value as the JSON text the model should write,
  so labels and the answer format stated in the prompt agree.
* :func:`values_equal` judges a predicted (JSON-parsed) value against an encoded label.
* :func:`stdout_equal` judges a predicted ``final_output`` against a program's stdout.
* :func:`is_askable` says whether a label may be asked at all.

Equality rules of :func:`values_equal` (``predicted`` is what ``json.loads`` produced from
the model's answer; ``expected`` is the decoded label). Applied recursively inside
containers, in this order:

1. Exact: same type and ``==`` (``bool`` is never treated as a number: ``1`` does not
   equal ``True``).
2. Numbers (``int``/``float``, not ``bool``): two ints must be equal exactly (ints are
   arbitrary precision); otherwise equal when within ``1e-9`` absolutely or relatively
   (``math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)``), so ``3`` equals ``3.0``.
   Non-finite floats: ``nan`` equals ``nan`` (a traced ``nan`` is a value, not an unknown);
   ``inf``/``-inf`` equal themselves. The strings ``"nan"``, ``"inf"``, ``"infinity"``,
   ``"-inf"``, ``"-infinity"`` (any case, stripped) stand for these floats, since strict
   JSON cannot write them.
3. Booleans and the strings ``"true"``/``"false"`` (any case, stripped) are equal, in
   either direction.
4. ``None`` and the strings ``"null"``/``"None"`` (any case, stripped) are equal, in either
   direction.
5. Strings: equal after stripping leading and trailing whitespace on both sides.
6. Lists and tuples: the prediction is a JSON list with the same length whose items match
   in order (tuples are written as lists).
7. Sets: the prediction is a JSON list with as many items as the set, matched
   order-insensitively one to one (a bipartite matching under these rules, so fuzzy
   matches such as ``1`` vs ``1.0`` cannot be double-counted).
8. Dicts: the prediction is a JSON object with as many keys; each expected key is written
   as a string: ``str`` keys as themselves (compared stripped), other keys as their JSON
   text (``1`` -> ``"1"``, ``True`` -> ``"true"``, ``(1, 2)`` -> ``"[1,2]"``) or their Python
   repr (``"True"``, ``"(1, 2)"``), compared with all whitespace removed. Values match
   recursively.
9. A label that the encoding truncated (``__bigint__``) or could not represent never
   matches (such labels are not asked; see :func:`is_askable`).

No other coercion happens: ``"3"`` does not equal ``3``, and a dict does not equal a list.

:func:`stdout_equal` (for ``final_output`` of stdin programs) normalises both texts the way
the test runner does: ``\\r\\n`` and ``\\r`` become ``\\n``, trailing whitespace is removed
from every line, and trailing blank lines are dropped. A prediction written as a JSON number
is compared through its Python ``str`` (what ``print`` shows).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from typing import Any

from coderl_jax.execution.spec import (
    TAG_BIGINT,
    TAG_DICT,
    TAG_FLOAT,
    TAG_SET,
    TAG_TUPLE,
    TAG_UNREPRESENTABLE,
)

NUMBER_TOLERANCE = 1e-9

_TAG_KEYSETS = {
    frozenset({TAG_FLOAT}): TAG_FLOAT,
    frozenset({TAG_TUPLE}): TAG_TUPLE,
    frozenset({TAG_SET}): TAG_SET,
    frozenset({TAG_DICT}): TAG_DICT,
    frozenset({TAG_BIGINT, "digits"}): TAG_BIGINT,
    frozenset({TAG_UNREPRESENTABLE, "reason"}): TAG_UNREPRESENTABLE,
}
_NONFINITE_FLOATS = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}
_FLOAT_WORDS = {
    "nan": "nan",
    "inf": "inf",
    "+inf": "inf",
    "infinity": "inf",
    "+infinity": "inf",
    "-inf": "-inf",
    "-infinity": "-inf",
}
_WHITESPACE = re.compile(r"\s+")


@dataclasses.dataclass(frozen=True)
class TruncatedInt:
    """An int the encoding cut to its first digits (``{"__bigint__": ..., "digits": n}``)."""

    prefix: str
    digits: int


@dataclasses.dataclass(frozen=True)
class Unrepresentable:
    """A value the encoding could not carry (``{"__unrepresentable__": type, "reason": ...}``)."""

    type_name: str
    reason: str


def _tag_of(value: Any) -> str | None:
    if isinstance(value, dict):
        return _TAG_KEYSETS.get(frozenset(value))
    return None


def decode_label(encoded: Any) -> Any:
    """Decodes a value-encoded JSON object into Python values.

    Tuples become ``tuple``, sets ``frozenset`` (hashable, so they can sit inside sets and
    dict keys), ``__dict__`` objects ``dict`` with decoded keys, non-finite floats ``float``;
    truncated ints and unrepresentable values become :class:`TruncatedInt` /
    :class:`Unrepresentable`. Raises ``ValueError`` on malformed tagged objects.
    """
    tag = _tag_of(encoded)
    if tag == TAG_FLOAT:
        word = encoded[TAG_FLOAT]
        if word not in _NONFINITE_FLOATS:
            raise ValueError(
                f"{TAG_FLOAT} must be one of {sorted(_NONFINITE_FLOATS)}, got {word!r}"
            )
        return _NONFINITE_FLOATS[word]
    if tag == TAG_TUPLE:
        return tuple(decode_label(item) for item in _list_field(encoded, TAG_TUPLE))
    if tag == TAG_SET:
        try:
            return frozenset(decode_label(item) for item in _list_field(encoded, TAG_SET))
        except TypeError as e:
            raise ValueError(f"{TAG_SET} item is not hashable: {e}") from e
    if tag == TAG_DICT:
        decoded = {}
        for pair in _list_field(encoded, TAG_DICT):
            if not (isinstance(pair, list) and len(pair) == 2):
                raise ValueError(f"{TAG_DICT} items must be [key, value] pairs, got {pair!r}")
            key = decode_label(pair[0])
            try:
                decoded[key] = decode_label(pair[1])
            except TypeError as e:
                raise ValueError(f"{TAG_DICT} key is not hashable: {e}") from e
        return decoded
    if tag == TAG_BIGINT:
        return TruncatedInt(str(encoded[TAG_BIGINT]), int(encoded["digits"]))
    if tag == TAG_UNREPRESENTABLE:
        return Unrepresentable(str(encoded[TAG_UNREPRESENTABLE]), str(encoded["reason"]))
    if isinstance(encoded, list):
        return [decode_label(item) for item in encoded]
    if isinstance(encoded, dict):
        return {key: decode_label(value) for key, value in encoded.items()}
    if encoded is None or isinstance(encoded, (bool, int, float, str)):
        return encoded
    raise ValueError(f"not a JSON value: {type(encoded).__name__}")


def _list_field(encoded: dict, tag: str) -> list:
    items = encoded[tag]
    if not isinstance(items, list):
        raise ValueError(f"{tag} must hold a JSON list, got {type(items).__name__}")
    return items


# ---------------------------------------------------------------------------- rendering


def _plain(decoded: Any) -> Any:
    """Decoded value -> the plain JSON value the model is asked to write."""
    if isinstance(decoded, (TruncatedInt, Unrepresentable)):
        raise ValueError(f"cannot render {decoded!r} for a prompt: it is never asked")
    if isinstance(decoded, float) and not math.isfinite(decoded):
        return "nan" if math.isnan(decoded) else ("inf" if decoded > 0 else "-inf")
    if isinstance(decoded, (list, tuple)):
        return [_plain(item) for item in decoded]
    if isinstance(decoded, frozenset):
        # Sorted by canonical JSON text so the rendering is deterministic.
        return sorted((_plain(item) for item in decoded), key=_canonical_text)
    if isinstance(decoded, dict):
        return {_key_text(key): _plain(value) for key, value in decoded.items()}
    return decoded


def _canonical_text(plain: Any) -> str:
    return json.dumps(plain, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _key_text(key: Any) -> str:
    if isinstance(key, str):
        return key
    plain = _plain(key)
    return plain if isinstance(plain, str) else _canonical_text(plain)


def to_prompt_literal(encoded: Any) -> str:
    """Renders an encoded value as the strict JSON text the model should write.

    Tuples and sets become lists (sets sorted by canonical JSON text), non-``str`` dict
    keys become their compact JSON text, non-finite floats the strings ``"nan"``, ``"inf"``,
    ``"-inf"``. ``values_equal(json.loads(to_prompt_literal(v)), v)`` holds for every value
    :func:`is_askable` accepts. Raises ``ValueError`` for truncated/unrepresentable values.
    """
    return json.dumps(_plain(decode_label(encoded)), ensure_ascii=False)


def is_askable(encoded: Any, max_chars: int) -> bool:
    """Whether a label can be asked: it decodes, holds nothing truncated or unrepresentable,
    its prompt literal has at most ``max_chars`` characters, and that literal is judged equal
    to the label (rules out e.g. dicts whose keys ``1`` and ``"1"`` collide as strings)."""
    try:
        literal = to_prompt_literal(encoded)
    except (ValueError, RecursionError):
        return False
    return len(literal) <= max_chars and values_equal(json.loads(literal), encoded)


# ----------------------------------------------------------------------------- equality


def values_equal(predicted: Any, expected_encoded: Any) -> bool:
    """Whether a predicted JSON value equals an encoded label; rules in the module docstring.

    Args:
      predicted: a value as ``json.loads`` returns it (the model's answer).
      expected_encoded: the label in the value encoding of ``coderl_jax.execution.spec``.
    """
    try:
        expected = decode_label(expected_encoded)
    except ValueError:
        return False
    return _matches(predicted, expected)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _as_float_word(value: Any) -> str | None:
    if isinstance(value, str):
        return _FLOAT_WORDS.get(value.strip().lower())
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return None


def _numbers_equal(a: int | float, b: int | float) -> bool:
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    try:
        return math.isclose(float(a), float(b), rel_tol=NUMBER_TOLERANCE, abs_tol=NUMBER_TOLERANCE)
    except OverflowError:  # an int too large for a float cannot be within 1e-9 of one
        return False


def _bool_like(a: Any, b: Any) -> bool:
    """Rule 3 in either direction: ``b`` is a bool and ``a`` the matching word."""
    return isinstance(b, bool) and isinstance(a, str) and a.strip().lower() == str(b).lower()


def _none_like(a: Any, b: Any) -> bool:
    """Rule 4 in either direction: ``b`` is None and ``a`` is "null"/"None"."""
    return b is None and isinstance(a, str) and a.strip().lower() in ("null", "none")


def _matches(predicted: Any, expected: Any) -> bool:
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


def _key_spellings(key: Any) -> set[str]:
    """Accepted spellings of a non-``str`` expected key, whitespace removed."""
    spellings = {_WHITESPACE.sub("", _key_text(key))}
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


def normalize_stdout(text: str) -> str:
    """Line endings -> ``\\n``, trailing whitespace of each line and trailing blank lines
    removed (the same normalisation the stdio test runner applies)."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(line.rstrip() for line in lines).rstrip("\n")


def stdout_equal(predicted: Any, expected_stdout: str) -> bool:
    """Whether a predicted ``final_output`` equals a program's stdout (see module docstring).

    Strings are compared after :func:`normalize_stdout`; a JSON number is compared through
    its ``str``; any other JSON value (list, object, bool, null) never matches.
    """
    if _is_number(predicted):
        predicted = str(predicted)
    if not isinstance(predicted, str):
        return False
    return normalize_stdout(predicted) == normalize_stdout(expected_stdout)

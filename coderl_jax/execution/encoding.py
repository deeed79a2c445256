"""Runtime values -> the JSON value encoding of ``spec.py``, and back.

``encode_value`` runs inside the sandbox child on values the program produced, so it must
never crash, hang or run program code: it dispatches on the *base* builtin type and reads
containers through the base-class methods (``list.__iter__``, ``dict.items``...), so a
subclass overriding ``__iter__``/``__eq__``/``__repr__`` is read as its plain contents and
an object of any other class is only named, never touched. Caps (all in ``EncodeCaps``):
nesting depth, items per container, characters per string, digits per int, and a total
node budget for the whole value; exceeding one yields an ``__unrepresentable__`` marker
for that part (the total budget marks the whole value). Self-references are detected on
the current path; shared non-cyclic references are encoded each time they occur.

``decode_value`` turns an encoded value back into plain Python builtins (tuples, sets,
non-str-key dicts, non-finite floats); bigints and unrepresentable markers stay as their
tagged dicts. ``canonical_json`` is the text used to order set items.

Alignment labels (traced variables, return values) are read with ``decode_label`` instead:
sets become hashable ``frozenset``, and truncated or unrepresentable values become marker
objects (``TruncatedInt``, ``Unrepresentable``) that never equal anything; malformed tagged
objects raise. ``plain_json`` renders a decoded label as the plain JSON value a model is asked
to write (tuples and sets as lists, non-``str`` keys as their compact JSON text, non-finite
floats as ``"nan"``/``"inf"``/``"-inf"``).
"""

from __future__ import annotations

import dataclasses
import json
import math

from .spec import (
    TAG_BIGINT,
    TAG_DICT,
    TAG_FLOAT,
    TAG_SET,
    TAG_TUPLE,
    TAG_UNREPRESENTABLE,
)

_LOG10_2 = math.log10(2)


@dataclasses.dataclass(frozen=True)
class EncodeCaps:
    """Size and depth caps of ``encode_value`` (see the module docstring)."""

    max_depth: int = 16
    max_items: int = 1000
    max_str_chars: int = 10_000
    # Below CPython's int->str conversion limit (4300 digits) so every encoded int also
    # parses back with ``json.loads``.
    max_int_digits: int = 4000
    max_nodes: int = 20_000


DEFAULT_CAPS = EncodeCaps()


class _BudgetExceeded(Exception):
    pass


def _type_name(value: object) -> str:
    # Read the name through ``type``'s own descriptor: a metaclass cannot hook it.
    return type.__dict__["__name__"].__get__(type(value), type)


def unrepresentable(type_name: str, reason: str) -> dict:
    return {TAG_UNREPRESENTABLE: type_name, "reason": reason}


def _encode_int(value: int, caps: EncodeCaps) -> object:
    bits = int.bit_length(value)
    # Decimal digits <= ceil(bits * log10(2)); cheap test before any conversion.
    if bits * _LOG10_2 < caps.max_int_digits - 1:
        return int.__int__(value)
    magnitude = -value if value < 0 else value
    shift = max(bits - 64, 0)
    log10_value = math.log10(magnitude >> shift) + shift * _LOG10_2
    digits = int(log10_value) + 1
    if digits <= caps.max_int_digits:
        return int.__int__(value)
    # 10 leading digits from the logarithm: float precision keeps ~11 of them exact.
    leading = f"{10 ** (log10_value - int(log10_value) + 9):.0f}"[:10]
    sign = "-" if value < 0 else ""
    return {TAG_BIGINT: f"{sign}{leading}...", "digits": digits}


def encode_value(value: object, caps: EncodeCaps = DEFAULT_CAPS) -> object:
    """Encodes ``value`` with the value encoding of ``spec.py``. Never raises."""
    budget = [caps.max_nodes]
    on_path: set[int] = set()

    def enc(v: object, depth: int) -> object:
        budget[0] -= 1
        if budget[0] < 0:
            raise _BudgetExceeded
        if v is None or v is True or v is False:
            return v
        # ``type(v)``, not ``isinstance``: the latter trusts a forgeable ``__class__``.
        t = type(v)
        if issubclass(t, int):
            return _encode_int(v, caps)
        if issubclass(t, float):
            f = float.__float__(v)
            if math.isfinite(f):
                return f
            return {TAG_FLOAT: "nan" if math.isnan(f) else ("inf" if f > 0 else "-inf")}
        if issubclass(t, str):
            if str.__len__(v) > caps.max_str_chars:
                return unrepresentable("str", f"{str.__len__(v)} chars > {caps.max_str_chars}")
            return str.__str__(v)
        if issubclass(t, (list, tuple, dict, set, frozenset)):
            return enc_container(v, depth)
        return unrepresentable(_type_name(v), "not a plain value")

    def enc_container(v: object, depth: int) -> object:
        name = _type_name(v)
        if depth >= caps.max_depth:
            return unrepresentable(name, f"nested deeper than {caps.max_depth}")
        if id(v) in on_path:
            return unrepresentable(name, "self-reference")
        base = next(b for b in (list, tuple, dict, set, frozenset) if issubclass(type(v), b))
        size = base.__len__(v)
        if size > caps.max_items:
            return unrepresentable(name, f"{size} items > {caps.max_items}")
        on_path.add(id(v))
        try:
            if base is dict:
                pairs = [(k, enc(item, depth + 1)) for k, item in dict.items(v)]
                if all(type(k) is str for k, _ in pairs):
                    return dict(pairs)
                return {TAG_DICT: [[enc(k, depth + 1), item] for k, item in pairs]}
            items = [enc(item, depth + 1) for item in base.__iter__(v)]
            if base is list:
                return items
            if base is tuple:
                return {TAG_TUPLE: items}
            return {TAG_SET: sorted(items, key=canonical_json)}
        finally:
            on_path.discard(id(v))

    try:
        return enc(value, 0)
    except _BudgetExceeded:
        return unrepresentable(_type_name(value), f"more than {caps.max_nodes} nodes")
    except RecursionError:
        return unrepresentable(_type_name(value), "recursion limit while encoding")
    except Exception as e:  # a value mutated under us (e.g. by a thread); never crash
        return unrepresentable(_type_name(value), f"encoding failed: {type(e).__name__}")


def canonical_json(encoded: object) -> str:
    """Deterministic JSON text of an encoded value (sorted keys, no spaces)."""
    return json.dumps(encoded, sort_keys=True, separators=(",", ":"), allow_nan=False)


def holds_marker(encoded: object) -> bool:
    """Whether an encoded value holds a truncated int or an unrepresentable part anywhere."""
    if isinstance(encoded, dict):
        if TAG_UNREPRESENTABLE in encoded or TAG_BIGINT in encoded:
            return True
        return any(holds_marker(v) for v in encoded.values())
    if isinstance(encoded, list):
        return any(holds_marker(v) for v in encoded)
    return False


def decode_value(encoded: object) -> object:
    """Encoded value -> plain Python value (inverse of ``encode_value`` where possible)."""
    if isinstance(encoded, list):
        return [decode_value(x) for x in encoded]
    if not isinstance(encoded, dict):
        return encoded
    if len(encoded) == 1:
        ((tag, payload),) = encoded.items()
        if tag == TAG_FLOAT:
            return float(payload)
        if tag == TAG_TUPLE:
            return tuple(decode_value(x) for x in payload)
        if tag == TAG_SET:
            items = [decode_value(x) for x in payload]
            try:
                return set(items)
            except TypeError:
                return items
        if tag == TAG_DICT:
            out = {}
            for key, item in payload:
                key = decode_value(key)
                try:
                    out[key] = decode_value(item)
                except TypeError:
                    return encoded
            return out
    if TAG_BIGINT in encoded or TAG_UNREPRESENTABLE in encoded:
        return encoded
    return {k: decode_value(v) for k, v in encoded.items()}


# ------------------------------------------------------------------------ alignment labels


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


_TAG_KEYSETS = {
    frozenset({TAG_FLOAT}): TAG_FLOAT,
    frozenset({TAG_TUPLE}): TAG_TUPLE,
    frozenset({TAG_SET}): TAG_SET,
    frozenset({TAG_DICT}): TAG_DICT,
    frozenset({TAG_BIGINT, "digits"}): TAG_BIGINT,
    frozenset({TAG_UNREPRESENTABLE, "reason"}): TAG_UNREPRESENTABLE,
}
_NONFINITE_FLOATS = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def _label_tag(value: object) -> str | None:
    if isinstance(value, dict):
        return _TAG_KEYSETS.get(frozenset(value))
    return None


def _list_field(encoded: dict, tag: str) -> list:
    items = encoded[tag]
    if not isinstance(items, list):
        raise ValueError(f"{tag} must hold a JSON list, got {type(items).__name__}")
    return items


def decode_label(encoded: object) -> object:
    """Decodes an encoded alignment label into Python values.

    Tuples become ``tuple``, sets ``frozenset`` (hashable, so they can sit inside sets and
    dict keys), ``__dict__`` objects ``dict`` with decoded keys, non-finite floats ``float``;
    truncated ints and unrepresentable values become :class:`TruncatedInt` /
    :class:`Unrepresentable`. Raises ``ValueError`` on malformed tagged objects.
    """
    tag = _label_tag(encoded)
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


def plain_json(decoded: object) -> object:
    """A decoded label -> the plain JSON value a model is asked to write (module docstring).

    Raises ``ValueError`` for truncated or unrepresentable parts: such labels are never asked.
    """
    if isinstance(decoded, (TruncatedInt, Unrepresentable)):
        raise ValueError(f"cannot render {decoded!r} for a prompt: it is never asked")
    if isinstance(decoded, float) and not math.isfinite(decoded):
        return "nan" if math.isnan(decoded) else ("inf" if decoded > 0 else "-inf")
    if isinstance(decoded, (list, tuple)):
        return [plain_json(item) for item in decoded]
    if isinstance(decoded, frozenset):
        # Sorted by canonical JSON text so the rendering is deterministic.
        return sorted((plain_json(item) for item in decoded), key=plain_json_text)
    if isinstance(decoded, dict):
        return {plain_key(key): plain_json(value) for key, value in decoded.items()}
    return decoded


def plain_json_text(plain: object) -> str:
    """Compact, key-sorted JSON text of a plain JSON value (non-ASCII kept)."""
    return json.dumps(plain, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def plain_key(key: object) -> str:
    """How a decoded dict key is written in JSON: a ``str`` as itself, any other key as the
    compact JSON text of its plain value (``1`` -> ``"1"``, ``(0, 1)`` -> ``"[0,1]"``)."""
    if isinstance(key, str):
        return key
    plain = plain_json(key)
    return plain if isinstance(plain, str) else plain_json_text(plain)

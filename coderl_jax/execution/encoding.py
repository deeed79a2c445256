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

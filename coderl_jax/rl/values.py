"""Alignment labels as the model is asked to write them, and which labels may be asked.

Labels of an alignment task (traced variable values, call-based return values) arrive in the
value encoding of :mod:`coderl_jax.execution.spec`; the model answers in plain JSON.

* :func:`to_prompt_literal` renders an encoded label as the JSON text the model should write,
  so labels and the answer format stated in the prompt agree.
* :func:`is_askable` says whether a label may be asked at all.

How an answer is judged against a label lives with every other comparison, in
:mod:`coderl_jax.execution.compare` (``answer_value_matches``, ``answer_stdout_matches``).
"""

from __future__ import annotations

import json
from typing import Any

from coderl_jax.execution.compare import answer_value_matches
from coderl_jax.execution.encoding import decode_label, plain_json


def to_prompt_literal(encoded: Any) -> str:
    """Renders an encoded value as the strict JSON text the model should write.

    Tuples and sets become lists (sets sorted by canonical JSON text), non-``str`` dict
    keys become their compact JSON text, non-finite floats the strings ``"nan"``, ``"inf"``,
    ``"-inf"``. ``answer_value_matches(json.loads(to_prompt_literal(v)), v)`` holds for every
    value :func:`is_askable` accepts. Raises ``ValueError`` for truncated/unrepresentable
    values.
    """
    return json.dumps(plain_json(decode_label(encoded)), ensure_ascii=False)


def is_askable(encoded: Any, max_chars: int) -> bool:
    """Whether a label can be asked: it decodes, holds nothing truncated or unrepresentable,
    its prompt literal has at most ``max_chars`` characters, and that literal is judged equal
    to the label (rules out e.g. dicts whose keys ``1`` and ``"1"`` collide as strings)."""
    try:
        literal = to_prompt_literal(encoded)
    except (ValueError, RecursionError):
        return False
    return len(literal) <= max_chars and answer_value_matches(json.loads(literal), encoded)

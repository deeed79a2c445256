"""Answers of code-reasoning tasks: find them in a completion, read them, judge them.

Our own parser, following LiveCodeBench's conventions for code execution and test-output
prediction: the model writes its answer between ``[ANSWER]`` and ``[/ANSWER]`` tags or in a
fenced code block, usually as the completed assertion ``assert f(x) == value``.

Finding the answer text (``find_answer``), after dropping ``<think>...</think>`` sections:

1. ``answer_tags``: the text after the last ``[ANSWER]``, up to the next ``[/ANSWER]`` (or the
   end); a fenced block inside the tags is unwrapped. Text on the tag's own line is
   left-stripped; an answer starting on the next line keeps its leading spaces (printed
   output may begin with them).
2. ``fenced_block``: otherwise the body of the last complete fenced block (any language tag).
3. ``assert_line``: otherwise the last line that starts with ``assert``.
4. ``no_answer``: none of these.

Reading it (``read_value``) for value answers (a function's return value): the right-hand
side of the last ``assert ... == <rhs>`` in the text, or else the whole text, read as a Python
literal (``ast.literal_eval``), or failing that as JSON (``true``, ``null``). Anything else is
``not_a_literal``. Stdout answers (what a program prints) are the answer text itself, or the
string on the right of an ``assert ... == "..."``.

Judging (``judge``) uses the value-equality rules of the alignment reward
(``coderl_jax.execution.compare``): the prediction is written as plain JSON (tuples and sets as lists)
and compared with the encoded label, so ``(1, 2)`` equals ``[1, 2]``, ``3`` equals ``3.0`` and
sets match in any order; stdout answers are compared after the test runner's normalisation.
An answer that cannot be found or read counts as wrong, with its reason; nothing raises.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import re
from typing import Any

from coderl_jax.data.reasoning import ReasoningItem
from coderl_jax.execution.compare import answer_stdout_matches, answer_value_matches
from coderl_jax.execution.encoding import EncodeCaps, encode_value
from coderl_jax.rl import values

ANSWER_SOURCES: tuple[str, ...] = ("answer_tags", "fenced_block", "assert_line", "no_answer")
# Verdicts of `judge`: the last three are wrong before any comparison (bad_label: the item's
# own expected output does not parse, a data problem).
VERDICTS: tuple[str, ...] = ("correct", "wrong", "no_answer", "not_a_literal", "bad_label")

OPEN_TAG, CLOSE_TAG = "[ANSWER]", "[/ANSWER]"
# Labels come from trusted data or our own sandbox runs: no need for the sandbox's caps.
_LABEL_CAPS = EncodeCaps(
    max_depth=100, max_items=10**6, max_str_chars=10**7, max_nodes=10**7, max_int_digits=4000
)
_THINK = re.compile(r"<think>.*?</think>", re.DOTALL)
_FENCE = re.compile(r"```[^\n`]*\n(.*?)```", re.DOTALL)


def _without_reasoning(text: str) -> str:
    text = _THINK.sub("", text.replace("\r\n", "\n"))
    return text.rsplit("</think>", 1)[-1]


def _trim(body: str) -> str:
    """Text after an ``[ANSWER]`` tag: the rest of the tag's line is dropped when blank (so
    leading spaces of printed output survive), else left-stripped; trailing whitespace goes."""
    head, newline, rest = body.partition("\n")
    body = rest if newline and not head.strip() else body.lstrip(" \t")
    return body.rstrip()


def find_answer(completion: str) -> tuple[str | None, str]:
    """``(answer text, source)`` with source one of ``ANSWER_SOURCES`` (module docstring)."""
    text = _without_reasoning(completion)
    if OPEN_TAG in text:
        body = text.rsplit(OPEN_TAG, 1)[1].split(CLOSE_TAG, 1)[0]
        fenced = _FENCE.findall(body)
        return (fenced[-1].rstrip() if fenced else _trim(body)), "answer_tags"
    fenced = [block for block in _FENCE.findall(text) if block.strip()]
    if fenced:
        return fenced[-1].rstrip(), "fenced_block"
    asserts = [line.strip() for line in text.split("\n") if line.strip().startswith("assert")]
    if asserts:
        return asserts[-1], "assert_line"
    return None, "no_answer"


def _asserted_value_node(text: str) -> tuple[ast.expr | None, str]:
    """The ``<rhs>`` node of the last ``assert <call> == <rhs>`` in ``text``."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None, text
    asserts = [node for node in tree.body if isinstance(node, ast.Assert)]
    if asserts:
        test = asserts[-1].test
        if isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq):
            return test.comparators[0], text
    return None, text


def parse_literal(text: str) -> Any:
    """A Python literal, or failing that a JSON value; raises ``ValueError`` otherwise."""
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        pass
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as e:
        raise ValueError(f"not a Python literal or JSON value: {text[:80]!r}") from e


def read_value(answer: str) -> Any:
    """The value an answer states (module docstring); ``ValueError`` when it states none."""
    node, text = _asserted_value_node(answer)
    if node is not None:
        segment = ast.get_source_segment(text, node)
        return parse_literal(segment if segment is not None else ast.unparse(node))
    return parse_literal(answer)


def read_stdout(answer: str) -> str:
    """The output text an answer states: an asserted string, or the text itself."""
    node, text = _asserted_value_node(answer)
    if node is not None:
        try:
            value = parse_literal(ast.get_source_segment(text, node) or "")
        except ValueError:
            return answer
        return value if isinstance(value, str) else str(value)
    return answer


def output_kind(item: ReasoningItem) -> str:
    """``"stdout"`` when the item asks for printed output (a stdin program or an stdin test),
    ``"value"`` when it asks for a return value."""
    if item.metadata.get("output_kind") == "stdout" or item.metadata.get("testtype") == "stdin":
        return "stdout"
    return "value"


def encoded_label(item: ReasoningItem) -> Any:
    """The item's expected value in the sandbox value encoding (value items only)."""
    return encode_value(parse_literal(item.expected_output), _LABEL_CAPS)


def _as_plain_json(value: Any) -> Any:
    """A predicted Python value as the plain JSON the equality rules expect."""
    return json.loads(values.to_prompt_literal(encode_value(value, _LABEL_CAPS)))


@dataclasses.dataclass(frozen=True)
class Judgement:
    """One completion judged: the answer text found, how (``source``), and the verdict."""

    answer: str | None
    source: str  # one of ANSWER_SOURCES
    verdict: str  # one of VERDICTS
    correct: bool


def judge(item: ReasoningItem, completion: str) -> Judgement:
    """Whether ``completion`` answers ``item`` correctly (rules in the module docstring)."""
    answer, source = find_answer(completion)
    if answer is None:
        return Judgement(None, source, "no_answer", False)
    if output_kind(item) == "stdout":
        ok = answer_stdout_matches(read_stdout(answer), item.expected_output)
        return Judgement(answer, source, "correct" if ok else "wrong", ok)
    try:
        predicted = _as_plain_json(read_value(answer))
    except ValueError:
        return Judgement(answer, source, "not_a_literal", False)
    try:
        label = encoded_label(item)
    except ValueError:
        return Judgement(answer, source, "bad_label", False)
    ok = answer_value_matches(predicted, label)
    return Judgement(answer, source, "correct" if ok else "wrong", ok)

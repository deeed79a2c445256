"""What a program is tested against, and how runtime values cross the sandbox boundary.

This module is the contract between the data side (problems, datasets, rewards) and the
execution side (sandbox, harness, tracer). It has no dependencies beyond the standard
library so the sandbox child can import it.

Test kinds (``TestSpec.kind``):

* ``"stdio"``: ``inputs[i]`` is fed on stdin, stdout must equal ``outputs[i]`` after
  normalising line endings and trailing whitespace on each line (and trailing blank lines);
  with ``float_tolerance`` set, whitespace-separated tokens that both parse as floats are
  compared within that absolute/relative tolerance.
* ``"call"``: the program defines ``fn_name`` at module level, or a ``class Solution`` with a
  method of that name (LeetCode style, called on a fresh ``Solution()``). ``inputs[i]`` holds
  the positional arguments as ``call_arguments`` says: ``"json_list"``, the JSON text of the
  argument list (this project's builders); ``"json_lines"``, one JSON value per line joined
  with ``\n`` (the official CodeRL+ rows, LiveCodeBench's format; not validated, as the
  official judge reads them as they are). ``outputs[i]`` is the JSON text of the expected
  return value. The return value is encoded with the value encoding below inside the child
  and compared outside it.
* ``"assert"``: HumanEval style. ``check_code`` defines ``check(candidate)`` which asserts;
  it is called with the program's ``entry_point`` function. There is one logical test.

``TestSpec.from_official`` reads the ground truth of an official training row (``{"inputs",
"outputs", "fn_name"?}``) exactly as the official judge does; a stdio or call spec may hold
no tests (the official judge passes such a program, the improved one fails it).

Value encoding (used for call-based return values and traced variables): plain JSON, with
tagged objects for what JSON cannot say, so equality can be judged outside the sandbox:

* ``None``/``bool``/``int``/``float``/``str``/``list``/``dict`` with ``str`` keys: as JSON.
  Non-finite floats: ``{"__float__": "nan" | "inf" | "-inf"}``.
* ``tuple``: ``{"__tuple__": [items]}``; ``set``/``frozenset``: ``{"__set__": [items]}`` with
  items sorted by their canonical JSON text; ``dict`` with any non-``str`` key:
  ``{"__dict__": [[key, value], ...]}`` in insertion order.
* Ints with more digits than the cap: ``{"__bigint__": "<first digits>...", "digits": n}``.
* Anything not representable (objects, functions, modules, containers nested past the depth
  cap, strings/containers past the size cap, self-references):
  ``{"__unrepresentable__": "<type name>", "reason": "<why>"}``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Literal

TestKind = Literal["stdio", "call", "assert"]
TEST_KINDS: tuple[str, ...] = ("stdio", "call", "assert")
CALL_ARGUMENTS: tuple[str, ...] = ("json_list", "json_lines")

# Keys of the tagged objects of the value encoding (see the module docstring).
TAG_FLOAT = "__float__"
TAG_TUPLE = "__tuple__"
TAG_SET = "__set__"
TAG_DICT = "__dict__"
TAG_BIGINT = "__bigint__"
TAG_UNREPRESENTABLE = "__unrepresentable__"


@dataclasses.dataclass(frozen=True)
class TestSpec:
    """The tests of one problem. See the module docstring for each kind's semantics."""

    __test__ = False  # not a pytest test class, despite the name

    kind: TestKind
    # stdio: stdin texts / expected stdout texts. call: JSON argument lists / JSON values.
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    # call: function (or ``Solution`` method) name.
    fn_name: str | None = None
    # assert: source defining ``check(candidate)``, and the function it is called with.
    check_code: str | None = None
    entry_point: str | None = None
    # stdio: compare float tokens within this tolerance (None: exact text comparison).
    float_tolerance: float | None = None
    # call: how inputs[i] holds the arguments, "json_list" or "json_lines" (module docstring).
    call_arguments: Literal["json_list", "json_lines"] = "json_list"
    # stdio from an official row with "fn_name": null: the official judge then looks for a
    # function named None to wrap, and fails a program whose text lacks "class Solution".
    null_fn_name: bool = False

    def __post_init__(self):
        if self.kind not in TEST_KINDS:
            raise ValueError(f"TestSpec.kind must be one of {TEST_KINDS}, got {self.kind!r}")
        if self.call_arguments not in CALL_ARGUMENTS:
            raise ValueError(
                f"TestSpec.call_arguments must be one of {CALL_ARGUMENTS}, "
                f"got {self.call_arguments!r}"
            )
        object.__setattr__(self, "inputs", tuple(self.inputs))
        object.__setattr__(self, "outputs", tuple(self.outputs))
        if self.kind in ("stdio", "call"):
            if len(self.inputs) != len(self.outputs):
                raise ValueError(
                    f"TestSpec({self.kind}): {len(self.inputs)} inputs but "
                    f"{len(self.outputs)} outputs"
                )
            if not all(isinstance(text, str) for text in self.inputs + self.outputs):
                raise ValueError(f"TestSpec({self.kind}): inputs and outputs must be str")
        if self.kind == "call":
            if not self.fn_name:
                raise ValueError("TestSpec(call) needs fn_name")
            if self.call_arguments == "json_lines":
                return
            for i, (args, expected) in enumerate(zip(self.inputs, self.outputs)):
                try:
                    decoded = json.loads(args)
                    json.loads(expected)
                except json.JSONDecodeError as e:
                    raise ValueError(f"TestSpec(call) test {i}: invalid JSON ({e})") from e
                if not isinstance(decoded, list):
                    raise ValueError(
                        f"TestSpec(call) test {i}: inputs must be a JSON list of arguments"
                    )
        if self.kind == "assert" and not (self.check_code and self.entry_point):
            raise ValueError("TestSpec(assert) needs check_code and entry_point")

    @property
    def num_tests(self) -> int:
        return 1 if self.kind == "assert" else len(self.inputs)

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> TestSpec:
        return cls(**d)

    @classmethod
    def from_official(cls, ground_truth: Mapping | str) -> TestSpec:
        """The ground truth of an official CodeRL+ training row (a dict or its JSON text),
        read as the official judge reads it: a ``fn_name`` key makes a call test whose
        inputs are newline-joined JSON arguments (``"json_lines"``), ``"fn_name": null``
        stdio with ``null_fn_name``, no key plain stdio; a stdio input given as a list of
        lines is joined with ``\n``; inputs and outputs are paired as ``zip`` pairs them.

        Raises ``OfficialRowFails`` for a row on which the official judge fails every
        program (no outputs list, an output or input that is not text, a ``fn_name`` that
        is not a non-empty string), ``ValueError`` for one that is no code row at all.
        """
        truth = json.loads(ground_truth) if isinstance(ground_truth, str) else ground_truth
        if not isinstance(truth, Mapping) or not isinstance(truth.get("inputs"), list):
            raise ValueError("an official code row's ground truth has an 'inputs' list")
        if not isinstance(truth.get("outputs"), list):
            raise OfficialRowFails("the row has no 'outputs' list")
        pairs = list(zip(truth["inputs"], truth["outputs"]))
        if not all(isinstance(output, str) for _, output in pairs):
            raise OfficialRowFails("an expected output is not text")
        outputs = [output for _, output in pairs]
        if "fn_name" not in truth or truth["fn_name"] is None:
            inputs = [_stdin_text(text) for text, _ in pairs]
            return cls("stdio", inputs, outputs, null_fn_name="fn_name" in truth)
        fn_name = truth["fn_name"]
        if not (isinstance(fn_name, str) and fn_name):
            raise OfficialRowFails(f"fn_name {fn_name!r} names no method")
        if not all(isinstance(text, str) for text, _ in pairs):
            raise OfficialRowFails("a call-based input is not text")
        inputs = [text for text, _ in pairs]
        return cls("call", inputs, outputs, fn_name=fn_name, call_arguments="json_lines")

    def arguments(self, i: int) -> list:
        """The JSON-decoded positional arguments of call test ``i`` (raises on bad JSON)."""
        return decode_arguments(self.inputs[i], self.call_arguments)


def _stdin_text(value: object) -> str:
    if isinstance(value, list) and all(isinstance(line, str) for line in value):
        return "\n".join(value)
    if not isinstance(value, str):
        raise OfficialRowFails("a stdio input is neither text nor a list of lines")
    return value


class OfficialRowFails(ValueError):
    """An official row on which the official judge fails every program (``from_official``)."""


def decode_arguments(text: str, call_arguments: str) -> list:
    """A call test's input text -> its JSON-decoded argument list (see the module docstring);
    raises ``ValueError`` (or ``json.JSONDecodeError``) on malformed text."""
    if call_arguments == "json_lines":
        return [json.loads(line) for line in text.split("\n")]
    arguments = json.loads(text)
    if not isinstance(arguments, list):
        raise ValueError("call inputs must be a JSON list of arguments")
    return arguments

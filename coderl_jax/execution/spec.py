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
  method of that name (LeetCode style, called on a fresh ``Solution()``). ``inputs[i]`` is the
  JSON text of the positional-argument list, ``outputs[i]`` the JSON text of the expected
  return value. The return value is encoded with the value encoding below inside the child
  and compared outside it.
* ``"assert"``: HumanEval style. ``check_code`` defines ``check(candidate)`` which asserts;
  it is called with the program's ``entry_point`` function. There is one logical test.

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
from typing import Literal

TestKind = Literal["stdio", "call", "assert"]
TEST_KINDS: tuple[str, ...] = ("stdio", "call", "assert")

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

    def __post_init__(self):
        if self.kind not in TEST_KINDS:
            raise ValueError(f"TestSpec.kind must be one of {TEST_KINDS}, got {self.kind!r}")
        object.__setattr__(self, "inputs", tuple(self.inputs))
        object.__setattr__(self, "outputs", tuple(self.outputs))
        if self.kind in ("stdio", "call"):
            if len(self.inputs) != len(self.outputs):
                raise ValueError(
                    f"TestSpec({self.kind}): {len(self.inputs)} inputs but "
                    f"{len(self.outputs)} outputs"
                )
            if not self.inputs:
                raise ValueError(f"TestSpec({self.kind}) needs at least one test")
        if self.kind == "call":
            if not self.fn_name:
                raise ValueError("TestSpec(call) needs fn_name")
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

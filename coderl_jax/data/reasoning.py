"""Code-reasoning records: predict what code does instead of writing it.

LiveCodeBench's *code execution* (program + input -> output) and *test output prediction*
(problem statement + test input -> expected output) benchmarks are not code-generation
``Problem``s: there is nothing to run, the answer is a value. A ``ReasoningItem`` holds one
such question:

* ``task == "code_execution"``: ``program`` is the code, ``input`` the call expression as the
  benchmark prints it in ``assert <input> == ??`` (e.g. ``"maxSum(nums = [1, 2])"``),
  ``expected_output`` the Python literal of the result.
* ``task == "test_output"``: ``statement`` is the problem text (``starter_code`` the
  signature to test, ``function_name`` its name), ``input`` the test input text and
  ``expected_output`` the output text the tested function must produce.

Grading compares the model's literal with ``expected_output`` (the evaluator's job).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

REASONING_TASKS: tuple[str, ...] = ("code_execution", "test_output")


@dataclasses.dataclass(frozen=True)
class ReasoningItem:
    """One code-reasoning question (see the module docstring for the two tasks).

    Attributes:
      id: unique within its dataset, e.g. ``"lcb_code_execution/sample_17"``.
      source: dataset name.
      task: one of ``REASONING_TASKS``.
      input: the call expression (code_execution) or the test input (test_output).
      expected_output: the answer, as text.
      program: the code whose output is asked (code_execution), else None.
      statement: the problem statement (test_output), else None.
      function_name: the function called, when known.
      starter_code: the tested signature (test_output), when given.
      metadata: JSON-serialisable extras (difficulty, contest date, ...).
    """

    id: str
    source: str
    task: str
    input: str
    expected_output: str
    program: str | None = None
    statement: str | None = None
    function_name: str | None = None
    starter_code: str | None = None
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        for name in ("id", "source"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name).strip():
                raise ValueError(f"ReasoningItem.{name} must be a non-empty string")
        if self.task not in REASONING_TASKS:
            raise ValueError(f"ReasoningItem.task must be one of {REASONING_TASKS}: {self.task!r}")
        for name in ("input", "expected_output"):
            if not isinstance(getattr(self, name), str):
                raise ValueError(f"ReasoningItem {self.id!r}: {name} must be a string")
        needed = "program" if self.task == "code_execution" else "statement"
        if not getattr(self, needed):
            raise ValueError(f"ReasoningItem {self.id!r} ({self.task}) needs {needed}")

    def to_json(self) -> dict[str, Any]:
        """A plain-JSON dict that ``from_json`` turns back into ``self``."""
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ReasoningItem:
        """Inverse of ``to_json``; raises naming unknown fields."""
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"ReasoningItem.from_json: unknown fields {sorted(unknown)}")
        return cls(**d)

    def to_json_str(self) -> str:
        """``to_json`` as compact JSON text (keys sorted)."""
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))

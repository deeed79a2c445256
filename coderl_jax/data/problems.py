"""The one problem type every dataset produces, and how a problem becomes a prompt.

A ``Problem`` is a coding task: a natural-language statement, optional starter code, the tests
a solution must pass (a ``TestSpec``, see ``coderl_jax.execution.spec``), an optional
reference solution (oracle checks, supervised warm start), the task family it was drawn from
(synthetic data) and free-form JSON metadata.

Prompts follow the CodeRL+ training data: one user message holding the statement (and the
starter code, fenced, when there is one) followed by the instruction
``DEFAULT_CODE_INSTRUCTION``, optionally preceded by a system message. ``render_prompt`` turns
the messages into text with the tokenizer's own chat template, ending with the assistant
turn's opening so the model continues with its answer.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Protocol

from coderl_jax.execution.spec import TestSpec

DEFAULT_CODE_INSTRUCTION = (
    "Write Python code to solve the problem. Present the code in ```python ...``` at the end."
)


@dataclasses.dataclass(frozen=True)
class Problem:
    """One coding problem.

    Attributes:
      id: unique within its dataset, e.g. ``"synthetic/train/000017"``.
      source: dataset name, e.g. ``"synthetic"``, ``"humaneval"``.
      statement: the task as shown to the model (no instruction appended).
      tests: what a solution is run against.
      starter_code: code the solution must complete (e.g. a signature), or None.
      reference_solution: a program that passes ``tests``, or None when unknown.
      family: the task family (synthetic data), or None.
      metadata: JSON-serialisable extras (generator parameters, difficulty, ...).
    """

    id: str
    source: str
    statement: str
    tests: TestSpec
    starter_code: str | None = None
    reference_solution: str | None = None
    family: str | None = None
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        for name in ("id", "source", "statement"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"Problem.{name} must be a non-empty string, got {value!r}")
        if not isinstance(self.tests, TestSpec):
            raise TypeError(
                f"Problem {self.id!r}: tests must be a TestSpec, got {type(self.tests).__name__}"
            )
        if not isinstance(self.metadata, dict):
            raise TypeError(
                f"Problem {self.id!r}: metadata must be a dict, got {type(self.metadata).__name__}"
            )

    def to_json(self) -> dict[str, Any]:
        """A plain-JSON dict (``json.dumps``-able) that ``from_json`` turns back into ``self``."""
        d = dataclasses.asdict(self)
        d["tests"] = self.tests.to_json()
        d["tests"]["inputs"] = list(self.tests.inputs)
        d["tests"]["outputs"] = list(self.tests.outputs)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Problem:
        """Inverse of ``to_json``; raises naming the missing or unknown field."""
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - fields
        if unknown:
            raise ValueError(f"Problem.from_json: unknown fields {sorted(unknown)}")
        missing = {"id", "source", "statement", "tests"} - set(d)
        if missing:
            raise ValueError(f"Problem.from_json: missing fields {sorted(missing)}")
        tests = d["tests"]
        if not isinstance(tests, dict):
            raise ValueError(f"Problem.from_json: 'tests' must be a dict, got {type(tests)}")
        return cls(**{**d, "tests": TestSpec.from_json(tests), "metadata": d.get("metadata", {})})

    def to_json_str(self) -> str:
        """``to_json`` as compact JSON text (one line, keys sorted)."""
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))


class ChatTemplateTokenizer(Protocol):
    """Anything with a HF-style ``apply_chat_template`` (e.g. ``transformers`` tokenizers)."""

    def apply_chat_template(self, conversation, **kwargs): ...


def code_generation_messages(
    problem: Problem,
    instruction: str = DEFAULT_CODE_INSTRUCTION,
    system_prompt: str | None = None,
) -> list[dict[str, str]]:
    """Chat messages asking for a solution to ``problem``.

    The user message is ``statement``, then the starter code in a ```python fence when the
    problem has one, then ``instruction``, separated by blank lines. A system message comes
    first when ``system_prompt`` is given.

    Returns:
      ``[{"role": "system", ...}?, {"role": "user", "content": ...}]``.
    """
    parts = [problem.statement.strip()]
    if problem.starter_code:
        parts.append(f"```python\n{problem.starter_code.rstrip()}\n```")
    if instruction:
        parts.append(instruction)
    messages = []
    if system_prompt:
        messages.append({"role": "system", "content": system_prompt})
    messages.append({"role": "user", "content": "\n\n".join(parts)})
    return messages


def render_prompt(messages: list[dict[str, str]], tokenizer: ChatTemplateTokenizer) -> str:
    """Prompt text: ``messages`` through the tokenizer's chat template, with the assistant
    turn opened (``add_generation_prompt=True``) and not tokenized."""
    if not hasattr(tokenizer, "apply_chat_template"):
        raise TypeError(
            f"render_prompt needs a tokenizer with apply_chat_template, got {type(tokenizer)}"
        )
    text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    if not isinstance(text, str):
        raise TypeError(
            f"apply_chat_template(tokenize=False) returned {type(text).__name__}, expected str"
        )
    return text

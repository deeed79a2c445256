"""What an execution semantics alignment task is, what a failed rollout brings to make one,
and the settings of making them (CodeRL+ sec. 3).

* :class:`AlignmentTask`: one task (program, input, asked variables, labels), as the buffer
  stores it and a prompt asks it.
* :class:`CodeRollout`: what the conversion needs to know about one failed code rollout.
* :func:`first_test_input`: the input a problem's task is built on; :func:`code_rollout`:
  the candidate a scored rollout makes (what the rollout stage hands the conversion).
* :class:`AlignmentConfig`: the conversion's settings.

The conversion itself is in :mod:`coderl_jax.rl.alignment` (this project's rules) and
:mod:`coderl_jax.rl.alignment_official` (the official CodeRL+ code's). A task records the
semantics it was made under, because the two differ in what the labels are:

* ``"improved"``: ``labels`` in the value encoding of :mod:`coderl_jax.execution.spec`
  (traced final values; tuples, sets and non-``str`` keys tagged), ``expected_output`` the
  program's stdout as printed (stdin tasks) or its encoded return value (call tasks).
* ``"official"``: ``labels`` plain JSON values (what the official capture's ``json.dumps``
  gives back: tuples and sets as lists, dict keys as strings, non-finite floats as ``nan``/
  ``inf``), ``expected_output`` the stripped stdout; always a stdin task, ``stdin`` the
  official row's first input verbatim (for call-based rows: newline-joined JSON arguments).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Literal

from coderl_jax.execution.spec import TestSpec, decode_arguments
from coderl_jax.rl import alignment_prompt
from coderl_jax.rl.values import to_prompt_literal
from coderl_jax.settings import Semantics, check_choices, require

INPUT_KINDS: tuple[str, ...] = ("stdin", "call")
SEMANTICS: tuple[str, ...] = ("improved", "official")


@dataclasses.dataclass(frozen=True)
class AlignmentTask:
    """One alignment prompt's data: program, input, asked variables and their labels."""

    program: str
    input_kind: str  # "stdin": program reads ``stdin``; "call": evaluate ``call``.
    stdin: str  # stdin text ("" for call-based programs)
    call: tuple[str, str] | None  # (function name, JSON text of the argument list)
    variables: tuple[str, ...]  # V: names, in capture order
    labels: dict[str, Any]  # name -> final value (encoding: see the module docstring)
    expected_output: Any  # stdout text (stdin) or encoded return value (call)
    problem_id: str  # source problem
    step: int  # training step that created the task
    semantics: str = "improved"  # the rules it was made under (labels, prompt, reward)

    def __post_init__(self):
        if self.input_kind not in INPUT_KINDS:
            raise ValueError(
                f"AlignmentTask.input_kind must be in {INPUT_KINDS}, got {self.input_kind!r}"
            )
        if self.semantics not in SEMANTICS:
            raise ValueError(
                f"AlignmentTask.semantics must be in {SEMANTICS}, got {self.semantics!r}"
            )
        if (self.input_kind == "call") != (self.call is not None):
            raise ValueError("AlignmentTask.call must be set exactly when input_kind == 'call'")
        if self.semantics == "official" and self.input_kind != "stdin":
            raise ValueError("AlignmentTask: official tasks run the program on stdin")
        if self.call is not None:
            object.__setattr__(self, "call", tuple(self.call))
        object.__setattr__(self, "variables", tuple(self.variables))
        if set(self.variables) != set(self.labels) or len(set(self.variables)) != len(
            self.variables
        ):
            raise ValueError(
                f"AlignmentTask.labels keys {sorted(self.labels)} must be the distinct "
                f"variables {list(self.variables)}"
            )
        if self.input_kind == "stdin" and not isinstance(self.expected_output, str):
            raise ValueError("AlignmentTask: stdin programs need expected_output as stdout text")

    @property
    def output_kind(self) -> str:
        """``"stdout"`` or ``"return"``: how ``final_output`` is judged (see rl.rewards)."""
        return "stdout" if self.input_kind == "stdin" else "return"

    @property
    def input_key(self) -> tuple:
        """Identity of the input, for deduplication."""
        return (self.input_kind, self.stdin, self.call)

    def prompt(self, style: str = "full") -> str:
        """The user message asking for this task (see rl.alignment_prompt)."""
        return alignment_prompt.render_prompt(self, style)

    def reference_answer(self) -> str:
        """The JSON line a fully correct response ends with. Official tasks: the labels as
        Python's ``json.dumps`` writes them (what the official parser reads back);
        improved: as prompt literals."""
        if self.semantics == "official":
            variables = {name: self.labels[name] for name in self.variables}
            return json.dumps({"final_output": self.expected_output, "variables": variables})
        output = (
            json.dumps(self.expected_output, ensure_ascii=False)
            if self.output_kind == "stdout"
            else to_prompt_literal(self.expected_output)
        )
        variables = ", ".join(
            f"{json.dumps(name)}: {to_prompt_literal(self.labels[name])}" for name in self.variables
        )
        return f'{{"final_output": {output}, "variables": {{{variables}}}}}'

    def to_json(self) -> dict:
        """JSON-ready dict (exact round trip through :meth:`from_json`). Official labels are
        kept as the JSON text Python writes for them (it may hold ``NaN``/``Infinity``, which
        strict JSON files cannot)."""
        d = {
            **dataclasses.asdict(self),
            "call": list(self.call) if self.call else None,
            "variables": list(self.variables),
        }
        if self.semantics == "official":
            d["labels"] = json.dumps(self.labels)
        return d

    @classmethod
    def from_json(cls, d: dict) -> AlignmentTask:
        """Inverse of :meth:`to_json` (tasks saved before ``semantics`` existed are
        improved); validates like the constructor."""
        d = {**d, "call": tuple(d["call"]) if d["call"] else None}
        if d.get("semantics") == "official":
            d["labels"] = json.loads(d["labels"])
        return cls(**d)


@dataclasses.dataclass(frozen=True)
class CodeRollout:
    """What candidate selection needs to know about one code-generation rollout."""

    problem_id: str
    program: str  # extracted program ("" when none could be extracted)
    reward: float  # code-generation reward (1 = all tests passed)
    input_kind: str  # "stdin" | "call" | "none" (problem has no input, e.g. assert tests)
    # The text the official conversion feeds on stdin: a stdin problem's first test input; a
    # call-based problem's first arguments as newline-joined JSON (the official rows' form).
    stdin: str
    call: tuple[str, str] | None  # (fn_name, first test's JSON argument list) (call problems)
    first_status: str  # sandbox status of the run on the first test input ("ok", "timeout", ...)
    first_stdout: str  # its stdout
    first_return: Any = None  # its encoded return value (call problems)
    # The whole completion, when known: official tasks extract their program from it with
    # the official task extractor (else ``program``, stripped, stands in for it).
    completion: str | None = None

    @property
    def input_key(self) -> tuple:
        return (self.input_kind, self.stdin, self.call)


def first_test_input(spec: TestSpec) -> tuple[str, str, tuple[str, str] | None]:
    """``(input_kind, stdin, call)`` of a problem's first test, as :class:`CodeRollout` holds
    them: ``("stdin", text, None)``; ``("call", arguments as newline-joined JSON, (fn_name,
    JSON argument list))`` (call None when the row's arguments do not decode); ``("none", "",
    None)`` for assert tests and problems without tests."""
    if spec.kind == "assert" or not spec.inputs:
        return "none", "", None
    if spec.kind == "stdio":
        return "stdin", spec.inputs[0], None
    text = spec.inputs[0]
    try:
        arguments = decode_arguments(text, spec.call_arguments)
    except ValueError:  # json.JSONDecodeError included: the official judge fails such rows
        return "call", text, None
    if spec.call_arguments == "json_list":
        return "call", "\n".join(json.dumps(arg) for arg in arguments), (spec.fn_name, text)
    return "call", text, (spec.fn_name, json.dumps(arguments))


def code_rollout(
    problem_id: str,
    tests: TestSpec,
    completion: str,
    program: str | None,
    reward: float,
    verdict: Any,
    semantics: str = "improved",
) -> CodeRollout | None:
    """The conversion candidate of one scored code-generation rollout, or None.

    Improved: a failed rollout whose program was judged (``verdict`` holds its tests).
    Official: every rollout whose reward is not above 0, judged or not (the official
    conversion extracts its own program from ``completion`` and re-runs it; the judge's run
    plays no part). ``program`` is what the reward judged (None: none found)."""
    if reward > 0:
        return None
    judged = verdict is not None and bool(verdict.tests)
    if semantics != "official" and not judged:
        return None
    kind, stdin, call = first_test_input(tests)
    first = verdict.tests[0] if judged else None
    got = first.got if first is not None else None
    return CodeRollout(
        problem_id=problem_id,
        program=program or "",
        reward=float(reward),
        input_kind=kind,
        stdin=stdin,
        call=call,
        first_status=first.status if first is not None else "not_run",
        first_stdout=got if isinstance(got, str) else "",
        first_return=got if kind == "call" else None,
        completion=completion,
    )


@dataclasses.dataclass(frozen=True)
class AlignmentConfig:
    """Settings of failure -> task conversion. K = 3, "official" selection and the
    (input, output) dedup follow the official code; the size caps are this project's
    (improved only)."""

    max_variables: int = 3  # K: at most this many variables asked per task
    # Which variables (improved): "official" (the last K captured) or "loops" (assigned in
    # loops first).
    variable_policy: Literal["official", "loops"] = "official"
    max_value_chars: int = 200  # improved: labels whose prompt literal is longer are not asked
    max_output_chars: int = 1000  # improved: tasks whose output literal is longer are dropped
    # Tasks whose prompt is longer are dropped (None: the run's data.max_prompt_tokens).
    max_prompt_tokens: int | None = None
    trace_timeout_s: float = 5.0  # improved: wall-clock limit of each traced re-run
    # Only programs whose cyclomatic complexity is in this inclusive (min, max); None: all
    # (official: the official measure, and None means its window 0..100).
    complexity_window: tuple[int, int] | None = None
    dedup_input_output: bool = True  # official: one task per (input, output) per step
    # Alignment prompt wording of improved tasks: "full" or "concise" (small models; see
    # rl.alignment_prompt). Official tasks always get the official prompt.
    prompt_style: alignment_prompt.PromptStyle = "full"
    semantics: Semantics = "improved"  # which failures become tasks, and which variables

    def __post_init__(self):
        check_choices(self)
        require(self.max_variables >= 1, "max_variables", f"must be >= 1, got {self.max_variables}")
        if self.complexity_window is not None:
            low, high = self.complexity_window
            require(
                1 <= low <= high,
                "complexity_window",
                f"needs 1 <= min <= max, got {self.complexity_window}",
            )
        require(
            self.semantics == "improved" or self.variable_policy == "official",
            "variable_policy",
            "'loops' is an improved rule; semantics='official' asks the last K captured",
        )

"""Rewards: what a completion earns.

Sections:

* Code generation: extract the program, run it against the problem's tests in the sandbox
  (all tests in one child, stopping at the first failure); reward 1.0 iff every test
  passes, else 0.0. ``semantics`` picks the rules: ``"improved"`` (``extract.extract_code``'s
  fences, this project's test runner: stdout compared after normalising line endings,
  trailing whitespace and trailing blank lines, floats within an optional tolerance, typed
  return values) or ``"official"`` (the official CodeRL+ extraction and LiveCodeBench judge,
  ``execution/harness_official.py``, 6 s per test).
* Execution semantics alignment (CodeRL+, arXiv 2510.18471): parse the model's answer line
  and score it per item (``final_output`` and each asked variable ``V``) against the labels.

Alignment reward modes (comparison rules in :mod:`coderl_jax.execution.compare`):

* ``"official"`` (the official code, ``recipe/reward/reward_function_coderlplus.py``): the
  answer is the last line of the stripped completion (split on ``\n`` only), parsed by
  ``json.loads``; it needs both keys; items compare by ``check_value_equality``; reward
  ``0.1 + (#correct items / (1 + |V|)) * 0.9``, 0 for an unparsable answer and for any
  error while scoring (e.g. ``"variables": null`` when ``V`` is not empty). Labels are plain
  JSON values, as official tasks store them.
* ``"improved"`` (this project's): the last non-empty line, tolerating a closing fence line
  after it and backticks around it (nothing else: prose on the line or a JSON object over
  several lines is a format error); ``"variables"`` must be an object; items compare by
  ``answer_stdout_matches`` / ``answer_value_matches`` against encoded labels; the same
  formula as official.
* ``"paper"`` (the paper's R_sem): parsed and compared as ``"improved"``, reward
  ``(#correct variables) / |V|``: ``final_output`` is not scored, no format bonus.

A variable the answer omits counts as wrong. Extra keys are ignored.
"""

from __future__ import annotations

import collections
import dataclasses
import decimal
import json
import warnings
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from coderl_jax.execution import OFFICIAL_TIMEOUT_S
from coderl_jax.execution.compare import (
    OFFICIAL_INT_DIGITS,
    answer_stdout_matches,
    answer_value_matches,
    check_value_equality,
)
from coderl_jax.execution.extract import extract_code
from coderl_jax.execution.spec import TestSpec

# ========================================================================= code generation

# Outcome of one code-generation rollout (a metric key each).
CODE_OUTCOMES: tuple[str, ...] = (
    "passed",
    "wrong_answer",
    "runtime_error",
    "timeout",
    "memory_limit",
    "output_limit",
    "killed_by_signal",
    "sandbox_error",
    "no_code",
    "syntax_error",
)


def _compiles(code: str) -> bool:
    """Host-side syntax check (parsing only; nothing runs). Parser blow-ups count as errors;
    the compiler's warnings about the program are not printed."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SyntaxWarning; DeprecationWarning before 3.12
        try:
            compile(code, "<program>", "exec", dont_inherit=True)
        except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
            return False
    return True


def code_outcome(verdict) -> str:
    """One of CODE_OUTCOMES for a sandbox `Verdict` of a program that was run."""
    if verdict.passed:
        return "passed"
    if verdict.status == "ok":  # the failing test ran to completion: wrong output
        return "wrong_answer"
    return verdict.status if verdict.status in CODE_OUTCOMES else "runtime_error"


def code_generation_rewards(
    completions: Sequence[str],
    tests: Sequence[TestSpec],
    check_batch,
    timeout_s: float = 5.0,
    float_tolerance: float | None = None,
    semantics: str = "improved",
) -> tuple[np.ndarray, list[str], list[str | None], list]:
    """Rewards of code-generation completions.

    Args:
      completions: model outputs.
      tests: the problem's tests for each completion.
      check_batch: ``SandboxPool.check_batch``-like: list of (code, TestSpec) -> Verdicts,
        taking ``timeout_s`` and ``semantics`` keywords.
      timeout_s: per-test wall-clock limit (improved; the official judge allows 6 s).
      float_tolerance: if set, overrides each stdio TestSpec's float tolerance (improved).
      semantics: ``"improved"`` or ``"official"`` extraction and judge (module docstring).

    Returns:
      ``(rewards_N float32, outcomes, programs, verdicts)``: programs are None where no code
      was found; verdicts are None where nothing ran (no code, syntax error).
    """
    if len(completions) != len(tests):
        raise ValueError(f"{len(completions)} completions but {len(tests)} test specs")
    programs = [extract_code(c, semantics) for c in completions]
    rewards_N, outcomes, verdicts = judge_programs(
        programs, tests, check_batch, timeout_s, float_tolerance, semantics
    )
    return rewards_N, outcomes, programs, verdicts


def judge_programs(
    programs: Sequence[str | None],
    tests: Sequence[TestSpec],
    check_batch,
    timeout_s: float = 5.0,
    float_tolerance: float | None = None,
    semantics: str = "improved",
) -> tuple[np.ndarray, list[str], list]:
    """Runs extracted programs (None: no code was found) against their tests in one sandbox
    batch; arguments as ``code_generation_rewards``. Returns ``(rewards_N, outcomes,
    verdicts)``. Improved rules skip programs that do not compile (``syntax_error``); the
    official judge decides that itself (it only needs ``ast.parse``, so e.g. a top-level
    ``return`` in a stdio program runs)."""
    if len(programs) != len(tests):
        raise ValueError(f"{len(programs)} programs but {len(tests)} test specs")
    official = semantics == "official"
    outcomes: list[str] = ["no_code" if p is None else "" for p in programs]
    to_run = []
    for i, program in enumerate(programs):
        if program is None:
            continue
        if not official and not _compiles(program):
            outcomes[i] = "syntax_error"
            continue
        spec = tests[i]
        if float_tolerance is not None and spec.kind == "stdio" and not official:
            spec = dataclasses.replace(spec, float_tolerance=float_tolerance)
        to_run.append((i, program, spec))
    verdicts: list = [None] * len(programs)
    timeout_s = OFFICIAL_TIMEOUT_S if official else timeout_s
    pairs = [(p, s) for _, p, s in to_run]
    ran = check_batch(pairs, timeout_s=timeout_s, semantics=semantics) if to_run else []
    for (i, _, _), verdict in zip(to_run, ran):
        verdicts[i] = verdict
        outcomes[i] = code_outcome(verdict)
    rewards_N = np.array([o == "passed" for o in outcomes], np.float32)
    return rewards_N, outcomes, verdicts


# =========================================================== execution semantics alignment

ALIGNMENT_REWARD_MODES: tuple[str, ...] = ("official", "improved", "paper")
OUTPUT_KINDS: tuple[str, ...] = ("stdout", "return")
FORMAT_BONUS = 0.1

# Outcomes of parsing and scoring an answer ("ok": scored); a metric key each.
PARSE_REASONS: tuple[str, ...] = (
    "ok",
    "empty_completion",
    "invalid_json",
    "not_an_object",
    "missing_final_output",
    "missing_variables",
    "variables_not_an_object",
    "scoring_error",  # official: an exception while scoring (e.g. "variables": null) -> 0
)


def _answer_line(completion: str) -> str | None:
    lines = [line.strip() for line in completion.splitlines() if line.strip()]
    if lines and lines[-1] == "```":  # a closing code fence after the answer line
        lines.pop()
    if not lines:
        return None
    return lines[-1].strip("`").strip()


def parse_alignment_answer(completion: str) -> tuple[dict | None, str]:
    """Parses the answer line of an alignment completion.

    Returns ``(answer, reason)``: ``answer`` is ``{"final_output": value, "variables":
    {name: value}}`` when ``reason == "ok"``, else ``None`` with one of ``PARSE_REASONS``.
    JSON is parsed with ``json.loads`` (which also reads ``NaN``/``Infinity``).
    """
    line = _answer_line(completion)
    if line is None:
        return None, "empty_completion"
    try:
        parsed = json.loads(line)
    except (ValueError, RecursionError):  # incl. ints past the int/str digit limit
        return None, "invalid_json"
    if not isinstance(parsed, dict):
        return None, "not_an_object"
    if "final_output" not in parsed:
        return None, "missing_final_output"
    if "variables" not in parsed:
        return None, "missing_variables"
    if not isinstance(parsed["variables"], dict):
        return None, "variables_not_an_object"
    return {"final_output": parsed["final_output"], "variables": parsed["variables"]}, "ok"


def output_correct(predicted: Any, expected_output: Any, output_kind: str) -> bool:
    """``final_output`` check: stdout text rules for ``"stdout"``, value rules for
    ``"return"`` (the encoded return value of a call-based program)."""
    if output_kind == "stdout":
        if not isinstance(expected_output, str):
            raise ValueError(f"stdout expected_output must be str, got {type(expected_output)}")
        return answer_stdout_matches(predicted, expected_output)
    if output_kind == "return":
        return answer_value_matches(predicted, expected_output)
    raise ValueError(f"output_kind must be one of {OUTPUT_KINDS}, got {output_kind!r}")


def score_alignment_answer(
    answer: dict, expected_output: Any, expected_variables: dict, output_kind: str = "stdout"
) -> tuple[bool, int]:
    """Per-item check of a parsed answer: ``(final_output correct, #variables correct)``."""
    predicted_variables = answer["variables"]
    num_correct = sum(
        name in predicted_variables and answer_value_matches(predicted_variables[name], label)
        for name, label in expected_variables.items()
    )
    return output_correct(answer["final_output"], expected_output, output_kind), num_correct


def official_int(text: str) -> int:
    """``int(text)`` as the official reward process reads JSON ints: up to
    ``OFFICIAL_INT_DIGITS`` digits, whatever this process's own limit."""
    if len(text.lstrip("-")) > OFFICIAL_INT_DIGITS:
        raise ValueError(f"Exceeds the limit ({OFFICIAL_INT_DIGITS} digits) for an int")
    try:
        return int(text)
    except ValueError:  # past this process's limit: Decimal converts without one
        return int(decimal.Decimal(text))


def parse_official_answer(completion: str) -> tuple[dict | None, str]:
    """The official answer parser: the last ``\n``-separated line of the stripped completion,
    stripped, read by ``json.loads`` (ints of up to 50 000 digits, as in the official
    process); an object with both keys. Returns ``(answer, reason)`` as
    :func:`parse_alignment_answer`; ``answer["variables"]`` may be any JSON value."""
    line = completion.strip().split("\n")[-1].strip()
    try:
        parsed = json.loads(line, parse_int=official_int)
    except (ValueError, RecursionError):
        return None, "invalid_json" if line else "empty_completion"
    if not isinstance(parsed, dict):  # officially a TypeError follows: reward 0
        return None, "not_an_object"
    if "final_output" not in parsed:
        return None, "missing_final_output"
    if "variables" not in parsed:
        return None, "missing_variables"
    return {"final_output": parsed["final_output"], "variables": parsed["variables"]}, "ok"


def score_official_answer(
    answer: dict, expected_output: Any, expected_variables: dict
) -> tuple[bool, int]:
    """The official per-item check: ``(final_output correct, #variables correct)`` by
    ``check_value_equality``. Raises where the official code raises (``"variables"`` not an
    object when variables are asked, ``float`` overflow, ...): the reward is then 0."""
    output_ok = check_value_equality(answer["final_output"], expected_output)
    predicted_variables = answer["variables"]
    num_correct = 0
    for name, expected in expected_variables.items():
        if name in predicted_variables:
            num_correct += check_value_equality(predicted_variables[name], expected)
    return output_ok, num_correct


def _score(
    completion: str, expected_output: Any, expected_variables: dict, output_kind: str, mode: str
) -> tuple[float, str, bool, int]:
    """``(reward, reason, final_output correct, #variables correct)`` of one completion."""
    num_variables = len(expected_variables)
    if mode == "paper" and num_variables == 0:
        raise ValueError("paper-mode alignment reward needs at least one variable")
    if mode == "official":
        answer, reason = parse_official_answer(completion)
        if answer is None:
            return 0.0, reason, False, 0
        try:
            output_ok, num_correct = score_official_answer(
                answer, expected_output, expected_variables
            )
        except Exception:  # as the official reward: any error while scoring gives 0
            return 0.0, "scoring_error", False, 0
        items = (int(output_ok) + num_correct) / (1 + num_variables)
        return FORMAT_BONUS + items * (1.0 - FORMAT_BONUS), reason, output_ok, num_correct
    answer, reason = parse_alignment_answer(completion)
    if answer is None:
        return 0.0, reason, False, 0
    output_ok, num_correct = score_alignment_answer(
        answer, expected_output, expected_variables, output_kind
    )
    if mode == "paper":
        return num_correct / num_variables, reason, output_ok, num_correct
    items = (int(output_ok) + num_correct) / (1 + num_variables)
    return FORMAT_BONUS + items * (1.0 - FORMAT_BONUS), reason, output_ok, num_correct


def _check_mode(mode: str, output_kind: str = "stdout") -> None:
    if mode not in ALIGNMENT_REWARD_MODES:
        raise ValueError(
            f"alignment reward mode must be one of {ALIGNMENT_REWARD_MODES}, got {mode!r}"
        )
    if output_kind not in OUTPUT_KINDS:
        raise ValueError(f"output_kind must be one of {OUTPUT_KINDS}, got {output_kind!r}")


def alignment_reward(
    completion: str,
    expected_output: Any,
    expected_variables: dict,
    mode: str = "official",
    output_kind: Literal["stdout", "return"] = "stdout",
) -> float:
    """Reward of one alignment completion (modes and formulas in the module docstring).

    Args:
      completion: the model's full response text.
      expected_output: the program's stdout (``output_kind="stdout"``) or, improved and
        paper modes, its encoded return value (``output_kind="return"``, call-based tasks).
      expected_variables: variable name -> label, for every asked variable (|V| = its
        length): plain JSON values for ``"official"``, the value encoding otherwise.
      mode: ``"official"``, ``"improved"`` or ``"paper"``.
      output_kind: how ``final_output`` is judged in the improved and paper modes.
    """
    _check_mode(mode, output_kind)
    return _score(completion, expected_output, expected_variables, output_kind, mode)[0]


def alignment_rewards(
    completions: Sequence[str],
    expected_outputs: Sequence[Any],
    expected_variables: Sequence[dict],
    output_kinds: Sequence[str],
    mode: str = "official",
) -> tuple[np.ndarray, dict[str, int]]:
    """Batch version of :func:`alignment_reward`, with counts for metrics.

    Returns ``(rewards_N, counts)``: ``rewards_N`` float32 of shape [N]; ``counts`` holds
    ``parse/<reason>`` for every reason in ``PARSE_REASONS`` and ``items/output_correct``,
    ``items/variables_correct``, ``items/variables_asked``.
    """
    _check_mode(mode)
    n = len(completions)
    if not (len(expected_outputs) == len(expected_variables) == len(output_kinds) == n):
        raise ValueError(
            f"alignment_rewards: {n} completions but {len(expected_outputs)} outputs, "
            f"{len(expected_variables)} variable dicts, {len(output_kinds)} output kinds"
        )
    counts = collections.Counter({f"parse/{reason}": 0 for reason in PARSE_REASONS})
    counts.update({"items/output_correct": 0, "items/variables_correct": 0})
    counts["items/variables_asked"] = sum(len(v) for v in expected_variables)
    rewards_N = np.zeros((n,), np.float32)
    for i, completion in enumerate(completions):
        _check_mode(mode, output_kinds[i])
        reward, reason, output_ok, num_correct = _score(
            completion, expected_outputs[i], expected_variables[i], output_kinds[i], mode
        )
        counts[f"parse/{reason}"] += 1
        counts["items/output_correct"] += int(output_ok)
        counts["items/variables_correct"] += num_correct
        rewards_N[i] = reward
    return rewards_N, dict(counts)

"""Rewards: what a completion earns.

Sections:

* Code generation: extract the program, run it against the problem's tests in the sandbox
  (all tests in one child, stopping at the first failure by default); reward 1.0 iff every
  test passes, else 0.0. Output comparison rules are the test runner's
  (`coderl_jax.execution.spec`): stdout is compared after normalising line endings and
  stripping trailing whitespace on each line and trailing blank lines; with a float
  tolerance, tokens that both parse as floats match within it.
* Execution semantics alignment (CodeRL+, arXiv 2510.18471): parse the model's answer line
  and score it per item against the traced labels.

Alignment answer format: the completion's last non-empty line is one JSON object
``{"final_output": ..., "variables": {"name": value, ...}}``. Only a trailing code-fence
line (```` ``` ````) after it and backticks around the line itself are tolerated; anything
else (prose on the line, a JSON object spread over several lines) is a format error.

Alignment reward modes (``V`` = the variables asked, an item = ``final_output`` or one
variable; equality rules in :mod:`coderl_jax.rl.values`):

* ``"official"`` (the authors' code): ``0.1 + 0.9 * (#correct items) / (1 + |V|)`` for a
  parsable answer, 0 otherwise. The 0.1 is a format bonus.
* ``"paper"`` (paper, eq. for R_sem): ``(#correct variables) / |V|``; ``final_output`` is not
  scored and there is no format bonus; an unparsable answer gets 0.

A variable the answer omits counts as wrong. Extra keys are ignored.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import warnings
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from coderl_jax.execution.extract import extract_code
from coderl_jax.execution.spec import TestSpec
from coderl_jax.execution.compare import answer_stdout_matches, answer_value_matches

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
) -> tuple[np.ndarray, list[str], list[str | None], list]:
    """Rewards of code-generation completions.

    Args:
      completions: model outputs.
      tests: the problem's tests for each completion.
      check_batch: ``SandboxPool.check_batch``-like: list of (code, TestSpec) -> Verdicts.
      timeout_s: per-test wall-clock limit.
      float_tolerance: if set, overrides each stdio TestSpec's float tolerance.

    Returns:
      ``(rewards_N float32, outcomes, programs, verdicts)``: programs are None where no code
      was found; verdicts are None where nothing ran (no code, syntax error).
    """
    if len(completions) != len(tests):
        raise ValueError(f"{len(completions)} completions but {len(tests)} test specs")
    programs = [extract_code(c) for c in completions]
    rewards_N, outcomes, verdicts = judge_programs(
        programs, tests, check_batch, timeout_s, float_tolerance
    )
    return rewards_N, outcomes, programs, verdicts


def judge_programs(
    programs: Sequence[str | None],
    tests: Sequence[TestSpec],
    check_batch,
    timeout_s: float = 5.0,
    float_tolerance: float | None = None,
) -> tuple[np.ndarray, list[str], list]:
    """Runs extracted programs (None: no code was found) against their tests in one sandbox
    batch; arguments as ``code_generation_rewards``. Returns ``(rewards_N, outcomes,
    verdicts)``."""
    if len(programs) != len(tests):
        raise ValueError(f"{len(programs)} programs but {len(tests)} test specs")
    outcomes: list[str] = ["no_code" if p is None else "" for p in programs]
    to_run = []
    for i, program in enumerate(programs):
        if program is None:
            continue
        if not _compiles(program):
            outcomes[i] = "syntax_error"
            continue
        spec = tests[i]
        if float_tolerance is not None and spec.kind == "stdio":
            spec = dataclasses.replace(spec, float_tolerance=float_tolerance)
        to_run.append((i, program, spec))
    verdicts: list = [None] * len(programs)
    ran = check_batch([(p, s) for _, p, s in to_run], timeout_s=timeout_s) if to_run else []
    for (i, _, _), verdict in zip(to_run, ran):
        verdicts[i] = verdict
        outcomes[i] = code_outcome(verdict)
    rewards_N = np.array([o == "passed" for o in outcomes], np.float32)
    return rewards_N, outcomes, verdicts


# =========================================================== execution semantics alignment

ALIGNMENT_REWARD_MODES: tuple[str, ...] = ("official", "paper")
OUTPUT_KINDS: tuple[str, ...] = ("stdout", "return")
FORMAT_BONUS = 0.1

# Reasons returned by parse_alignment_answer; "ok" means the answer parsed.
PARSE_REASONS: tuple[str, ...] = (
    "ok",
    "empty_completion",
    "invalid_json",
    "not_an_object",
    "missing_final_output",
    "missing_variables",
    "variables_not_an_object",
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
    except (json.JSONDecodeError, RecursionError):
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


def _reward_from_score(
    parsed: bool, output_ok: bool, num_correct: int, num_variables: int, mode: str
) -> float:
    if mode == "official":
        if not parsed:
            return 0.0
        return FORMAT_BONUS + (1.0 - FORMAT_BONUS) * (int(output_ok) + num_correct) / (
            1 + num_variables
        )
    if num_variables == 0:
        raise ValueError("paper-mode alignment reward needs at least one variable")
    return num_correct / num_variables if parsed else 0.0


def _check_mode(mode: str) -> None:
    if mode not in ALIGNMENT_REWARD_MODES:
        raise ValueError(
            f"alignment reward mode must be one of {ALIGNMENT_REWARD_MODES}, got {mode!r}"
        )


def alignment_reward(
    completion: str,
    expected_output: Any,
    expected_variables: dict,
    mode: str = "official",
    output_kind: Literal["stdout", "return"] = "stdout",
) -> float:
    """Reward of one alignment completion (formulas in the module docstring).

    Args:
      completion: the model's full response text.
      expected_output: the program's stdout (``output_kind="stdout"``) or its encoded return
        value (``output_kind="return"``, call-based programs).
      expected_variables: plain variable name -> encoded final value, for every asked
        variable (|V| = its length).
      mode: ``"official"`` (0.1 + 0.9 * correct/(1+|V|)) or ``"paper"`` (correct vars/|V|).
    """
    _check_mode(mode)
    answer, _ = parse_alignment_answer(completion)
    if answer is None:
        return _reward_from_score(False, False, 0, len(expected_variables), mode)
    output_ok, num_correct = score_alignment_answer(
        answer, expected_output, expected_variables, output_kind
    )
    return _reward_from_score(True, output_ok, num_correct, len(expected_variables), mode)


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
        answer, reason = parse_alignment_answer(completion)
        counts[f"parse/{reason}"] += 1
        output_ok, num_correct = False, 0
        if answer is not None:
            output_ok, num_correct = score_alignment_answer(
                answer, expected_outputs[i], expected_variables[i], output_kinds[i]
            )
        counts["items/output_correct"] += int(output_ok)
        counts["items/variables_correct"] += num_correct
        rewards_N[i] = _reward_from_score(
            answer is not None, output_ok, num_correct, len(expected_variables[i]), mode
        )
    return rewards_N, dict(counts)

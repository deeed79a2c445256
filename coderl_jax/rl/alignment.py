"""Failed code-generation rollouts -> execution semantics alignment tasks (CodeRL+ sec. 3).

Data path (one call of :func:`failures_to_tasks` per training step):

1. :func:`select_candidates`: rollouts with reward 0 whose program ran on the problem's first
   test input with status ``"ok"`` (no exception, no timeout) and printed non-empty stdout
   (call-based problems: returned a value other than ``None``); optionally only programs
   whose cyclomatic complexity lies in a window. Problems without an input (HumanEval-style
   ``assert`` tests) give no candidates.
2. :func:`failures_to_tasks`: dedup on (program, input); re-run ALL candidates with variable
   tracing in ONE sandbox batch; keep runs that still end ``"ok"`` with a non-empty,
   askable output; choose the variables V (:func:`select_variables`); render the prompt
   and drop it when over the token limit; dedup on (input, output) (the official rule).
   Every drop is counted under a reason for metrics.

Variable selection (at most K, default 3), over the traced variables in the tracer's
order (each entry placed where it was last recorded: a function's locals when its frame
last finished, module names at the end), after dropping names that are not identifiers,
plain names that stand for several scopes (``f.x`` and ``x``: "the final value of x" would
be ambiguous, so neither is asked, rather than ``plain_variable_names``' last-recorded-wins),
and values that are not askable (:func:`coderl_jax.rl.values.is_askable`: truncated,
unrepresentable, or longer than the size cap):

* ``"official"``: the last K captured.
* ``"loops"``: the last K among variables assigned inside a ``for``/``while`` body or
  target (found with ``ast``, per function scope), filled with the last other variables
  when fewer than K. V keeps capture order.

Prompt rendering lives in :mod:`coderl_jax.rl.alignment_prompt`.
"""

from __future__ import annotations

import collections
import dataclasses
import json
from collections.abc import Callable, Sequence
from typing import Any, Literal

from coderl_jax.execution.spec import TestSpec
from coderl_jax.rl import alignment_prompt
from coderl_jax.rl.program_analysis import cyclomatic_complexity, names_assigned_in_loops
from coderl_jax.rl.values import is_askable, to_prompt_literal
from coderl_jax.settings import Semantics, check_choices, require

INPUT_KINDS: tuple[str, ...] = ("stdin", "call")


@dataclasses.dataclass(frozen=True)
class AlignmentTask:
    """One alignment prompt's data: program, input, asked variables and their labels."""

    program: str
    input_kind: str  # "stdin": program reads ``stdin``; "call": evaluate ``call``.
    stdin: str  # stdin text ("" for call-based programs)
    call: tuple[str, str] | None  # (function name, JSON text of the argument list)
    variables: tuple[str, ...]  # V: plain names, in capture order
    labels: dict[str, Any]  # name -> encoded final value (value encoding of execution.spec)
    expected_output: Any  # stdout text (stdin) or encoded return value (call)
    problem_id: str  # source problem
    step: int  # training step that created the task

    def __post_init__(self):
        if self.input_kind not in INPUT_KINDS:
            raise ValueError(
                f"AlignmentTask.input_kind must be in {INPUT_KINDS}, got {self.input_kind!r}"
            )
        if (self.input_kind == "call") != (self.call is not None):
            raise ValueError("AlignmentTask.call must be set exactly when input_kind == 'call'")
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
        """The JSON line a fully correct response ends with (labels as prompt literals)."""
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
        """JSON-ready dict (exact round trip through :meth:`from_json`)."""
        return {
            **dataclasses.asdict(self),
            "call": list(self.call) if self.call else None,
            "variables": list(self.variables),
        }

    @classmethod
    def from_json(cls, d: dict) -> AlignmentTask:
        """Inverse of :meth:`to_json`; validates like the constructor."""
        return cls(**{**d, "call": tuple(d["call"]) if d["call"] else None})


@dataclasses.dataclass(frozen=True)
class CodeRollout:
    """What candidate selection needs to know about one code-generation rollout."""

    problem_id: str
    program: str  # extracted program ("" when none could be extracted)
    reward: float  # code-generation reward (1 = all tests passed)
    input_kind: str  # "stdin" | "call" | "none" (problem has no input, e.g. assert tests)
    stdin: str  # first test's stdin text (stdin problems)
    call: tuple[str, str] | None  # (fn_name, first test's JSON argument list) (call problems)
    first_status: str  # sandbox status of the run on the first test input ("ok", "timeout", ...)
    first_stdout: str  # its stdout
    first_return: Any = None  # its encoded return value (call problems)

    @property
    def input_key(self) -> tuple:
        return (self.input_kind, self.stdin, self.call)


def first_test_input(spec: TestSpec) -> tuple[str, str, tuple[str, str] | None]:
    """``(input_kind, stdin, call)`` of a problem's first test, as :class:`CodeRollout` holds."""
    if spec.kind == "stdio":
        return "stdin", spec.inputs[0], None
    if spec.kind == "call":
        return "call", "", (spec.fn_name, spec.inputs[0])
    return "none", "", None


@dataclasses.dataclass(frozen=True)
class AlignmentConfig:
    """Settings of failure -> task conversion. K = 3, "official" selection and the
    (input, output) dedup follow the official code; the size caps are this project's."""

    max_variables: int = 3  # K: at most this many variables asked per task
    # Which variables: "official" (the last K captured) or "loops" (assigned in loops first).
    variable_policy: Literal["official", "loops"] = "official"
    max_value_chars: int = 200  # labels whose prompt literal is longer are not asked
    max_output_chars: int = 1000  # tasks whose output literal is longer are dropped
    # Tasks whose prompt is longer are dropped (None: the run's data.max_prompt_tokens).
    max_prompt_tokens: int | None = None
    trace_timeout_s: float = 5.0  # wall-clock limit of each traced re-run
    # Only programs whose cyclomatic complexity is in this inclusive (min, max); None: all.
    complexity_window: tuple[int, int] | None = None
    dedup_input_output: bool = True  # official: one task per (input, output) per step
    # Alignment prompt wording: "full" or "concise" (small models; see rl.alignment_prompt).
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


# ------------------------------------------------------------------------------- selection


def select_candidates(
    rollouts: Sequence[CodeRollout], complexity_window: tuple[int, int] | None = None
) -> tuple[list[CodeRollout], dict[str, int]]:
    """Rollouts eligible for conversion (rules in the module docstring), with drop counts."""
    counts = collections.Counter()
    selected = []
    for rollout in rollouts:
        if rollout.reward != 0:
            counts["drop/passed"] += 1
        elif rollout.input_kind not in INPUT_KINDS:
            counts["drop/no_input"] += 1
        elif not rollout.program.strip():
            counts["drop/no_program"] += 1
        elif rollout.first_status != "ok":
            counts["drop/did_not_run"] += 1
        elif (rollout.input_kind == "stdin" and not rollout.first_stdout.strip()) or (
            rollout.input_kind == "call" and rollout.first_return is None
        ):
            counts["drop/empty_output"] += 1
        elif complexity_window is not None and not (
            complexity_window[0]
            <= (cyclomatic_complexity(rollout.program) or 0)
            <= complexity_window[1]
        ):
            counts["drop/complexity"] += 1
        else:
            selected.append(rollout)
    counts["selected"] = len(selected)
    return selected, dict(counts)


def plain_name(qualified: str) -> str:
    """``"Solution.solve.x"`` -> ``"x"``: the tracer qualifies names by scope with dots."""
    return qualified.rsplit(".", 1)[-1]


def select_variables(
    program: str,
    traced: dict[str, Any],
    config: AlignmentConfig,
) -> dict[str, Any]:
    """Chooses V from traced final values (rules in the module docstring).

    Args:
      program: source, for the ``loops`` policy.
      traced: qualified name -> encoded final value, in capture order.
    Returns plain name -> encoded value for the chosen variables, in capture order.
    """
    qualified_by_plain = collections.defaultdict(list)
    for qualified in traced:
        qualified_by_plain[plain_name(qualified)].append(qualified)
    eligible = [
        (plain, traced[qualified[0]])
        for plain, qualified in qualified_by_plain.items()
        if plain.isidentifier()
        and len(qualified) == 1
        and is_askable(traced[qualified[0]], config.max_value_chars)
    ]
    k = config.max_variables
    if config.variable_policy == "official":
        chosen = eligible[-k:]
    else:
        in_loops = names_assigned_in_loops(program)
        preferred = [name for name, _ in eligible if name in in_loops][-k:]
        others = [name for name, _ in eligible if name not in in_loops]
        fill = others[max(0, len(others) - (k - len(preferred))) :] if len(preferred) < k else []
        chosen = [item for item in eligible if item[0] in preferred or item[0] in fill]
    return dict(chosen)


# ------------------------------------------------------------------------------ conversion


def reference_tasks(
    problems: Sequence[Any],
    run_batch: Callable[[list], list],
    *,
    step: int,
    config: AlignmentConfig = AlignmentConfig(),
    count_tokens: Callable[[str], int] | None = None,
) -> tuple[list[AlignmentTask], dict[str, int]]:
    """Alignment tasks from problems' reference solutions, run on their first test input
    (warm-start examples; the fixed pool of ``alignment_only``). Problems without a
    reference or without an input (assert tests) are skipped."""
    candidates = []
    for problem in problems:
        kind, stdin, call = first_test_input(problem.tests)
        if problem.reference_solution and kind != "none":
            program = problem.reference_solution
            candidates.append(CodeRollout(problem.id, program, 1.0, kind, stdin, call, "ok", ""))
    return failures_to_tasks(
        candidates, run_batch, step=step, config=config, count_tokens=count_tokens
    )


def _default_job_factory() -> Callable[..., Any]:
    from coderl_jax.execution import Job

    return Job


def _text(stream: str | bytes | None) -> str:
    if isinstance(stream, bytes):
        return stream.decode("utf-8", errors="replace")
    return stream or ""


def failures_to_tasks(
    candidates: Sequence[CodeRollout],
    run_batch: Callable[[list], list],
    *,
    step: int,
    config: AlignmentConfig = AlignmentConfig(),
    count_tokens: Callable[[str], int] | None = None,
    job_factory: Callable[..., Any] | None = None,
) -> tuple[list[AlignmentTask], dict[str, int]]:
    """Converts candidates into alignment tasks with ONE traced sandbox batch.

    Selection is :func:`select_candidates`' job: any candidate given is converted (so a
    fixed pool can also be built from reference solutions).

    Args:
      candidates: rollouts to convert (their first test input is the task input).
      run_batch: runs a list of jobs and returns one result per job, in order (the sandbox
        pool's ``run_batch``). A result has ``status``, ``stdout``, ``variables`` (qualified
        name -> encoded final value) and ``return_value`` (encoded).
      step: training step, recorded on every task.
      config: selection, filter and limit settings.
      count_tokens: prompt text -> token count; required when ``config.max_prompt_tokens``.
      job_factory: builds a job from ``code, stdin (bytes), call, trace, timeout_s``;
        default ``coderl_jax.execution.Job``.
    Returns:
      ``(tasks, counts)``; counts hold ``drop/<reason>`` and ``tasks``.
    """
    if config.max_prompt_tokens is not None and count_tokens is None:
        raise ValueError("failures_to_tasks: config.max_prompt_tokens needs count_tokens")
    job_factory = job_factory or _default_job_factory()
    counts = collections.Counter()
    unique, seen_program_input = [], set()
    for candidate in candidates:
        if candidate.input_kind not in INPUT_KINDS:
            raise ValueError(
                f"candidate of {candidate.problem_id} has no input ({candidate.input_kind!r})"
            )
        key = (candidate.program, candidate.input_key)
        if key in seen_program_input:
            counts["drop/duplicate_program_input"] += 1
            continue
        seen_program_input.add(key)
        unique.append(candidate)
    jobs = [
        job_factory(
            code=c.program,
            stdin=c.stdin.encode("utf-8"),
            call=c.call,
            trace=True,
            timeout_s=config.trace_timeout_s,
        )
        for c in unique
    ]
    results = run_batch(jobs) if jobs else []
    if len(results) != len(jobs):
        raise ValueError(f"run_batch returned {len(results)} results for {len(jobs)} jobs")
    tasks, seen_input_output = [], set()
    for candidate, result in zip(unique, results):
        task, reason = _task_from_result(candidate, result, step, config)
        if task is not None and config.max_prompt_tokens is not None:
            if count_tokens(task.prompt(config.prompt_style)) > config.max_prompt_tokens:
                task, reason = None, "prompt_too_long"
        if task is not None and config.dedup_input_output:
            key = (task.input_key, json.dumps(task.expected_output, sort_keys=True))
            if key in seen_input_output:
                task, reason = None, "duplicate_input_output"
            seen_input_output.add(key)
        if task is None:
            counts[f"drop/{reason}"] += 1
        else:
            tasks.append(task)
    counts["tasks"] = len(tasks)
    return tasks, dict(counts)


def _task_from_result(
    candidate: CodeRollout,
    result: Any,
    step: int,
    config: AlignmentConfig,
) -> tuple[AlignmentTask | None, str]:
    if result.status != "ok":
        return None, f"trace_{result.status}"
    if candidate.input_kind == "stdin":
        output = _text(result.stdout)
        if not output.strip():
            return None, "empty_output"
        if len(json.dumps(output, ensure_ascii=False)) > config.max_output_chars:
            return None, "output_unaskable"
    else:
        output = result.return_value
        if output is None:
            return None, "empty_output"
        if not is_askable(output, config.max_output_chars):
            return None, "output_unaskable"
    traced = dict(result.variables or {})
    chosen = select_variables(candidate.program, traced, config)
    if not chosen:
        return None, "no_askable_variables"
    task = AlignmentTask(
        program=candidate.program,
        input_kind=candidate.input_kind,
        stdin=candidate.stdin,
        call=candidate.call,
        variables=tuple(chosen),
        labels=chosen,
        expected_output=output,
        problem_id=candidate.problem_id,
        step=step,
    )
    return task, "ok"

"""Failed code-generation rollouts -> execution semantics alignment tasks (CodeRL+ sec. 3).

Data path (one call of :func:`failures_to_tasks` per training step), each step following
``AlignmentConfig.semantics``: ``"official"`` is the official CodeRL+ conversion, quirks
included (:mod:`coderl_jax.rl.alignment_official`: the program re-run with a capture of its
module globals); ``"improved"`` is this project's, below. The task types and the settings
are in :mod:`coderl_jax.rl.alignment_task`; :func:`alignment_task_from_program` is the
conversion of one program.

Improved rules:

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
unrepresentable, or longer than the size cap); a task left without variables is dropped:

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
from typing import Any

from coderl_jax.rl import alignment_official
from coderl_jax.rl.alignment_task import (
    INPUT_KINDS,
    AlignmentConfig,
    AlignmentTask,
    CodeRollout,
    code_rollout,
    first_test_input,
)
from coderl_jax.rl.program_analysis import cyclomatic_complexity, names_assigned_in_loops
from coderl_jax.rl.values import is_askable

DEFAULT_CONFIG = AlignmentConfig()

__all__ = [
    "AlignmentConfig", "AlignmentTask", "CodeRollout", "alignment_task_from_program",
    "code_rollout", "failures_to_tasks", "first_test_input", "reference_tasks", "select_candidates",
    "select_variables",
]  # fmt: skip


# ------------------------------------------------------------------------------- selection


def select_candidates(
    rollouts: Sequence[CodeRollout],
    complexity_window: tuple[int, int] | None = None,
    semantics: str = "improved",
) -> tuple[list[CodeRollout], dict[str, int]]:
    """Rollouts eligible for conversion under ``semantics`` (improved rules in the module
    docstring; official: ``alignment_official.select_candidates``, which also sets each
    candidate's ``program`` to its official task code), with drop counts."""
    if semantics == "official":
        return alignment_official.select_candidates(rollouts, complexity_window)
    if semantics != "improved":
        raise ValueError(f"semantics must be 'improved' or 'official', got {semantics!r}")
    counts = collections.Counter()
    selected = []
    for rollout in rollouts:
        if rollout.reward != 0:
            counts["drop/passed"] += 1
        elif rollout.input_kind not in INPUT_KINDS or (
            rollout.input_kind == "call" and rollout.call is None
        ):
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
    config: AlignmentConfig = DEFAULT_CONFIG,
    count_tokens: Callable[[str], int] | None = None,
) -> tuple[list[AlignmentTask], dict[str, int]]:
    """Alignment tasks from problems' reference solutions, run on their first test input
    (warm-start examples; the fixed pool of ``alignment_only``). Problems without a
    reference or without an input (assert tests) are skipped; official: the reference, as
    its task code, goes through the official rules except the reward's."""
    candidates = []
    for problem in problems:
        kind, stdin, call = first_test_input(problem.tests)
        if problem.reference_solution and kind != "none":
            program = problem.reference_solution
            # Reward 0: converted as the program of a failed rollout would be.
            candidates.append(CodeRollout(problem.id, program, 0.0, kind, stdin, call, "ok", ""))
    if config.semantics == "official":
        candidates, _ = alignment_official.select_candidates(candidates, config.complexity_window)
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
    config: AlignmentConfig = DEFAULT_CONFIG,
    count_tokens: Callable[[str], int] | None = None,
    job_factory: Callable[..., Any] | None = None,
) -> tuple[list[AlignmentTask], dict[str, int]]:
    """Converts candidates into alignment tasks with ONE sandbox batch, under
    ``config.semantics`` (improved: traced runs, rules in the module docstring; official:
    ``alignment_official.failures_to_tasks``, the capture runs).

    Selection is :func:`select_candidates`' job: any candidate given is converted (so a
    fixed pool can also be built from reference solutions). Official candidates must come
    from the official selection (their ``program`` is the task code).

    Args:
      candidates: rollouts to convert (their first test input is the task input).
      run_batch: runs a list of jobs and returns one result per job, in order (the sandbox
        pool's ``run_batch``). A result has ``status``, ``exit_code``, ``stdout``,
        ``stderr``, ``variables`` (qualified name -> encoded final value) and
        ``return_value`` (encoded).
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
    if config.semantics == "official":
        return alignment_official.failures_to_tasks(
            candidates, run_batch, step=step, config=config, count_tokens=count_tokens,
            job_factory=job_factory,
        )  # fmt: skip
    counts = collections.Counter()
    unique, seen_program_input = [], set()
    for candidate in candidates:
        if candidate.input_kind not in INPUT_KINDS:
            raise ValueError(
                f"candidate of {candidate.problem_id} has no input ({candidate.input_kind!r})"
            )
        if candidate.input_kind == "call" and candidate.call is None:
            counts["drop/no_input"] += 1  # arguments that do not decode
            continue
        key = (candidate.program, candidate.input_key)
        if key in seen_program_input:
            counts["drop/duplicate_program_input"] += 1
            continue
        seen_program_input.add(key)
        unique.append(candidate)
    jobs = [
        job_factory(
            code=c.program,
            stdin=c.stdin.encode("utf-8") if c.input_kind == "stdin" else b"",
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
        stdin=candidate.stdin if candidate.input_kind == "stdin" else "",
        call=candidate.call,
        variables=tuple(chosen),
        labels=chosen,
        expected_output=output,
        problem_id=candidate.problem_id,
        step=step,
    )
    return task, "ok"


def alignment_task_from_program(
    code: str,
    stdin: str,
    semantics: str = "improved",
    max_variables: int = 3,
    *,
    run_batch: Callable[[list], list] | None = None,
) -> tuple[Any, dict[str, Any]] | None:
    """The alignment task the loop's conversion would make of one failed program run on
    ``stdin``: ``(expected_output, {name: label})``, or None when it makes none.

    ``semantics="official"``: the official conversion (``alignment_official``): ``code`` is
    taken as the official task extractor takes it out of a ```` ```python ```` block
    (stripped), then the complexity window, the capture run, the stripped stdout and the last
    ``max_variables`` captured names with their plain JSON values (``{}``: an output-only
    task). ``"improved"``: the traced run; labels in the value encoding, expected output the
    stdout as printed; a program without askable variables makes no task. The prompt-length
    limit and the per-step dedup need a tokenizer and a batch, so they do not apply here.

    Args:
      code: the program.
      stdin: its input text.
      semantics: ``"official"`` or ``"improved"``.
      max_variables: K, the most variables asked.
      run_batch: runs sandbox jobs (default: the shared pool of ``coderl_jax.execution``).
    """
    if run_batch is None:
        from coderl_jax.execution import shared_pool

        run_batch = shared_pool().run_batch
    config = AlignmentConfig(max_variables=max_variables, semantics=semantics)
    candidate = CodeRollout("program", code, 0.0, "stdin", stdin, None, "ok", "")
    if semantics == "official":
        candidate = dataclasses.replace(candidate, completion=f"```python\n{code}\n```")
        candidates, _ = select_candidates([candidate], semantics="official")
    else:
        candidates = [candidate] if code.strip() else []
    tasks, _ = failures_to_tasks(candidates, run_batch, step=0, config=config)
    if not tasks:
        return None
    return tasks[0].expected_output, dict(tasks[0].labels)

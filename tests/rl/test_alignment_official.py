"""Failure -> alignment task under both semantics, case by case against the official code.

Cases (``tests/fixtures/official/``, see its README): ``task.json`` (own) and
``research_task.json`` hold programs or completions with the task the OFFICIAL CodeRL+
conversion made of them (expected output, captured variables, target names, prompt text) and
the one this project's improved rules make; ``batch.json``/``research_batch.json`` hold one
step's failed rollouts and the tasks the official step kept (dedup, prompt limit).
Programs run in the real sandbox; the two timeout cases take 5 s each, so cases run on a
few threads.
"""

import concurrent.futures
import json
import math
import pathlib

import pytest

from coderl_jax.execution import TestSpec, shared_pool
from coderl_jax.execution.extract import extract_task_code
from coderl_jax.rl.alignment import (
    AlignmentConfig,
    AlignmentTask,
    CodeRollout,
    alignment_task_from_program,
    code_rollout,
    failures_to_tasks,
    select_candidates,
)
from coderl_jax.rl.alignment_buffer import AlignmentBuffer
from coderl_jax.rl.alignment_official import capture_program, read_capture
from coderl_jax.rl.alignment_prompt import render_official_prompt
from coderl_jax.rl.official_prompt_data import TEMPLATE
from coderl_jax.rl.program_analysis import official_cyclomatic_complexity
from coderl_jax.rl.rewards import alignment_reward

CASES = pathlib.Path(__file__).parents[1] / "fixtures" / "official"


def load(name: str) -> list[dict]:
    with open(CASES / f"{name}.json") as f:
        return json.load(f)


TASKS = load("task") + load("research_task")
BATCHES = load("batch") + load("research_batch")


def _same(a, b) -> bool:  # NaN-safe equality of JSON-able values
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def _rollout(case: dict) -> CodeRollout:
    completion = case.get("completion") or f"```python\n{case['program']}\n```"
    return CodeRollout(
        "p", "", case.get("reward", 0.0), "stdin", case["stdin"], None, "ok", "", 0, completion
    )


def _official(case: dict) -> AlignmentTask | tuple | None:
    """The program case through alignment_task_from_program; completions and failed-reward
    cases through the loop's select_candidates + failures_to_tasks."""
    if case.get("data_source") == "exec_semantics_align":
        return None  # alignment rollouts never reach the conversion here (TaskKind)
    if "program" in case and case["program"] is not None and "reward" not in case:
        return alignment_task_from_program(case["program"], case["stdin"], "official")
    selected, _ = select_candidates([_rollout(case)], semantics="official")
    config = AlignmentConfig(semantics="official")
    tasks, _ = failures_to_tasks(selected, shared_pool().run_batch, step=1, config=config)
    return tasks[0] if tasks else None


def _improved(case: dict):
    if case.get("reward", 0) > 0 or case.get("data_source") == "exec_semantics_align":
        return None
    code = case.get("program") or extract_task_code(case["completion"], "improved")
    return None if code is None else alignment_task_from_program(code, case["stdin"])


@pytest.fixture(scope="module")
def results() -> dict[tuple[str, str], object]:
    """Every task case in both semantics, run side by side on the shared pool."""
    keys = [(c["id"], s) for c in TASKS for s in ("official", "improved")]
    by_id = {c["id"]: c for c in TASKS}
    run = {"official": _official, "improved": _improved}
    with concurrent.futures.ThreadPoolExecutor(4) as threads:
        return dict(zip(keys, threads.map(lambda k: run[k[1]](by_id[k[0]]), keys)))


@pytest.mark.parametrize("case", TASKS, ids=[c["id"] for c in TASKS])
def test_official_task_equals_the_official_code(case, results):
    want = case["official"]["task"]
    got = results[(case["id"], "official")]
    if want is None:
        assert got is None, f"official made no task ({case['official']['dropped_by']})"
        return
    assert got is not None, "the official code made a task"
    if isinstance(got, tuple):  # alignment_task_from_program: (output, labels)
        output, labels = got
        task = _official_task_of(case)
    else:
        output, labels, task = got.expected_output, got.labels, got
    assert output == want["expected_output"]
    assert _same(labels, want["variables"]) and list(labels) == want["target_names"]
    assert list(task.variables) == want["target_names"]
    assert task.prompt() == want["prompt"]
    assert task.prompt("concise") == want["prompt"]  # the style is for improved tasks
    assert (task.stdin, task.expected_output) == tuple(want["dedup_key"])


def _official_task_of(case: dict) -> AlignmentTask:
    selected, _ = select_candidates([_rollout(case)], semantics="official")
    config = AlignmentConfig(semantics="official")
    tasks, _ = failures_to_tasks(selected, shared_pool().run_batch, step=1, config=config)
    return tasks[0]


@pytest.mark.parametrize("case", TASKS, ids=[c["id"] for c in TASKS])
def test_improved_task_is_this_projects(case, results):
    got = results[(case["id"], "improved")]
    want = case["improved"]
    if want is None:
        assert got is None
    else:
        assert got is not None and got[0] == want["expected_output"]
        assert _same(got[1], want["variables"]) and list(got[1]) == list(want["variables"])


def _count_tokens(chars_per_token: int):
    # The oracle's stand-in tokenizer: the user message only, ceil(chars / chars_per_token).
    return lambda message: -(-len(message) // chars_per_token)


@pytest.mark.parametrize("case", BATCHES, ids=[c["id"] for c in BATCHES])
def test_official_step_conversion_dedup_and_prompt_limit(case):
    rollouts = [
        CodeRollout(
            f"p{i}", "", item.get("reward", 0.0), "stdin", item["stdin"], None, "ok", "",
            completion=item.get("completion") or f"```python\n{item['program']}\n```",
        )
        for i, item in enumerate(case["items"])
        if item.get("data_source", "") != "exec_semantics_align"
    ]  # fmt: skip
    config = AlignmentConfig(
        semantics="official", max_prompt_tokens=case.get("max_prompt_length", 1024)
    )
    selected, _ = select_candidates(rollouts, semantics="official")
    tasks, counts = failures_to_tasks(
        selected, shared_pool().run_batch, step=1, config=config,
        count_tokens=_count_tokens(case.get("chars_per_token", 1)),
    )  # fmt: skip
    want = case["official"]
    assert len(tasks) == want["added"] == counts["tasks"]
    if case.get("nondeterministic"):
        return  # which duplicate the official pool keeps depends on completion order
    got = [
        {"stdin": t.stdin, "expected_output": t.expected_output, "variables": t.labels,
         "code": t.program}
        for t in tasks
    ]  # fmt: skip
    assert sorted(map(json.dumps, got)) == sorted(map(json.dumps, want["tasks"]))


# --------------------------------------------------------------------- rules, one by one


def test_capture_placement_rules():
    appended = capture_program("x = 1\nprint(x)")
    assert appended.startswith("x = 1\nprint(x)\n\n\n# alignment task")
    guarded = capture_program("def f():\n    pass\nif __name__ == '__main__':\n    f()\n# end\n")
    lines = guarded.split("\n")
    assert lines[3] == "    f()" and lines[4] == "    " and lines[5].startswith("    # alignment")
    assert lines[-1] == "# end"  # trailing comment lines stay after the capture
    # Both substrings anywhere (here a comment) select the indented insertion.
    assert capture_program("# __main__ / if __name__\nx = 1").split("\n")[2].startswith("    ")


def test_read_capture_rules():
    assert read_capture(" a\r\nb\r\n\n", "") == ("a\nb", {})
    assert read_capture("1\n", 'noise\n___V___\n{"x": NaN}\nmore')[1].keys() == {"x"}
    assert read_capture("1\n", "___V___\n{not json\n") == ("1", {})
    # A program printing a marker of its own: the line after the first one is read.
    assert read_capture("1\n", "___V___\n[1, 2]\n___V___\n{}\n") == ("1", [1, 2])


def test_official_complexity_counts_only_its_nodes():
    assert official_cyclomatic_complexity("x = 1 if a else 2\nassert x") == 1
    assert official_cyclomatic_complexity("if a and b or c:\n    pass\nwhile 0:\n    pass") == 5
    assert (
        official_cyclomatic_complexity("try:\n    pass\nexcept A:\n    pass\nexcept B:\n    pass")
        == 3
    )
    assert official_cyclomatic_complexity("print(1") == 999


def test_official_prompt_quirks():
    prompt = render_official_prompt("n = int(input())\nprint(n)", "5\n", ["n", "it's"])
    assert "Python code: ```pythonn = int(input())\nprint(n)```\n" in prompt  # F-1
    assert "Input: 5\n\nTarget local variables: ['n', \"it's\"]\n" in prompt  # F-2, F-3
    assert prompt.endswith('{"final_output": 3\n6, "variables": {"cnt": 2, "buf": [1, 2]}}\n')
    assert render_official_prompt("x", "", []).count("Target local variables: []") == 1
    # One pass: a fill-in text holding a fill point is not filled again (F-5).
    assert "```python{test_input}```\nInput: 7" in render_official_prompt("{test_input}", "7", [])
    assert TEMPLATE.count("{code}") == TEMPLATE.count("{test_input}") == 1


def test_official_task_round_trips_and_answers_score_one(tmp_path):
    task = AlignmentTask(
        program="x = float('nan')\nprint(1)", input_kind="stdin", stdin="\n", call=None,
        variables=("x", "d"), labels={"x": math.nan, "d": {"1": [1, 2]}},
        expected_output="1", problem_id="p", step=3, semantics="official",
    )  # fmt: skip
    saved = json.dumps(task.to_json(), allow_nan=False)  # strict JSON in the buffer file
    back = AlignmentTask.from_json(json.loads(saved))
    assert math.isnan(back.labels["x"]) and back.labels["d"] == {"1": [1, 2]}
    assert back.variables == task.variables and back.semantics == "official"
    AlignmentBuffer(tasks=[task]).save_jsonl(tmp_path / "buffer.jsonl")
    (loaded,) = AlignmentBuffer.load_jsonl(tmp_path / "buffer.jsonl").tasks
    assert loaded.to_json() == task.to_json()
    answer = "Reasoning.\n" + task.reference_answer()
    assert alignment_reward(answer, task.expected_output, task.labels, mode="official") == 1.0
    with pytest.raises(ValueError, match="official tasks run the program on stdin"):
        AlignmentTask("f", "call", "", ("f", "[]"), (), {}, 1, "p", 0, semantics="official")
    with pytest.raises(ValueError, match="'loops' is an improved rule"):
        AlignmentConfig(semantics="official", variable_policy="loops")


def test_old_buffer_tasks_load_as_improved():
    task = AlignmentTask("print(1)", "stdin", "", None, (), {}, "1\n", "p", 0)
    saved = task.to_json()
    del saved["semantics"]  # a task saved before semantics existed
    assert AlignmentTask.from_json(saved) == task


def test_official_selection_and_max_variables():
    fenced = "```python\nprint(1)\n```"
    rollouts = [
        CodeRollout("a", "", 1.0, "stdin", "\n", None, "ok", "", completion=fenced),
        CodeRollout("b", "", 0.0, "none", "", None, "ok", "", completion=fenced),
        CodeRollout("c", "", 0.0, "stdin", "\n", None, "timeout", "", completion="no code"),
        # The judge's run does not matter: a timed-out rollout is still converted.
        CodeRollout("d", "  print(2)  ", 0.0, "stdin", "\n", None, "timeout", ""),
    ]  # fmt: skip
    selected, counts = select_candidates(rollouts, semantics="official")
    assert [c.problem_id for c in selected] == ["d"] and selected[0].program == "print(2)"
    assert counts == {
        "drop/passed": 1, "drop/no_input": 1, "drop/no_program": 1, "selected": 1,
    }  # fmt: skip
    got = alignment_task_from_program("a = 1\nb = 2\nc = 3\nprint(c)", "", "official", 2)
    assert got == ("3", {"b": 2, "c": 3})
    assert alignment_task_from_program("   ", "", "official") is None


def test_code_rollout_hands_every_failed_rollout_to_the_official_conversion():
    """The rollout stage's candidates: improved needs the judged tests; official takes every
    rollout with reward <= 0, so code the reward found nothing in still becomes a task."""
    tests = TestSpec("stdio", ("2\n",), ("4\n",))
    completion = "```python\nn = int(input())\nprint(n + 1)\n```\n</think>Done."
    assert code_rollout("p", tests, completion, None, 0.0, None) is None
    candidate = code_rollout("p", tests, completion, None, 0.0, None, semantics="official")
    assert candidate.first_status == "not_run" and candidate.stdin == "2\n"
    assert code_rollout("p", tests, completion, None, 1.0, None, semantics="official") is None
    selected, _ = select_candidates([candidate], semantics="official")
    config = AlignmentConfig(semantics="official")
    (task,) = failures_to_tasks(selected, shared_pool().run_batch, step=4, config=config)[0]
    assert (task.expected_output, task.labels, task.step) == ("3", {"n": 2}, 4)

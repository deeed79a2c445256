"""Alignment buffer: eviction, the three sampling strategies, per-slot (official) draws
against the official buffer's results, ages, checkpoint round trip."""

import collections
import json
import pathlib

import numpy as np
import pytest

from coderl_jax.rl.alignment import AlignmentTask
from coderl_jax.rl.alignment_buffer import (
    BUFFER_FILENAME,
    SAMPLERS,
    SAMPLING_STRATEGIES,
    AlignmentBuffer,
    task_ages,
)

CASES = pathlib.Path(__file__).parents[1] / "fixtures" / "official"


def make_task(problem_id: str, step: int, i: int) -> AlignmentTask:
    return AlignmentTask(
        program=f"x = {i}\nprint(x)\n",
        input_kind="stdin",
        stdin="",
        call=None,
        variables=("x",),
        labels={"x": i},
        expected_output=f"{i}\n",
        problem_id=problem_id,
        step=step,
    )


def rng(seed=0):
    return np.random.default_rng(seed)


def test_capacity_evicts_oldest_first():
    buffer = AlignmentBuffer(capacity=5)
    assert buffer.add([make_task("a", 0, i) for i in range(3)]) == 0
    assert buffer.add([make_task("a", 1, i) for i in range(3, 7)]) == 2
    assert len(buffer) == 5
    assert [t.labels["x"] for t in buffer.tasks] == [2, 3, 4, 5, 6]
    assert buffer.latest_step == 1
    assert AlignmentBuffer().capacity == 20_000
    with pytest.raises(ValueError, match="step order"):
        buffer.add([make_task("a", 0, 9)])
    with pytest.raises(ValueError, match="capacity"):
        AlignmentBuffer(capacity=0)


def recent_buffer():
    buffer = AlignmentBuffer()
    buffer.add([make_task("old", 0, i) for i in range(10)])
    buffer.add([make_task("new", 1, i) for i in range(10, 14)])
    return buffer


def test_recent_from_latest_step_when_enough():
    buffer = recent_buffer()
    drawn = buffer.sample(3, "recent", rng())
    assert len({t.labels["x"] for t in drawn}) == 3
    assert all(t.step == 1 for t in drawn)
    assert {t.labels["x"] for t in buffer.sample(4, "recent", rng())} == {10, 11, 12, 13}
    assert buffer.sample(3, "recent", rng(5)) == buffer.sample(3, "recent", rng(5))


def test_recent_falls_back_to_newest():
    buffer = recent_buffer()
    drawn = buffer.sample(6, "recent", rng())
    assert [t.labels["x"] for t in drawn] == [8, 9, 10, 11, 12, 13]


def test_random_is_distinct_and_deterministic():
    buffer = recent_buffer()
    drawn = buffer.sample(8, "random", rng(3))
    assert len({t.labels["x"] for t in drawn}) == 8
    assert drawn == buffer.sample(8, "random", rng(3))
    assert drawn != buffer.sample(8, "random", rng(4))
    assert len(buffer.sample(14, "random", rng())) == 14
    assert buffer.sample(0, "random", rng()) == []


def balanced_buffer():
    tasks = [make_task("A", 0, i) for i in range(8)]
    tasks += [make_task("B", 0, i) for i in range(8, 10)]
    tasks += [make_task("C", 0, 10)]
    return AlignmentBuffer(tasks=tasks)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_balanced_over_problems(seed):
    buffer = balanced_buffer()
    per_problem = lambda tasks: collections.Counter(t.problem_id for t in tasks)
    # Round 1 takes one task from each problem.
    assert per_problem(buffer.sample(3, "balanced", rng(seed))) == {"A": 1, "B": 1, "C": 1}
    # Rounds 2 and 3: C is out after one task, B after two.
    drawn = buffer.sample(6, "balanced", rng(seed))
    assert per_problem(drawn) == {"A": 3, "B": 2, "C": 1}
    assert len({t.labels["x"] for t in drawn}) == 6
    counts = per_problem(buffer.sample(4, "balanced", rng(seed)))
    assert counts["C"] == 1 and sorted([counts["A"], counts["B"]]) == [1, 2]
    assert buffer.sample(4, "balanced", rng(seed)) == buffer.sample(4, "balanced", rng(seed))
    assert len(buffer.sample(11, "balanced", rng(seed))) == 11


def test_sample_rejects_bad_requests():
    buffer = balanced_buffer()
    with pytest.raises(ValueError, match="cannot sample 12 tasks from a buffer of 11"):
        buffer.sample(12, "random", rng())
    with pytest.raises(ValueError, match="strategy"):
        buffer.sample(1, "newest", rng())
    with pytest.raises(ValueError, match="cannot sample 1 tasks from a buffer of 0"):
        AlignmentBuffer().sample(1, "recent", rng(), per_slot=True)
    assert AlignmentBuffer().sample(0, "recent", rng(), per_slot=True) == []
    assert tuple(SAMPLERS) == SAMPLING_STRATEGIES  # one table, one list of names


def _official_buffer_cases():
    cases = []
    for name in ("buffer", "research_buffer"):
        with open(CASES / f"{name}.json") as f:
            cases += json.load(f)
    return cases


@pytest.mark.parametrize("case", _official_buffer_cases(), ids=lambda c: c["id"])
def test_per_slot_recent_draws_match_the_official_buffer(case):
    """Official "recent": each alignment slot is one draw from the latest step's tasks, with
    replacement (the official dataset calls sample_records(1) per slot). The draws' values
    come from another RNG (numpy's global one there); which steps, how many tasks and the
    repeats do not."""
    buffer = AlignmentBuffer(capacity=case.get("capacity", 20_000))
    for step, n in case["adds"]:
        buffer.add([make_task("p", step, i) for i in range(n)])
    draws = buffer.sample(case["draws"], "recent", rng(case["seed"]), per_slot=True)
    want = case["official"]
    assert len(buffer) == want["buffer_size"] and len(draws) == want["draws"]
    assert sorted({t.step for t in draws}) == want["draw_steps"]
    distinct = len({(t.step, t.labels["x"]) for t in draws})
    latest = len([t for t in buffer.tasks if t.step == buffer.latest_step])
    assert distinct <= latest and (latest > 1 or distinct == want["distinct_records"])
    if case["draws"] > latest:
        assert distinct < case["draws"]  # with replacement: repeats
    # u04: the official class, after an add of 0 records, returns the newest record on
    # every draw; training never makes such an add (a step without tasks adds nothing),
    # and here an empty add changes nothing, so the draws stay spread over that step.


def test_task_ages():
    buffer = recent_buffer()
    ages = task_ages(buffer.sample(6, "recent", rng()), step=4)
    np.testing.assert_array_equal(ages, [4, 4, 3, 3, 3, 3])
    assert ages.dtype == np.int64
    assert task_ages([], step=3).shape == (0,)


def test_jsonl_round_trip_is_exact(tmp_path):
    buffer = AlignmentBuffer(capacity=7)
    buffer.add([make_task("a", 0, 1), make_task("b", 2, 2)])
    call_task = AlignmentTask(
        # U+2028 and U+0085 stay unescaped in the file: they must not split its lines.
        program="def f(xs):\n    s = set(xs)  # a\u2028b\x85c\n    return (0.1, 'é')\n",
        input_kind="call",
        stdin="",
        call=("f", "[[3, 1]]"),
        variables=("s", "d", "big"),
        labels={
            "s": {"__set__": [1, 3]},
            "d": {"__dict__": [[{"__tuple__": [1, 2]}, 0.30000000000000004]]},
            "big": 12345678901234567890,
        },
        expected_output={"__tuple__": [0.1, "é"]},
        problem_id="c",
        step=3,
    )
    buffer.add([call_task])
    path = tmp_path / BUFFER_FILENAME
    buffer.save_jsonl(path)
    header = json.loads(path.read_text(encoding="utf-8").splitlines()[0])
    assert header == {
        "format": "coderl_jax.alignment_buffer",
        "version": 1,
        "capacity": 7,
        "size": 3,
    }
    assert not (tmp_path / f"{BUFFER_FILENAME}.tmp").exists()
    restored = AlignmentBuffer.load_jsonl(path)
    assert restored == buffer
    assert restored.tasks[2].call == ("f", "[[3, 1]]")
    # Same state -> same samples after resume.
    assert restored.sample(2, "random", rng(9)) == buffer.sample(2, "random", rng(9))
    smaller = AlignmentBuffer.load_jsonl(path, capacity=2)
    assert smaller.capacity == 2 and smaller.tasks == buffer.tasks[1:]


def test_load_reports_bad_files(tmp_path):
    path = tmp_path / "buf.jsonl"
    path.write_text("not json\n")
    with pytest.raises(ValueError, match="line 1"):
        AlignmentBuffer.load_jsonl(path)
    path.write_text('{"format": "other", "version": 1}\n')
    with pytest.raises(ValueError, match="header"):
        AlignmentBuffer.load_jsonl(path)
    AlignmentBuffer(tasks=[make_task("a", 0, 1)]).save_jsonl(path)
    lines = path.read_text().splitlines()
    path.write_text(lines[0] + '\n{"program": 1}\n')
    with pytest.raises(ValueError, match="line 2 is not an alignment task"):
        AlignmentBuffer.load_jsonl(path)
    path.write_text(lines[0] + "\n")
    with pytest.raises(ValueError, match="header says 1 tasks, file has 0"):
        AlignmentBuffer.load_jsonl(path)

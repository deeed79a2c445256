"""Per-step mixing counts (both semantics, one and several processes), drawing, the fixed
pool, and the walk: every problem once per epoch whatever the step's code count."""

import collections
import json
import pathlib

import numpy as np
import pytest

from coderl_jax.data.iterator import PromptIterator
from coderl_jax.rl.alignment_buffer import AlignmentBuffer
from coderl_jax.rl.batch import TaskKind
from coderl_jax.rl.mixture import (
    MixtureConfig,
    draw_mixed_batch,
    even_shares,
    load_alignment_pool,
    mixture_mode,
    plan_mixture,
    plan_step,
)
from tests.rl.test_alignment_buffer import make_task


@pytest.mark.parametrize(
    "batch_size, alpha, available, num_code, num_align, wanted",
    [
        (128, 0.6, 1000, 77, 51, 51),  # 0.6 * 128 = 76.8 -> 77 code
        (128, 0.6, 20, 108, 20, 51),  # buffer short: code fills 31 places
        (128, 0.6, 0, 128, 0, 51),  # empty buffer at the start of training
        (8, 0.6, 10, 5, 3, 3),  # 4.8 -> 5
        (5, 0.6, 10, 3, 2, 2),  # 3.0 -> 3
        (4, 0.6, 10, 2, 2, 2),  # 2.4 -> 2
        (5, 0.5, 10, 2, 3, 3),  # 2.5 -> 2 (round half to even)
        (8, 0.3, 4, 4, 4, 6),  # 2.4 -> 2 code, 6 wanted, 4 available
        (8, 1.0, 100, 8, 0, 0),  # plain GRPO ignores the buffer
        (8, 0.0, 8, 0, 8, 8),  # alignment_only
        (1, 0.6, 5, 1, 0, 0),  # 0.6 -> 1
    ],
)
def test_improved_plan_counts(batch_size, alpha, available, num_code, num_align, wanted):
    plan = plan_mixture(batch_size, alpha, available)
    assert (plan.num_code, plan.num_align, plan.align_wanted) == (num_code, num_align, wanted)
    assert plan.num_code + plan.num_align == batch_size
    assert plan.align_shortfall == wanted - num_align and plan.num_random_code == 0


@pytest.mark.parametrize(
    "batch_size, alpha, available, walk, random_code, num_align",
    [
        # The official sampler: A = int(B * 0.4) = 51 slots, 77 walked problems; the slots
        # hold random problems (with replacement) until the buffer holds A tasks.
        (128, 0.6, 0, 77, 51, 0),
        (128, 0.6, 50, 77, 51, 0),
        (128, 0.6, 51, 77, 0, 51),  # from now on 51 alignment slots, however few tasks
        (128, 0.6, 20000, 77, 0, 51),
        (7, 0.6, 9, 5, 0, 2),  # int(7 * 0.4) = 2 slots (improved: round(4.2) = 4 code, 3)
        (10, 0.6, 3, 6, 4, 0),  # int(4.0) = 4
        (10, 0.75, 2, 8, 0, 2),  # int(2.5) = 2
        (8, 1.0, 0, 8, 0, 0),
    ],
)
def test_official_plan_counts(batch_size, alpha, available, walk, random_code, num_align):
    plan = plan_mixture(batch_size, alpha, available, semantics="official")
    assert (plan.num_walk, plan.num_random_code, plan.num_align) == (walk, random_code, num_align)
    assert plan.num_code + plan.num_align == batch_size


def test_several_processes_split_the_global_counts():
    assert even_shares(77, 8) == [10, 10, 10, 10, 10, 9, 9, 9]
    plans = plan_step(128, 0.6, [100] * 8)
    assert [p.num_code for p in plans] == [10, 10, 10, 10, 10, 9, 9, 9]
    assert sum(p.num_align for p in plans) == 51 and {p.batch_size for p in plans} == {16}
    short = plan_step(128, 0.6, [0, 3, 100, 100, 100, 100, 100, 100])
    assert [p.num_align for p in short][:3] == [0, 3, 6]  # each from its own buffer
    # Official: the buffer is all processes' together; a process without tasks fills its
    # slots with random problems.
    official = plan_step(128, 0.6, [0, 6, 6, 6, 6, 6, 6, 15], semantics="official")
    assert sum(p.num_walk for p in official) == 77
    assert [p.num_align for p in official] == [0, 6, 6, 6, 6, 7, 7, 7]
    assert official[0].num_random_code == 6
    not_ready = plan_step(128, 0.6, [6] * 8, semantics="official")  # 48 < 51
    assert sum(p.num_random_code for p in not_ready) == 51
    with pytest.raises(ValueError, match="multiple of the 3 processes"):
        plan_step(128, 0.6, [0, 0, 0])


def test_plan_metrics():
    metrics = plan_mixture(10, 0.6, 3).metrics()
    assert metrics == {
        "rollout/mix/code_prompts": 7,
        "rollout/mix/random_code_prompts": 0,
        "rollout/mix/align_prompts": 3,
        "rollout/mix/align_wanted": 4,
        "rollout/mix/align_shortfall": 1,
        "rollout/mix/align_fraction": 0.3,
    }
    official = plan_mixture(10, 0.6, 3, semantics="official").metrics()
    assert official["rollout/mix/random_code_prompts"] == 4
    assert official["rollout/mix/align_shortfall"] == 4


def test_modes_and_validation():
    assert mixture_mode(1.0) == "grpo"
    assert mixture_mode(0.6) == "coderl_plus"
    assert mixture_mode(0.0) == "alignment_only"
    assert MixtureConfig().mode == "coderl_plus" and MixtureConfig().alpha == 0.6
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        MixtureConfig(alpha=1.5)
    with pytest.raises(ValueError, match="sampling"):
        MixtureConfig(sampling="oldest")
    with pytest.raises(ValueError, match="at least batch_size=8 tasks, got 5"):
        plan_mixture(8, 0.0, 5)
    with pytest.raises(ValueError, match="batch_size"):
        plan_mixture(0, 0.5, 5)
    with pytest.raises(ValueError, match="semantics"):
        plan_mixture(8, 0.5, 5, semantics="paper")


class CodeStream:
    """Stands in for the data iterator: hands out consecutive problem ids."""

    def __init__(self):
        self.next_id = 0

    def take(self, counts):
        (n,) = counts
        ids = [f"problem{self.next_id + i}" for i in range(n)]
        self.next_id += n
        return ids

    def sample(self, n, rng):
        return [f"random{i}" for i in range(n)]


def _draw(batch_size, config, problems, buffer, rng):
    plans = plan_step(batch_size, config.alpha, [len(buffer)], config.semantics)
    return draw_mixed_batch(plans, 0, config, problems, buffer, rng)


def test_draw_fills_with_code_while_buffer_is_small():
    buffer = AlignmentBuffer()
    code = CodeStream()
    rng = np.random.default_rng(0)
    config = MixtureConfig(alpha=0.5)
    first = _draw(6, config, code, buffer, rng)
    assert first.code == [f"problem{i}" for i in range(6)] and first.align == []
    assert first.plan.align_shortfall == 3
    buffer.add([make_task("p", 1, i) for i in range(2)])
    second = _draw(6, config, code, buffer, rng)
    assert len(second.code) == 4 and len(second.align) == 2
    assert second.code[0] == "problem6"
    assert second.kinds == [TaskKind.CODE] * 4 + [TaskKind.ALIGNMENT] * 2
    buffer.add([make_task("p", 2, i) for i in range(2, 10)])
    third = _draw(6, config, code, buffer, rng)
    assert len(third.code) == 3 and third.plan.align_shortfall == 0
    assert all(t.step == 2 for t in third.align)  # "recent": the newest step had enough


def test_official_draw_filler_then_slots_from_the_latest_step():
    buffer = AlignmentBuffer()
    code = CodeStream()
    rng = np.random.default_rng(0)
    config = MixtureConfig(alpha=0.6, semantics="official")
    first = _draw(10, config, code, buffer, rng)  # 6 walked + 4 random problems
    assert first.code == [f"problem{i}" for i in range(6)] + [f"random{i}" for i in range(4)]
    buffer.add([make_task("old", 1, i) for i in range(5)])
    buffer.add([make_task("new", 2, i) for i in range(2)])
    second = _draw(10, config, code, buffer, rng)
    assert second.code == [f"problem{i}" for i in range(6, 12)]
    assert len(second.align) == 4 and {t.problem_id for t in second.align} == {"new"}


def test_draw_grpo_and_alignment_only(tmp_path):
    buffer = AlignmentBuffer(tasks=[make_task("p", 0, i) for i in range(10)])
    rng = np.random.default_rng(1)
    grpo = _draw(4, MixtureConfig(alpha=1.0), CodeStream(), buffer, rng)
    assert len(grpo.code) == 4 and grpo.align == []

    path = tmp_path / "previous_run_buffer.jsonl"
    AlignmentBuffer(tasks=[make_task("old", 3, i) for i in range(3)]).save_jsonl(path)
    pool = load_alignment_pool([path], extra_tasks=[make_task("ref", 0, 99)])
    assert len(pool) == 4 and pool.capacity == 4
    assert [t.problem_id for t in pool.tasks] == ["ref", "old", "old", "old"]  # by step

    class NoCode(CodeStream):
        def take(self, counts):
            assert counts == [0], "alignment_only must not ask for code prompts"
            return []

    only = _draw(4, MixtureConfig(alpha=0.0, sampling="random"), NoCode(), pool, rng)
    assert only.code == [] and sorted(t.labels["x"] for t in only.align) == [0, 1, 2, 99]
    with pytest.raises(ValueError, match="no tasks"):
        load_alignment_pool([])


def test_draw_checks_code_source():
    class Short(CodeStream):
        def take(self, counts):
            return [1, 2, 3]

    with pytest.raises(ValueError, match="gave 3 of 4 problems"):
        _draw(4, MixtureConfig(alpha=1.0), Short(), AlignmentBuffer(), None)


@pytest.mark.parametrize("semantics", ["improved", "official"])
@pytest.mark.parametrize("processes", [1, 4])
def test_every_problem_once_per_epoch_while_the_buffer_grows(semantics, processes):
    """Steps draw 16 prompts; the code count changes as the buffers fill (improved: 16, then
    12, 11, 10; official: 10 walked throughout); no problem is skipped or repeated within an
    epoch, on one process or four (each drawing its own share)."""
    problems = [f"p{i}" for i in range(53)]
    iterators = [
        PromptIterator(problems, 16, seed=5, process_index=i, process_count=processes)
        for i in range(processes)
    ]
    buffers = [AlignmentBuffer() for _ in range(processes)]
    config = MixtureConfig(alpha=0.6, semantics=semantics)
    rng = np.random.default_rng(0)
    walk = []
    for step in range(40):
        plans = plan_step(16, config.alpha, [len(b) for b in buffers], semantics)
        for i in range(processes):
            mixed = draw_mixed_batch(plans, i, config, iterators[i], buffers[i], rng)
            assert len(mixed.code) + len(mixed.align) == 16 // processes
            walk += mixed.code[: plans[i].num_walk]
            buffers[i].add([make_task("t", step, k) for k in range(step % 3)])
    epochs = len(walk) // len(problems)
    assert epochs >= 7
    for epoch in range(epochs):
        chunk = walk[epoch * len(problems) : (epoch + 1) * len(problems)]
        assert collections.Counter(chunk) == collections.Counter(problems)
    assert len({it.state()["position"] for it in iterators}) == 1  # one state for all


def _sampler_cases():
    folder = pathlib.Path(__file__).parents[1] / "fixtures" / "official"
    cases = []
    for name in ("sampler", "research_sampler"):
        with open(folder / f"{name}.json") as f:
            cases += json.load(f)
    return cases


class SizedSource:
    """An alignment source of a given size whose draws are placeholders."""

    def __init__(self, size):
        self.size = size

    def __len__(self):
        return self.size

    def sample(self, n, strategy, rng, per_slot=False):
        assert per_slot and strategy == "recent"
        return [make_task("t", 0, i) for i in range(n)]


@pytest.mark.parametrize("case", _sampler_cases(), ids=lambda c: c["id"])
def test_official_batches_match_the_official_sampler(case):
    """Per batch: walked + random problems and alignment slots as the official sampler makes
    them, buffer size by buffer size; every problem walked once per epoch. One difference,
    by design: the official last batch of an epoch is short (N mod 77 walked problems plus
    the slots); here every step has B prompts, the walk going on into the next epoch."""
    n, batch = case["dataset_len"], case["batch_size"]
    alpha = 1 - case["ratio"]
    config = MixtureConfig(alpha=alpha, semantics="official")
    iterator = PromptIterator(list(range(n)), batch, seed=1, process_index=0, process_count=1)
    rng = np.random.default_rng(0)
    want = case["official"]
    assert want["rollout_per_batch"] == batch - plan_mixture(batch, alpha, 0, "official").num_walk
    sizes = case["buffer_sizes"]
    batch_index = 0
    for epoch in want["epochs"]:
        walked = []
        for official in epoch["batches"]:
            size = sizes[min(batch_index, len(sizes) - 1)]
            batch_index += 1
            plan = plan_mixture(batch, alpha, size, "official")
            mixed = draw_mixed_batch([plan], 0, config, iterator, SizedSource(size), rng)
            walked += mixed.code[: plan.num_walk]
            last_short = official["size"] < batch
            if not last_short:
                assert (len(mixed.code), len(mixed.align)) == (
                    official["code"],
                    official["alignment"],
                )
            else:  # short official batch: the same slots, the walk's remainder plus more
                assert len(mixed.align) == official["alignment"] == plan.num_align
        assert sorted(walked[:n]) == list(range(n)) and len(walked) >= n
        assert len(set(walked[:n])) == epoch["distinct_problems_seen"]

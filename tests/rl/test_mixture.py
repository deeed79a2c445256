"""Per-step mixing counts for several alpha and buffer sizes; drawing and the fixed pool."""

import numpy as np
import pytest

from coderl_jax.rl.alignment_buffer import AlignmentBuffer
from coderl_jax.rl.batch import TaskKind
from coderl_jax.rl.mixture import (
    MixtureConfig,
    draw_mixed_batch,
    load_alignment_pool,
    mixture_mode,
    plan_mixture,
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
def test_plan_counts(batch_size, alpha, available, num_code, num_align, wanted):
    plan = plan_mixture(batch_size, alpha, available)
    assert (plan.num_code, plan.num_align, plan.align_wanted) == (num_code, num_align, wanted)
    assert plan.num_code + plan.num_align == batch_size
    assert plan.align_shortfall == wanted - num_align


def test_plan_metrics():
    metrics = plan_mixture(10, 0.6, 3).metrics()
    assert metrics == {
        "rollout/mix/code_prompts": 7,
        "rollout/mix/align_prompts": 3,
        "rollout/mix/align_wanted": 4,
        "rollout/mix/align_shortfall": 1,
        "rollout/mix/align_fraction": 0.3,
    }


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


class CodeStream:
    """Stands in for the data iterator: hands out consecutive problem ids."""

    def __init__(self):
        self.next_id = 0

    def __call__(self, n):
        ids = [f"problem{self.next_id + i}" for i in range(n)]
        self.next_id += n
        return ids


def test_draw_fills_with_code_while_buffer_is_small():
    buffer = AlignmentBuffer()
    code = CodeStream()
    rng = np.random.default_rng(0)
    config = MixtureConfig(alpha=0.5)
    first = draw_mixed_batch(6, config, code, buffer, rng)
    assert first.code == [f"problem{i}" for i in range(6)] and first.align == []
    assert first.plan.align_shortfall == 3
    buffer.add([make_task("p", 1, i) for i in range(2)])
    second = draw_mixed_batch(6, config, code, buffer, rng)
    assert len(second.code) == 4 and len(second.align) == 2
    assert second.code[0] == "problem6"
    assert second.kinds == [TaskKind.CODE] * 4 + [TaskKind.ALIGNMENT] * 2
    buffer.add([make_task("p", 2, i) for i in range(2, 10)])
    third = draw_mixed_batch(6, config, code, buffer, rng)
    assert len(third.code) == 3 and third.plan.align_shortfall == 0
    assert all(t.step == 2 for t in third.align)  # "recent": the newest step had enough


def test_draw_grpo_and_alignment_only(tmp_path):
    buffer = AlignmentBuffer(tasks=[make_task("p", 0, i) for i in range(10)])
    rng = np.random.default_rng(1)
    grpo = draw_mixed_batch(4, MixtureConfig(alpha=1.0), CodeStream(), buffer, rng)
    assert len(grpo.code) == 4 and grpo.align == []

    path = tmp_path / "previous_run_buffer.jsonl"
    AlignmentBuffer(tasks=[make_task("old", 3, i) for i in range(3)]).save_jsonl(path)
    pool = load_alignment_pool([path], extra_tasks=[make_task("ref", 0, 99)])
    assert len(pool) == 4 and pool.capacity == 4
    assert [t.problem_id for t in pool.tasks] == ["ref", "old", "old", "old"]  # by step

    def no_code(n):
        raise AssertionError("alignment_only must not ask for code prompts")

    only = draw_mixed_batch(4, MixtureConfig(alpha=0.0, sampling="random"), no_code, pool, rng)
    assert only.code == [] and sorted(t.labels["x"] for t in only.align) == [0, 1, 2, 99]
    with pytest.raises(ValueError, match="no tasks"):
        load_alignment_pool([])


def test_draw_checks_code_source():
    with pytest.raises(ValueError, match=r"next_code\(4\) returned 3"):
        draw_mixed_batch(4, MixtureConfig(alpha=1.0), lambda n: [1, 2, 3], AlignmentBuffer(), None)

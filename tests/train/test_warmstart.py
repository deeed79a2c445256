"""Warm-start batching, packing, data mix, schedule, totals and its logged NLL (the update
is the tested RL step)."""

import types

import jax
import numpy as np
import pytest

from coderl_jax.config import ConfigError
from coderl_jax.models import transformer
from coderl_jax.parallel import mesh as mesh_lib
from coderl_jax.rl.alignment import AlignmentConfig
from coderl_jax.rl.batch import TaskKind
from coderl_jax.train import warmstart
from coderl_jax.train.config import TrainConfig
from coderl_jax.train.optim import learning_rate_schedule
from coderl_jax.train.warmstart import (
    WarmStartConfig,
    length_bucketed_batches,
    mixed_batches,
    pack_examples,
    phase_totals,
    sft_train_config,
)


def test_pack_examples_right_pads_with_loss_on_responses():
    examples = [((5, 6, 7), (8, 9), 0), ((5,), (8, 9, 10), 1)]
    batch = pack_examples(examples, width=6, pad_id=0)
    np.testing.assert_array_equal(batch.tokens, [[5, 6, 7, 8, 9, 0], [5, 8, 9, 10, 0, 0]])
    np.testing.assert_array_equal(batch.attention_mask, [[1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 0, 0]])
    np.testing.assert_array_equal(batch.loss_mask, [[0, 0, 0, 1, 1, 0], [0, 1, 1, 1, 0, 0]])
    np.testing.assert_array_equal(batch.positions[:, :4], [[0, 1, 2, 3], [0, 1, 2, 3]])
    np.testing.assert_array_equal(batch.task_kind, [0, 1])
    np.testing.assert_array_equal(batch.advantages, [1.0, 1.0])
    batch.validate()


def test_length_bucketed_batches_cover_epochs_with_similar_lengths():
    rng = np.random.default_rng(0)
    examples = [(tuple(range(int(n))), (1,), 0) for n in rng.integers(1, 200, size=640)]
    batches = length_bucketed_batches(examples, batch_size=8, num_batches=100, seed=3)
    assert len(batches) == 100 and all(len(b) == 8 for b in batches)
    first_epoch = [id(e) for b in batches[:80] for e in b]
    assert len(set(first_epoch)) == 640  # one epoch = every example once
    spread = np.mean([np.ptp([len(p) for p, _, _ in b]) for b in batches])
    assert spread < 40  # random batches of 8 would spread ~150 tokens
    assert length_bucketed_batches(examples, 8, 100, seed=3) == batches  # deterministic
    assert length_bucketed_batches(examples, 8, 100, seed=4) != batches


def test_mixed_batches_hold_the_alignment_share_in_every_batch():
    rng = np.random.default_rng(1)
    code = [(tuple(range(int(n))), (1,), TaskKind.CODE) for n in rng.integers(1, 50, 300)]
    align = [(tuple(range(int(n))), (2,), TaskKind.ALIGNMENT) for n in rng.integers(60, 99, 200)]
    batches = mixed_batches(code + align, batch_size=10, num_batches=50, seed=0, fraction=0.4)
    assert len(batches) == 50 and all(len(b) == 10 for b in batches)
    assert all(sum(k == TaskKind.ALIGNMENT for _, _, k in b) == 4 for b in batches)
    # Pooled, length bucketing separates kinds of different lengths: at most the batch at the
    # boundary of each window of 16 batches mixes them.
    pooled = length_bucketed_batches(code + align, 10, 50, seed=0)
    assert sum(len({k for _, _, k in b}) > 1 for b in pooled) <= 50 / 16 + 1
    assert mixed_batches(code + align, 10, 50, seed=0, fraction=0.4) == batches
    only_code = mixed_batches(code + align, 10, 5, seed=0, fraction=0.0)
    assert all(k == TaskKind.CODE for b in only_code for _, _, k in b)
    with pytest.raises(ValueError, match="200 examples cannot fill a batch of 201"):
        mixed_batches(code + align, 201, 1, seed=0, fraction=1.0)


def test_sft_config_keeps_the_run_settings_but_drops_rl_terms():
    base = TrainConfig(logprob_chunk_size=64, kl_coef=0.001, ppo_epochs=2, remat_policy="full")
    sft = sft_train_config(WarmStartConfig(steps=100, learning_rate=2e-3), base)
    assert sft.logprob_chunk_size == 64 and sft.remat_policy == "full"
    assert sft.kl_coef == 0 and sft.entropy_coef == 0 and sft.updates_per_batch == 1
    assert sft.learning_rate == 2e-3 and sft.warmup_steps == 10 and sft.lr_schedule == "cosine"
    assert sft.decay_steps == 90 and sft.final_lr_ratio == 0.1 and sft.num_micro_batches == 1


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_sft_schedule_can_replay_the_rl_phase_schedule(schedule):
    """A continuation given the RL phase's optimizer settings (as experiments/study.py does
    for sft_continue) steps through the same learning rates, update by update."""
    rl = TrainConfig(
        learning_rate=3e-4, warmup_steps=2, lr_schedule=schedule, decay_steps=30,
        final_lr_ratio=0.2, num_micro_batches=4,
    )  # fmt: skip
    sft = sft_train_config(
        WarmStartConfig(
            steps=30, batch_size=256, learning_rate=3e-4, lr_schedule=schedule,
            warmup_steps=2, decay_steps=30, final_lr_ratio=0.2, num_micro_batches=4,
        ),
        rl.replace(learning_rate=1.0, lr_schedule="cosine", decay_steps=7),
    )  # fmt: skip
    assert sft.num_micro_batches == 4
    updates = np.arange(40)
    np.testing.assert_allclose(
        [float(learning_rate_schedule(sft)(u)) for u in updates],
        [float(learning_rate_schedule(rl)(u)) for u in updates],
        rtol=1e-6,
    )


@pytest.mark.parametrize(
    "changes, field",
    [({"lr_schedule": "linear"}, "lr_schedule"), ({"warmup_steps": -1}, "warmup_steps"),
     ({"decay_steps": 0}, "decay_steps"), ({"final_lr_ratio": 1.5}, "final_lr_ratio"),
     ({"batch_size": 6, "num_micro_batches": 4}, "batch_size")],
)  # fmt: skip
def test_bad_settings_name_their_field(changes, field):
    with pytest.raises(ConfigError, match=field):
        WarmStartConfig(**changes)


def _fake_example_sources(monkeypatch):
    """Prompts and reference tasks without a tokenizer or a sandbox: a code prompt is the
    problem's number, a task converts from every problem whose number is not 0 mod 5."""
    monkeypatch.setattr(
        warmstart, "code_prompt", lambda p, tok: types.SimpleNamespace(token_ids=(p.n,))
    )
    monkeypatch.setattr(
        warmstart,
        "alignment_prompt",
        lambda task, tok, style: types.SimpleNamespace(token_ids=(1000 + task.n,)),
    )

    def reference_tasks(problems, run_batch, step, config):
        tasks = [
            types.SimpleNamespace(n=p.n, reference_answer=lambda: "{}") for p in problems if p.n % 5
        ]
        return tasks, {"tasks": len(tasks), "dropped": len(problems) - len(tasks)}

    monkeypatch.setattr(warmstart, "reference_tasks", reference_tasks)
    problems = [types.SimpleNamespace(n=n, reference_solution="print(1)") for n in range(100)]
    return problems, lambda text, add_special_tokens: {"input_ids": [7] * len(text)}


@pytest.mark.parametrize("fraction, code, align", [(0.0, 100, 0), (0.4, 100, 53), (1.0, 0, 80)])
def test_examples_mix_code_and_alignment_answers(monkeypatch, fraction, code, align):
    problems, tokenizer = _fake_example_sources(monkeypatch)
    examples, counts = warmstart.warm_start_examples(
        problems, tokenizer, "<end>", None, fraction, AlignmentConfig(),
        np.random.default_rng(0),
    )  # fmt: skip
    kinds = [kind for _, _, kind in examples]
    assert kinds.count(TaskKind.CODE) == counts["code_examples"] == code
    assert kinds.count(TaskKind.ALIGNMENT) == counts.get("alignment_examples", 0)
    # 0.4: 67 problems chosen for 100 code examples (2:3), those = 0 mod 5 fail to convert.
    assert abs(kinds.count(TaskKind.ALIGNMENT) - align) <= 3


def test_phase_totals_count_rows_and_tokens_like_the_rl_step():
    code, align = ((1, 2, 3), (4, 5), TaskKind.CODE), ((1,), (6, 7, 8), TaskKind.ALIGNMENT)
    totals = phase_totals([[code, align], [code, code]])
    assert totals == {
        "warm_start/updates": 2,
        "warm_start/sequences": 4,
        "warm_start/alignment_sequences": 1,
        "warm_start/tokens": 2 + 3 + 2 + 2,  # the loss mask of pack_examples
        "warm_start/tokens_total": 5 + 4 + 5 + 5,  # its attention mask
    }
    batch = pack_examples([code, align], width=8, pad_id=0)
    assert batch.loss_mask.sum() == 5 and batch.attention_mask.sum() == 9


def test_logged_nll_is_of_a_fixed_sample_whatever_the_batch_order(model_config):
    # Short and long responses: length-bucketed batches start differently for each order.
    rng = np.random.default_rng(0)
    examples = [
        (tuple(rng.integers(1, 96, 3)), tuple(rng.integers(1, 96, n)), TaskKind.CODE)
        for n in [2] * 6 + [30] * 6
    ]
    assert length_bucketed_batches(examples, 4, 1, 1) != length_bucketed_batches(examples, 4, 1, 2)
    mesh = mesh_lib.make_mesh(1, 1, 1, devices=jax.devices()[:1])
    params = jax.jit(transformer.init_params, static_argnums=0)(model_config, jax.random.key(0))

    def first_nll(data_seed: int) -> float:
        config = WarmStartConfig(steps=1, batch_size=4, data_seed=data_seed)
        _, history = warmstart.run_warm_start(
            params, model_config, mesh, examples, config, TrainConfig(), seed=0, pad_id=0
        )
        return history[0]["warm_start/nll"]

    nll = first_nll(1)
    assert first_nll(2) == nll  # the same rows, though the first batches differ
    assert 0.5 * np.log(96) < nll < 2 * np.log(96)  # an untrained model's NLL

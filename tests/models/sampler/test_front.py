"""The sampler end to end on tiny random checkpoints: greedy parity with transformers (both
decoders), continuous vs static decoding on the same keys, length limits, early hand-off,
the output layout, shared prefixes, determinism and sharding."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest
import torch
import transformers

from coderl_jax.models import hf_io
from coderl_jax.models.sampler import FINISH_LENGTH, FINISH_STOP, Sampler, SamplingConfig
from coderl_jax.parallel import mesh as mesh_lib

VOCAB = 97
PROMPTS = ([5, 17, 3, 44, 9, 61, 2], [8, 70], [33, 12, 90, 4])


def _hf_model(tmp_path_factory, model_type: str):
    common = dict(
        vocab_size=VOCAB,
        hidden_size=48,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        # Larger than HF's 0.02 so greedy argmaxes are far from ties between fp32 backends.
        initializer_range=0.3,
        tie_word_embeddings=False,
        pad_token_id=0,
        eos_token_id=1,
    )
    torch.manual_seed(0)
    if model_type == "qwen2":
        config = transformers.Qwen2Config(use_sliding_window=False, **common)
        model = transformers.Qwen2ForCausalLM(config)
    else:
        config = transformers.LlamaConfig(
            rope_scaling={
                "rope_type": "llama3",
                "factor": 8.0,
                "low_freq_factor": 1.0,
                "high_freq_factor": 4.0,
                "original_max_position_embeddings": 64,
            },
            **common,
        )
        model = transformers.LlamaForCausalLM(config)
    model.eval()
    path = str(tmp_path_factory.mktemp(model_type))
    model.save_pretrained(path)
    return path, model


@pytest.fixture(scope="module", params=["qwen2", "llama"])
def hf_pair(request, tmp_path_factory):
    path, model = _hf_model(tmp_path_factory, request.param)
    config, params = hf_io.load_pretrained(path, param_dtype="float32", compute_dtype="float32")
    return config, params, model


def _hf_greedy(model, prompts, max_new, stop_id):
    width = max(map(len, prompts))
    ids = torch.zeros((len(prompts), width), dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, p in enumerate(prompts):
        ids[row, width - len(p) :] = torch.tensor(p)
        mask[row, width - len(p) :] = 1
    with torch.no_grad():
        out = model.generate(
            input_ids=ids,
            attention_mask=mask,
            max_new_tokens=max_new,
            do_sample=False,
            pad_token_id=0,
            eos_token_id=stop_id,
        )
    new = out[:, width:].numpy()
    return np.pad(new, ((0, 0), (0, max_new - new.shape[1])), constant_values=0)


MAX_NEW = 12


@pytest.fixture(scope="module")
def greedy_run(hf_pair):
    """Ours and transformers' greedy tokens, with a stop id the model emits mid-window."""
    config, params, model = hf_pair
    unstopped = _hf_greedy(model, PROMPTS, MAX_NEW, stop_id=1)
    stop_id = int(unstopped[0, 5])
    assert stop_id not in (0, 1) and stop_id not in unstopped[0, :5], "pick another probe column"
    cfg = SamplingConfig(MAX_NEW, greedy=True, stop_ids=(stop_id,), pad_id=0, prompt_buckets=(8,))
    # Continuous: 2 slots for 3 prompts (a refill), pages of 4, segments of 5 steps.
    small = dataclasses.replace(cfg, num_slots=2, page_size=4, segment_steps=5)
    ours = {
        "continuous": Sampler(config, small).sample(params, PROMPTS, 1, jax.random.key(0)),
        "static": Sampler(config, dataclasses.replace(cfg, decoder="static")).sample(
            params, PROMPTS, 1, jax.random.key(0)
        ),
    }
    return ours, _hf_greedy(model, PROMPTS, MAX_NEW, stop_id), stop_id


@pytest.mark.parametrize("decoder", ["continuous", "static"])
def test_greedy_equals_transformers_generate(greedy_run, decoder):
    ours, theirs, _ = greedy_run
    np.testing.assert_array_equal(np.asarray(ours[decoder].completion_tokens), theirs)


@pytest.mark.parametrize("decoder", ["continuous", "static"])
def test_stop_token_ends_completion_and_loss_mask(greedy_run, decoder):
    ours, _, stop_id = greedy_run
    out = jax.tree.map(np.asarray, ours[decoder])
    bucket = 8
    assert out.finish_reason[0] == FINISH_STOP and out.completion_lengths[0] == 6
    for row, prompt in enumerate(PROMPTS):
        completion = out.completion_tokens[row]
        stops = np.flatnonzero(completion == stop_id)
        length = stops[0] + 1 if stops.size else MAX_NEW
        assert out.completion_lengths[row] == length
        assert out.finish_reason[row] == (FINISH_STOP if stops.size else FINISH_LENGTH)
        assert np.all(completion[length:] == 0) and np.all(out.logprobs[row, length:] == 0)
        assert np.all(out.logprobs[row, :length] < 0)
        expected_loss = np.zeros(bucket + MAX_NEW, np.int32)
        expected_loss[bucket : bucket + length] = 1
        np.testing.assert_array_equal(out.loss_mask[row], expected_loss)
        expected_attn = expected_loss.copy()
        expected_attn[bucket - len(prompt) : bucket] = 1
        np.testing.assert_array_equal(out.attention_mask[row], expected_attn)
        np.testing.assert_array_equal(out.tokens[row, bucket - len(prompt) : bucket], prompt)
        np.testing.assert_array_equal(out.tokens[row, bucket:], completion)
        real = expected_attn == 1
        np.testing.assert_array_equal(out.positions[row, real], np.arange(len(prompt) + length))


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    # Built by transformers and loaded through hf_io: far faster than eager Flax init on CPU.
    path, _ = _hf_model(tmp_path_factory, "qwen2")
    return hf_io.load_pretrained(path, param_dtype="float32", compute_dtype="float32") + (path,)


SAMPLED_PROMPTS = [*PROMPTS, [6]]


@pytest.fixture(scope="module")
def sampled(tiny_model):
    """Temperature-1 samples: 4 prompts x G=2 (8 rows: shardable over 8 devices)."""
    config, params, _ = tiny_model
    cfg = SamplingConfig(8, temperature=1.0, pad_id=0, prompt_buckets=(8,))
    sampler = Sampler(config, cfg)
    out = sampler.sample(params, SAMPLED_PROMPTS, 2, jax.random.key(3))
    return sampler, jax.tree.map(np.asarray, out)


def test_continuous_with_few_slots_and_pages_equals_static(tiny_model, sampled):
    """Same key, same per-sample randomness: 3 slots sharing 4 pages of 2 tokens (one
    completion's worth, so slots are preempted and retried) draw the tokens that all 8 rows
    at once draw, and so does the static decoder."""
    config, params, _ = tiny_model
    sampler, reference = sampled
    tight = Sampler(
        config,
        dataclasses.replace(sampler.config, num_slots=3, page_size=2, num_pages=4, segment_steps=3),
    )
    static = Sampler(config, dataclasses.replace(sampler.config, decoder="static"))
    for other in (tight, static):
        out = other.sample(params, SAMPLED_PROMPTS, 2, jax.random.key(3))
        np.testing.assert_array_equal(
            np.asarray(out.completion_tokens), reference.completion_tokens
        )
        np.testing.assert_allclose(np.asarray(out.logprobs), reference.logprobs, atol=1e-5)
    assert tight.last_stats["sampler/preemptions"] > 0
    assert tight.last_stats["sampler/kv_peak_bytes"] <= tight.last_stats["sampler/kv_pool_bytes"]


def test_length_limits_early_hand_off_and_layout(tiny_model, sampled):
    config, params, _ = tiny_model
    sampler, reference = sampled
    cfg = dataclasses.replace(sampler.config, num_slots=3, segment_steps=2)
    limits = np.asarray([1, 8, 3, 5, 2, 8, 4, 6])
    handed = []
    out = Sampler(config, cfg).sample(
        params, SAMPLED_PROMPTS, 2, jax.random.key(3), on_finished=handed.append,
        max_lengths=limits,
    )  # fmt: skip
    np.testing.assert_array_equal(out.completion_lengths, limits)
    assert np.all(out.finish_reason == FINISH_LENGTH)
    for row, limit in enumerate(limits):  # a shorter limit cuts the same draws short
        np.testing.assert_array_equal(
            out.completion_tokens[row, :limit], reference.completion_tokens[row, :limit]
        )
        assert np.all(out.completion_tokens[row, limit:] == 0)
    assert len(handed) > 1  # finished samples come out while others still decode
    assert sorted(np.concatenate([h.index for h in handed])) == list(range(8))
    for h in handed:
        np.testing.assert_array_equal(h.completion_tokens, out.completion_tokens[h.index])
        np.testing.assert_array_equal(h.completion_lengths, limits[h.index])
    assert out.prompt_width == 8 and sampler.prompt_width(SAMPLED_PROMPTS) == 8
    aligned = out.token_logprobs()
    assert aligned.shape == out.tokens.shape
    np.testing.assert_array_equal(aligned[:, :8], 0.0)
    np.testing.assert_array_equal(aligned[:, 8:], out.logprobs)


def test_shared_prefix_equals_separate_prefills(tiny_model, sampled):
    config, params, _ = tiny_model
    sampler, shared = sampled
    repeated = [p for p in SAMPLED_PROMPTS for _ in range(2)]  # row n = prompt n // G
    separate = Sampler(config, sampler.config).sample(params, repeated, 1, jax.random.key(3))
    np.testing.assert_array_equal(shared.completion_tokens, np.asarray(separate.completion_tokens))
    np.testing.assert_allclose(shared.logprobs, np.asarray(separate.logprobs), atol=1e-5)
    # Samples of one prompt differ from each other (the G rows are not copies).
    assert not np.array_equal(shared.completion_tokens[0::2], shared.completion_tokens[1::2])


def test_fixed_key_is_deterministic(tiny_model, sampled):
    _, params, _ = tiny_model
    sampler, first = sampled
    again = sampler.sample(params, SAMPLED_PROMPTS, 2, jax.random.key(3))
    other = sampler.sample(params, SAMPLED_PROMPTS, 2, jax.random.key(4))
    np.testing.assert_array_equal(first.completion_tokens, np.asarray(again.completion_tokens))
    assert not np.array_equal(first.completion_tokens, np.asarray(other.completion_tokens))
    assert sampler.metrics() == {"sampler/compiles": 1}


def test_top_k_one_equals_greedy_and_buckets_compile_once(tiny_model):
    config, params, _ = tiny_model
    greedy = Sampler(config, SamplingConfig(8, greedy=True, prompt_buckets=(4, 8)))
    top1 = Sampler(config, SamplingConfig(8, temperature=0.7, top_k=1, prompt_buckets=(8,)))
    expected = greedy.sample(params, PROMPTS, 2, jax.random.key(0))
    got = top1.sample(params, PROMPTS, 2, jax.random.key(5))
    np.testing.assert_array_equal(
        np.asarray(got.completion_tokens), np.asarray(expected.completion_tokens)
    )
    np.testing.assert_allclose(np.asarray(got.logprobs), 0.0, atol=1e-6)  # a point mass
    assert greedy.metrics()["sampler/compiles"] == 1
    greedy.sample(params, [[3, 4, 5, 6, 7, 8], [9], [1]], 2, jax.random.key(0))  # bucket 8
    assert greedy.metrics()["sampler/compiles"] == 1
    short = greedy.sample(params, [[3, 4], [9], [7, 7, 7]], 2, jax.random.key(0))  # bucket 4
    assert short.tokens.shape == (6, 4 + 8)
    assert greedy.metrics()["sampler/compiles"] == 2
    with pytest.raises(ValueError, match="largest prompt bucket 8"):
        greedy.pad_prompts([list(range(9))])


EIGHT_DEVICES = pytest.mark.skipif(jax.device_count() < 8, reason="needs 8 devices (conftest)")


@EIGHT_DEVICES
@pytest.mark.parametrize("decoder", ["continuous", "static"])
def test_sharded_on_eight_fake_devices_matches_one_device(tiny_model, sampled, decoder):
    """8 rows over 8 batch shards (4 prompts: 4 % 8 != 0, each shard's pool holds its row's
    prompt), and over data=2 x fsdp=2 batch shards with tensor=2 (kv heads split too):
    the tokens of the one-device continuous decoder (which equal the static decoder's)."""
    config, params, _ = tiny_model
    unsharded, reference = sampled
    cfg, key = dataclasses.replace(unsharded.config, decoder=decoder), jax.random.key(3)
    for shape, rows_per_shard in [((8, 1, 1), 1), ((2, 2, 2), 2)]:
        mesh = mesh_lib.make_mesh(*shape)
        sharded = jax.device_put(params, mesh_lib.param_shardings(config, mesh))
        sampler = Sampler(config, cfg, mesh)
        out = sampler.sample(sharded, SAMPLED_PROMPTS, 2, key)
        tokens = out.completion_tokens
        if decoder == "static":
            assert tokens.sharding.shard_shape(tokens.shape)[0] == rows_per_shard, shape
        else:  # one shard's pool: its prompt's page, a page per row and the scratch page
            page_bytes = 2 * 2 * 2 * 16 * 12 * 4  # k and v, L=2, K=2, 16 tokens, Dh=12, fp32
            pool = sampler.last_stats["sampler/kv_pool_bytes"]
            assert pool == (1 + rows_per_shard + 1) * page_bytes, shape
        np.testing.assert_array_equal(np.asarray(tokens), reference.completion_tokens)
        np.testing.assert_allclose(
            np.asarray(out.logprobs), reference.logprobs, atol=2e-5
        )  # float32 rounding: layouts differ
    with pytest.raises(ValueError, match="multiple of the 8"):
        Sampler(config, cfg, mesh_lib.make_mesh(8, 1, 1)).sample(params, PROMPTS, 1, key)


@EIGHT_DEVICES
def test_sharded_continuous_refills_slots_from_its_own_rows(tiny_model):
    """24 rows over 8 shards, 3 rows each, so shards share prompts (rows 2-3 of prompt 1 are
    on shards 0 and 1); 2 slots per shard and 4 pages of 2 tokens make each shard refill
    and preempt on its own: the one-device continuous decoder's tokens all the same."""
    config, params, _ = tiny_model
    prompts = [[3 + i, 7, 11 + 2 * i, 5][: 1 + i % 4] for i in range(12)]
    cfg = SamplingConfig(8, temperature=1.0, pad_id=0, prompt_buckets=(8,))
    key = jax.random.key(7)
    reference = jax.tree.map(np.asarray, Sampler(config, cfg).sample(params, prompts, 2, key))
    tight = dataclasses.replace(cfg, num_slots=2, page_size=2, num_pages=4, segment_steps=3)
    mesh = mesh_lib.make_mesh(8, 1, 1)
    sharded = jax.device_put(params, mesh_lib.param_shardings(config, mesh))
    sampler = Sampler(config, tight, mesh)
    handed = []
    out = sampler.sample(sharded, prompts, 2, key, on_finished=handed.append)
    np.testing.assert_array_equal(out.completion_tokens, reference.completion_tokens)
    np.testing.assert_allclose(
        out.logprobs, reference.logprobs, atol=2e-5
    )  # float32 rounding: layouts differ
    np.testing.assert_array_equal(out.tokens, reference.tokens)
    assert sampler.last_stats["sampler/preemptions"] > 0
    assert sorted(np.concatenate([h.index for h in handed])) == list(range(24))


def test_check_parity_generate_prints_greedy_match(tiny_model, capsys):
    from coderl_jax.tools import check_parity

    *_, path = tiny_model
    assert check_parity.main(["--hf_dir", path, "--generate", "6"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-2] == "greedy_token_match=1"
    assert lines[-1].startswith("max_abs_logit_diff=")
    assert float(lines[-1].split("=")[1]) < 1e-4

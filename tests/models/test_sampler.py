"""Sampler correctness: greedy parity with transformers, shared prefix, sampling controls."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers

from coderl_jax.models import hf_io
from coderl_jax.models import sampler as sampler_lib
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
    ours = Sampler(config, cfg).sample(params, PROMPTS, 1, jax.random.key(0))
    return ours, _hf_greedy(model, PROMPTS, MAX_NEW, stop_id), stop_id


def test_greedy_equals_transformers_generate(greedy_run):
    ours, theirs, _ = greedy_run
    np.testing.assert_array_equal(np.asarray(ours.completion_tokens), theirs)


def test_stop_token_ends_completion_and_loss_mask(greedy_run):
    ours, _, stop_id = greedy_run
    out = jax.tree.map(np.asarray, ours)
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


def test_temperature_zero_is_argmax():
    logits = jnp.asarray([[0.1, 2.0, -1.0], [3.0, 2.9, 0.0]])
    tokens, logprobs = sampler_lib.sample_tokens(
        logits, jnp.zeros(2), SamplingConfig(temperature=0.0)
    )
    np.testing.assert_array_equal(np.asarray(tokens), [1, 0])
    expected = jax.nn.log_softmax(logits)[jnp.arange(2), jnp.asarray([1, 0])]
    np.testing.assert_allclose(np.asarray(logprobs), np.asarray(expected), rtol=1e-6)


PROBS = np.asarray([0.15, 0.5, 0.05, 0.3])  # sorted: 0.5 (id 1), 0.3 (id 3), 0.15, 0.05


@pytest.mark.parametrize(
    "top_p, nucleus", [(0.45, [1]), (0.79, [1, 3]), (0.81, [0, 1, 3]), (1.0, [0, 1, 2, 3])]
)
def test_top_p_keeps_exactly_the_nucleus(top_p, nucleus):
    logits = jnp.log(jnp.asarray(PROBS, jnp.float32))[None]
    log_probs = sampler_lib.sampling_log_probs(logits, SamplingConfig(top_p=top_p))[0]
    kept = np.flatnonzero(np.isfinite(np.asarray(log_probs)))
    np.testing.assert_array_equal(kept, nucleus)
    renormalised = PROBS[nucleus] / PROBS[nucleus].sum()
    np.testing.assert_allclose(np.exp(np.asarray(log_probs)[nucleus]), renormalised, rtol=1e-5)


@pytest.mark.parametrize("top_p", [0.1, 0.5, 0.9, 0.99])
def test_top_p_without_sorting_equals_sorted_nucleus(top_p):
    logits = np.asarray(jax.random.normal(jax.random.key(2), (16, 1000))) * 3
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    cfg = SamplingConfig(top_p=top_p)
    kept = np.isfinite(np.asarray(sampler_lib.sampling_log_probs(jnp.asarray(logits), cfg)))
    for row in range(16):
        order = np.argsort(-probs[row], kind="stable")
        mass_before = np.cumsum(probs[row, order]) - probs[row, order]
        # float32 sums may decide a token whose preceding mass is within 1e-5 of top_p
        # either way (as would a float32 sort-and-cumsum); every other token must agree.
        assert kept[row, order[mass_before < top_p - 1e-5]].all()
        assert not kept[row, order[mass_before > top_p + 1e-5]].any()
        assert abs(kept[row].sum() - (mass_before < top_p).sum()) <= 1


def _chi_square(counts: np.ndarray, probs: np.ndarray) -> float:
    expected = counts.sum() * probs
    support = probs > 0
    assert counts[~support].sum() == 0, "sampled a token outside the distribution's support"
    return float(((counts[support] - expected[support]) ** 2 / expected[support]).sum())


# Chi-square critical values at p = 0.001 (df = support size - 1): a correct sampler fails
# with probability 0.1%, and the fixed key makes the outcome deterministic.
CHI2_CRITICAL_0_001 = {2: 13.82, 4: 18.47, 5: 20.52}


@pytest.mark.parametrize(
    "cfg, expected",
    [
        (SamplingConfig(temperature=1.0), [0.4, 0.25, 0.15, 0.1, 0.06, 0.04]),
        # T=0.5 squares the probabilities: 0.16, 0.0625, 0.0225, ... / sum; top_k=4 keeps the
        # first four; top_p=0.9 then keeps 0.16/0.2550 + 0.0625/0.2550 + 0.0225/0.2550
        # (mass before the third = 0.8725 < 0.9; before the fourth = 0.9608 >= 0.9).
        (
            SamplingConfig(temperature=0.5, top_k=4, top_p=0.9),
            [0.16 / 0.245, 0.0625 / 0.245, 0.0225 / 0.245, 0.0, 0.0, 0.0],
        ),
    ],
)
def test_sampled_frequencies_match_distribution(cfg, expected):
    probs = np.asarray([0.4, 0.25, 0.15, 0.1, 0.06, 0.04])
    expected = np.asarray(expected)
    draws = 20000
    logits = jnp.tile(jnp.log(jnp.asarray(probs, jnp.float32)), (draws, 1))
    uniforms = jax.random.uniform(jax.random.key(42), (draws,))
    tokens, logprobs = sampler_lib.sample_tokens(logits, uniforms, cfg)
    tokens, logprobs = np.asarray(tokens), np.asarray(logprobs)
    counts = np.bincount(tokens, minlength=probs.size)
    df = int((expected > 0).sum()) - 1
    assert _chi_square(counts, expected) < CHI2_CRITICAL_0_001[df]
    np.testing.assert_allclose(np.exp(logprobs), expected[tokens], rtol=1e-5)


@pytest.mark.skipif(jax.device_count() < 8, reason="needs 8 devices (tests/conftest.py)")
def test_sharded_on_eight_fake_devices_matches_one_device(tiny_model, sampled):
    config, params, _ = tiny_model
    unsharded, reference = sampled
    cfg, key = unsharded.config, jax.random.key(3)
    # 8 rows over 8 batch devices (4 prompts replicated: 4 % 8 != 0), and over data=2 x
    # fsdp=2 batch devices with tensor=2 (prompts sharded too).
    for shape, rows_per_shard in [((8, 1, 1), 1), ((2, 2, 2), 2)]:
        mesh = mesh_lib.make_mesh(*shape)
        sharded = jax.device_put(params, mesh_lib.param_shardings(config, mesh))
        out = Sampler(config, cfg, mesh).sample(sharded, SAMPLED_PROMPTS, 2, key)
        tokens = out.completion_tokens
        assert tokens.sharding.shard_shape(tokens.shape)[0] == rows_per_shard, shape
        np.testing.assert_array_equal(np.asarray(tokens), reference.completion_tokens)
        np.testing.assert_allclose(np.asarray(out.logprobs), reference.logprobs, atol=1e-5)
    with pytest.raises(ValueError, match="must be a multiple of the 8 devices"):
        Sampler(config, cfg, mesh_lib.make_mesh(8, 1, 1)).sample(params, PROMPTS, 1, key)


def test_check_parity_generate_prints_greedy_match(tiny_model, capsys):
    from coderl_jax.tools import check_parity

    *_, path = tiny_model
    assert check_parity.main(["--hf_dir", path, "--generate", "6"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-2] == "greedy_token_match=1"
    assert lines[-1].startswith("max_abs_logit_diff=")
    assert float(lines[-1].split("=")[1]) < 1e-4


def test_large_vocab_frequencies_match_softmax():
    """V = 1000 takes the two-level (block) path, with a partial last block."""
    vocab, draws = 1000, 20000
    logits = np.zeros(vocab, np.float32)
    heavy = np.asarray([5, 300, 777, 999])  # in different blocks, the last in the partial one
    logits[heavy] = [6.0, 5.5, 5.0, 4.0]
    logits[[10, 11]] = -np.inf  # never drawn
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    tokens, logprobs = sampler_lib.sample_tokens(
        jnp.tile(jnp.asarray(logits), (draws, 1)),
        jax.random.uniform(jax.random.key(9), (draws,)),
        SamplingConfig(),
    )
    tokens, logprobs = np.asarray(tokens), np.asarray(logprobs)
    assert not np.isin(tokens, [10, 11]).any()
    # Bins: each heavy token, then all the rest (each light token is too rare to bin alone).
    counts = np.asarray([*((tokens == t).sum() for t in heavy), (~np.isin(tokens, heavy)).sum()])
    expected = np.asarray([*probs[heavy], 1 - probs[heavy].sum()])
    assert _chi_square(counts, expected) < CHI2_CRITICAL_0_001[4]
    np.testing.assert_allclose(logprobs, np.log(probs[tokens]), rtol=1e-4, atol=1e-5)

"""Sampler correctness: greedy parity with transformers, shared prefix, sampling controls."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers

from coderl_jax import sampler as sampler_lib
from coderl_jax.models import hf_io
from coderl_jax.sampler import FINISH_LENGTH, FINISH_STOP, Sampler, SamplingConfig

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


def test_greedy_equals_transformers_generate(hf_pair):
    config, params, model = hf_pair
    max_new = 12
    # A stop id the models emit in this window, so early stopping is exercised too.
    probe = Sampler(config, SamplingConfig(max_new, greedy=True, prompt_buckets=(8,)))
    free = np.asarray(probe.sample(params, PROMPTS, 1, jax.random.key(0)).completion_tokens)
    stop_id = int(free[0, 5])
    cfg = SamplingConfig(max_new, greedy=True, stop_ids=(stop_id,), pad_id=0, prompt_buckets=(8,))
    ours = Sampler(config, cfg).sample(params, PROMPTS, 1, jax.random.key(0))
    theirs = _hf_greedy(model, PROMPTS, max_new, stop_id)
    np.testing.assert_array_equal(np.asarray(ours.completion_tokens), theirs)
    assert int(ours.finish_reason[0]) == FINISH_STOP
    np.testing.assert_array_equal(free[:, 0], theirs[:, 0])

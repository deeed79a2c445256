"""Tiny random transformers checkpoints (Qwen2 with biases, tied/untied; Llama with llama3
RoPE scaling) written to disk for parity tests."""

import numpy as np
import torch
import transformers

VOCAB = 300


def make_hf_model(kind: str, seed: int = 0):
    torch.manual_seed(seed)
    if kind in ("qwen2_tied", "qwen2_untied"):
        cfg = transformers.Qwen2Config(
            vocab_size=VOCAB,
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            rope_theta=10000.0,
            max_position_embeddings=256,
            tie_word_embeddings=kind == "qwen2_tied",
        )
        model = transformers.Qwen2ForCausalLM(cfg)
    elif kind == "llama":
        cfg = transformers.LlamaConfig(
            vocab_size=VOCAB,
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            head_dim=16,
            rope_theta=500000.0,
            max_position_embeddings=256,
            tie_word_embeddings=False,
            rope_scaling={
                "rope_type": "llama3",
                "factor": 8.0,
                "low_freq_factor": 1.0,
                "high_freq_factor": 4.0,
                "original_max_position_embeddings": 16,
            },
        )
        model = transformers.LlamaForCausalLM(cfg)
    else:
        raise ValueError(kind)
    # Larger-than-default weights so that errors are not hidden by near-zero activations.
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.2)
    return model.eval()


def save_hf_model(kind: str, path, seed: int = 0):
    model = make_hf_model(kind, seed)
    model.save_pretrained(path)
    return model


def left_padded_batch(seed: int = 0):
    """3 rows of different lengths (12, 7, 3 real tokens), left padded with id 0."""
    rng = np.random.RandomState(seed)
    tokens = rng.randint(1, VOCAB, (3, 12))
    mask = np.ones((3, 12), np.int64)
    mask[1, :5] = 0
    mask[2, :9] = 0
    return tokens * mask, mask


def torch_logits(model, tokens, mask):
    positions = np.maximum(mask.cumsum(-1) - 1, 0)
    with torch.no_grad():
        return model(
            input_ids=torch.tensor(tokens),
            attention_mask=torch.tensor(mask),
            position_ids=torch.tensor(positions),
        ).logits.numpy()

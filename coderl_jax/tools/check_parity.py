"""Checks our decoder against transformers (PyTorch, CPU) on a HF checkpoint directory.

Run it on your checkpoint before training:

    python -m coderl_jax.tools.check_parity --hf_dir=DIR

It loads the directory with transformers and with `hf_io.load_pretrained`, runs a few
prompts of different lengths as one left-padded batch through both, prints per-prompt
differences and, as its last line, ``max_abs_logit_diff=<float>`` (over real tokens).
Exits 0 when the difference is within ``--tolerance`` (default 1e-4, for fp32), else 1.
"""

from __future__ import annotations

import argparse
import sys

import jax.numpy as jnp
import numpy as np

from coderl_jax.models import hf_io, transformer

DEFAULT_PROMPTS = (
    "def add(a, b):\n    return a + b\n",
    "Read an integer n from stdin and print the sum of 1..n.",
    "x = [3, 1, 2]\nprint(sorted(x))",
    "for i in range(10):\n    if i % 3 == 0:\n        total = total + i * i\nprint(total)",
)


def left_padded_batch(token_lists: list[list[int]], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """[B, T] tokens and 0/1 mask, each row right-aligned."""
    width = max(len(t) for t in token_lists)
    tokens = np.full((len(token_lists), width), pad_id, np.int64)
    mask = np.zeros((len(token_lists), width), np.int64)
    for row, ids in enumerate(token_lists):
        tokens[row, width - len(ids) :] = ids
        mask[row, width - len(ids) :] = 1
    return tokens, mask


def tokenize_prompts(hf_dir: str, prompts, vocab_size: int) -> tuple[list[list[int]], int]:
    """Token ids of the prompts with the directory's tokenizer (random ids if it has none)."""
    try:
        from coderl_jax.models.tokenizer import load_tokenizer

        tok = load_tokenizer(hf_dir)
    except FileNotFoundError:
        rng = np.random.default_rng(0)
        return [list(rng.integers(0, vocab_size, 4 + 5 * i)) for i in range(len(prompts))], 0
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    return [tok(p, add_special_tokens=False)["input_ids"] for p in prompts], pad


def torch_logits(hf_dir: str, tokens: np.ndarray, mask: np.ndarray) -> np.ndarray:
    import torch
    import transformers

    model = transformers.AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32)
    model.eval()
    positions = np.maximum(mask.cumsum(-1) - 1, 0)
    with torch.no_grad():
        out = model(
            input_ids=torch.from_numpy(tokens),
            attention_mask=torch.from_numpy(mask),
            position_ids=torch.from_numpy(positions),
        )
    return out.logits.float().numpy()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hf_dir", required=True, help="HF checkpoint directory")
    parser.add_argument("--tolerance", type=float, default=1e-4, help="max allowed |diff| (fp32)")
    args = parser.parse_args(argv)

    config, params = hf_io.load_pretrained(
        args.hf_dir, param_dtype="float32", compute_dtype="float32"
    )
    token_lists, pad = tokenize_prompts(args.hf_dir, DEFAULT_PROMPTS, config.vocab_size)
    tokens, mask = left_padded_batch(token_lists, pad)
    ours = np.asarray(transformer.forward(params, config, jnp.asarray(tokens), jnp.asarray(mask)))
    theirs = torch_logits(args.hf_dir, tokens, mask)
    diff = np.abs(ours - theirs) * mask[..., None]
    for row, ids in enumerate(token_lists):
        print(f"prompt {row}: {len(ids)} tokens, max |diff| {diff[row].max():.3g}")
    worst = float(diff.max())
    print(f"max_abs_logit_diff={worst:.6g}")
    return 0 if worst <= args.tolerance else 1


if __name__ == "__main__":
    sys.exit(main())

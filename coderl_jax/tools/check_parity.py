"""Checks our decoder against transformers (PyTorch, CPU) on a HF checkpoint directory.

Run it on your checkpoint before training:

    python -m coderl_jax.tools.check_parity --hf_dir=DIR    # or: coderl-parity --hf_dir=DIR

It loads the directory with transformers and with `hf_io.load_pretrained`, runs a few
prompts of different lengths as one left-padded batch through both, prints per-prompt
differences and, as its last line, ``max_abs_logit_diff=<float>`` (over real tokens).
Exits 0 when the difference is within ``--tolerance`` (default 1e-4, for fp32), else 1.

``--generate N`` also decodes N greedy tokens per prompt with our sampler and with
transformers' ``generate(do_sample=False)`` (same left-padded batch, no stop ids, so both
run the full N) and prints ``greedy_token_match=<fraction of equal tokens>`` just before the
last line; a mismatch also makes the exit status 1.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys

import jax
import jax.numpy as jnp
import numpy as np

from coderl_jax.models import hf_io, transformer
from coderl_jax.models.sampler import left_pad

NO_TORCH = (
    "check_parity runs transformers' PyTorch model and needs torch: pip install "
    "'coderl_jax[parity]' (CPU-only machine: pip install torch --index-url "
    "https://download.pytorch.org/whl/cpu)"
)
DEFAULT_PROMPTS = (
    "def add(a, b):\n    return a + b\n",
    "Read an integer n from stdin and print the sum of 1..n.",
    "x = [3, 1, 2]\nprint(sorted(x))",
    "for i in range(10):\n    if i % 3 == 0:\n        total = total + i * i\nprint(total)",
)


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


def torch_greedy(
    hf_dir: str, tokens: np.ndarray, mask: np.ndarray, num_tokens: int, pad_id: int
) -> np.ndarray:
    """[B, num_tokens] greedy continuation by transformers (eos disabled: full length)."""
    import torch
    import transformers

    model = transformers.AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32)
    model.eval()
    model.generation_config.eos_token_id = None
    model.config.eos_token_id = None
    with torch.no_grad():
        out = model.generate(
            input_ids=torch.from_numpy(tokens),
            attention_mask=torch.from_numpy(mask),
            max_new_tokens=num_tokens,
            do_sample=False,
            pad_token_id=pad_id,
        )
    return out[:, tokens.shape[1] :].numpy()


def our_greedy(params, config, tokens: np.ndarray, mask: np.ndarray, num_tokens: int):
    """[B, num_tokens] greedy continuation by `coderl_jax.models.sampler` (no stop ids)."""
    from coderl_jax.models.sampler import Sampler, SamplingConfig

    cfg = SamplingConfig(num_tokens, greedy=True, prompt_buckets=(tokens.shape[1],))
    out = Sampler(config, cfg).sample_padded(params, tokens, mask, 1, jax.random.key(0))
    return np.asarray(out.completion_tokens)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hf_dir", required=True, help="HF checkpoint directory")
    parser.add_argument("--tolerance", type=float, default=1e-4, help="max allowed |diff| (fp32)")
    parser.add_argument(
        "--generate", type=int, default=0, help="also compare this many greedy tokens (0: skip)"
    )
    args = parser.parse_args(argv)
    if importlib.util.find_spec("torch") is None:  # checked before minutes of loading
        print(NO_TORCH, file=sys.stderr)
        return 2

    config, params = hf_io.load_pretrained(
        args.hf_dir, param_dtype="float32", compute_dtype="float32"
    )
    token_lists, pad = tokenize_prompts(args.hf_dir, DEFAULT_PROMPTS, config.vocab_size)
    width = max(len(ids) for ids in token_lists)
    tokens, mask = (a.astype(np.int64) for a in left_pad(token_lists, width, pad))
    ours = np.asarray(transformer.forward(params, config, jnp.asarray(tokens), jnp.asarray(mask)))
    theirs = torch_logits(args.hf_dir, tokens, mask)
    diff = np.abs(ours - theirs) * mask[..., None]
    for row, ids in enumerate(token_lists):
        print(f"prompt {row}: {len(ids)} tokens, max |diff| {diff[row].max():.3g}")
    worst = float(diff.max())
    generation_ok = True
    if args.generate > 0:
        ours_greedy = our_greedy(params, config, tokens, mask, args.generate)
        theirs_greedy = torch_greedy(args.hf_dir, tokens, mask, args.generate, pad)
        matches = ours_greedy == theirs_greedy
        for row in range(len(token_lists)):
            first_diff = np.flatnonzero(~matches[row])
            where = f"first differs at {first_diff[0]}" if first_diff.size else "all equal"
            print(f"prompt {row}: greedy {args.generate} tokens, {where}")
        generation_ok = bool(matches.all())
        print(f"greedy_token_match={matches.mean():.6g}")
    print(f"max_abs_logit_diff={worst:.6g}")
    return 0 if worst <= args.tolerance and generation_ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""Tokenizer loading (transformers ``AutoTokenizer``), chat template and special ids.

The tokenizer always comes from the checkpoint directory itself (``local_files_only``),
so the tiny embedded model and a 7B checkpoint load the same way and nothing downloads.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os

import transformers

log = logging.getLogger(__name__)

# End-of-turn tokens of the chat formats we support (Qwen ChatML, Llama 3).
CHAT_END_TOKENS = ("<|im_end|>", "<|eot_id|>")


@dataclasses.dataclass(frozen=True)
class SpecialTokens:
    """Token ids the sampler needs: padding and every id that ends a completion."""

    pad_id: int
    stop_ids: tuple[int, ...]


def load_tokenizer(hf_dir: str) -> transformers.PreTrainedTokenizerBase:
    """Loads the tokenizer stored in ``hf_dir`` (offline)."""
    if not any(
        os.path.isfile(os.path.join(hf_dir, f))
        for f in ("tokenizer.json", "tokenizer.model", "vocab.json", "tokenizer_config.json")
    ):
        raise FileNotFoundError(
            f"{hf_dir} holds no tokenizer files (tokenizer.json / tokenizer_config.json)"
        )
    return transformers.AutoTokenizer.from_pretrained(hf_dir, local_files_only=True)


def _as_list(x) -> list[int]:
    if x is None:
        return []
    return list(x) if isinstance(x, (list, tuple)) else [x]


def special_tokens(tokenizer, hf_dir: str | None = None, config_eos=None) -> SpecialTokens:
    """Resolves stop ids and the pad id.

    Stop ids: the tokenizer's eos, the model config's and ``generation_config.json``'s eos
    ids, and the chat end-of-turn token when the vocabulary has one. Pad: the tokenizer's pad
    token, else the first stop id (padding is always masked, so any id is safe).
    """
    stop = _as_list(tokenizer.eos_token_id) + _as_list(config_eos)
    if hf_dir and os.path.isfile(os.path.join(hf_dir, "generation_config.json")):
        with open(os.path.join(hf_dir, "generation_config.json")) as f:
            stop += _as_list(json.load(f).get("eos_token_id"))
    vocab = tokenizer.get_vocab()
    stop += [vocab[t] for t in CHAT_END_TOKENS if t in vocab]
    stop_ids = tuple(dict.fromkeys(int(i) for i in stop))
    if not stop_ids:
        raise ValueError(
            f"no end-of-sequence token: the tokenizer{' in ' + hf_dir if hf_dir else ''} has no "
            "eos_token and no eos_token_id is configured; set eos_token in tokenizer_config.json"
        )
    pad_id = tokenizer.pad_token_id
    if pad_id is None:
        pad_id = stop_ids[0]
        log.info("tokenizer has no pad token; padding with stop id %d", pad_id)
    return SpecialTokens(pad_id=int(pad_id), stop_ids=stop_ids)


def apply_chat_template(tokenizer, messages: list[dict], add_generation_prompt: bool = True) -> str:
    """Renders chat messages to the prompt text with the tokenizer's own template."""
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError("the tokenizer has no chat_template; cannot render chat prompts")
    return tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=add_generation_prompt
    )

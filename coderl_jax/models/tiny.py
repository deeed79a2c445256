"""The embedded tiny model: a Qwen2-architecture HF directory built offline from a seed.

`build_tiny_model(out_dir)` writes ``config.json``, ``model.safetensors`` (random weights
from our initialiser) and a byte-level BPE tokenizer with a ChatML template
(``<|im_start|>role\\n...<|im_end|>``, as Qwen's). The directory is then loaded through the
same `hf_io.load_pretrained` path as a 7B checkpoint. A finished directory carries
``tiny_spec.json`` (the spec, the synthetic dataset's ``VERSION`` and the Python version the
tokenizer corpus came from); calling again with the same three reuses it (a cache), any
difference rebuilds it.

The tokenizer is trained with `tokenizers` on the synthetic problem set (statements and
reference solutions, deterministic from the seed) plus a fixed list of Python standard
library modules read from the running interpreter. Digits are split one per token, so
numbers are learnable by a tiny model (the pre-tokenization is Qwen2's). The stdlib part makes the vocabulary depend on the
Python version (3.11 and 3.12 sources differ slightly); the build is deterministic on one
interpreter.

CLI: ``python -m coderl_jax.models.tiny --out_dir=DIR [--seed=0] [--vocab_size=2048] ...``
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import sysconfig
from collections.abc import Iterable, Iterator

import jax
import transformers
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

from coderl_jax.data import synthetic
from coderl_jax.models import hf_io, transformer
from coderl_jax.models.config import ModelConfig

SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
# Standard-library modules whose sources join the tokenizer corpus (present in 3.10-3.13).
STDLIB_MODULES = (
    "bisect.py",
    "heapq.py",
    "string.py",
    "textwrap.py",
    "fractions.py",
    "statistics.py",
    "functools.py",
    "random.py",
    "calendar.py",
    "difflib.py",
    "shlex.py",
    "fnmatch.py",
    "colorsys.py",
    "queue.py",
    "operator.py",
    "csv.py",
    "pprint.py",
    "copy.py",
    "numbers.py",
    "graphlib.py",
    "cmd.py",
    "json/encoder.py",
    "json/decoder.py",
    "collections/__init__.py",
)
# Qwen2's pre-tokenization (words with their leading space, one digit per token,
# punctuation runs, newlines). transformers 5 re-applies exactly this pattern whenever it
# loads a qwen2 tokenizer, so the BPE must be trained with it for the two to agree.
_PRETOKENIZE = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
SPEC_FILE = "tiny_spec.json"


@dataclasses.dataclass(frozen=True)
class TinyModelSpec:
    """Everything that determines the tiny model directory."""

    seed: int = 0  # seed of the tiny model's initial weights and of its tokenizer's corpus
    vocab_size: int = 2048  # BPE vocabulary of its tokenizer, special tokens included
    hidden_size: int = 128  # model width D
    intermediate_size: int = 384  # SwiGLU MLP width
    num_layers: int = 4  # decoder layers
    num_heads: int = 4  # query heads
    num_kv_heads: int = 2  # key/value heads (grouped-query attention)
    head_dim: int = 32  # width of each head
    max_position_embeddings: int = 2048  # longest sequence (RoPE positions)
    # Synthetic training problems whose text joins the tokenizer corpus.
    num_corpus_problems: int = 4000


def stdlib_sources() -> Iterator[str]:
    root = sysconfig.get_paths()["stdlib"]
    for rel in STDLIB_MODULES:
        path = os.path.join(root, rel)
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                yield f.read()


def synthetic_texts(spec: TinyModelSpec) -> Iterator[str]:
    """Statements and reference solutions of synthetic training problems."""
    for problem in synthetic.generate_problems("train", spec.num_corpus_problems, spec.seed):
        yield problem.statement
        if problem.reference_solution:
            yield problem.reference_solution


def train_tokenizer(texts: Iterable[str], vocab_size: int) -> transformers.PreTrainedTokenizerFast:
    """Byte-level BPE with ChatML special tokens and template."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_PRETOKENIZE), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        clean_up_tokenization_spaces=False,
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def model_config(spec: TinyModelSpec, vocab_size: int, eos_id: int) -> ModelConfig:
    return ModelConfig(
        model_type="qwen2",
        vocab_size=vocab_size,
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_layers=spec.num_layers,
        num_heads=spec.num_heads,
        num_kv_heads=spec.num_kv_heads,
        head_dim=spec.head_dim,
        rope_theta=10000.0,
        max_position_embeddings=spec.max_position_embeddings,
        attention_bias=True,
        tie_word_embeddings=True,
        eos_token_id=eos_id,
    )


def build_tiny_model(
    out_dir: str, spec: TinyModelSpec = TinyModelSpec(), force: bool = False
) -> str:
    """Builds (or reuses) the tiny model directory; returns ``out_dir``."""
    # What else the build reads: the synthetic generator's output and this Python's stdlib.
    spec_json = {
        **dataclasses.asdict(spec),
        "synthetic_version": synthetic.VERSION,
        "python": "{}.{}".format(*sys.version_info[:2]),
    }
    spec_path = os.path.join(out_dir, SPEC_FILE)
    if not force and os.path.isfile(spec_path):
        with open(spec_path) as f:
            if json.load(f) == spec_json:
                return out_dir
    tmp = out_dir.rstrip("/") + ".building"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    texts = list(synthetic_texts(spec)) + list(stdlib_sources())
    tokenizer = train_tokenizer(texts, spec.vocab_size)
    config = model_config(spec, len(tokenizer), tokenizer.convert_tokens_to_ids("<|im_end|>"))
    params = transformer.init_params(config, jax.random.key(spec.seed))
    hf_io.save_pretrained(tmp, config, params, tokenizer=tokenizer)
    with open(os.path.join(tmp, SPEC_FILE), "w") as f:
        json.dump(spec_json, f, indent=2)
    shutil.rmtree(out_dir, ignore_errors=True)
    os.replace(tmp, out_dir)
    return out_dir


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out_dir", required=True, help="directory to write (reused if built)")
    parser.add_argument("--force", action="store_true", help="rebuild even if cached")
    for field in dataclasses.fields(TinyModelSpec):
        parser.add_argument(
            f"--{field.name}", type=int, default=field.default, help=f"default {field.default}"
        )
    args = parser.parse_args(argv)
    spec = TinyModelSpec(
        **{f.name: getattr(args, f.name) for f in dataclasses.fields(TinyModelSpec)}
    )
    build_tiny_model(args.out_dir, spec, force=args.force)
    config, _ = hf_io.load_pretrained(args.out_dir)
    print(
        f"tiny model in {args.out_dir}: {config.num_params:,} parameters, vocab {config.vocab_size}"
    )


if __name__ == "__main__":
    main()
